/* Unit tests for the table-driven settings reader (common/config.c). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

typedef struct demo_settings {
    char *url;
    long count;
    int verbose;
    int colour; /* index into colours */
} demo_settings;

static const char *const colours[] = {"red", "green", "blue", NULL};

static const cfg_option demo_options[] = {
    {"url", CFG_STRING, offsetof(demo_settings, url), "amqp://default/", 0, 0, "where", NULL},
    {"count", CFG_INT, offsetof(demo_settings, count), "10", 0, 100, "how many", NULL},
    {"verbose", CFG_BOOL, offsetof(demo_settings, verbose), "false", 0, 0, "chatty", NULL},
    {"colour", CFG_ENUM, offsetof(demo_settings, colour), "green", 0, 0, "which", colours},
    CFG_END,
};

static int clear_env(void **state)
{
    (void)state;
    unsetenv("SLUICE_URL");
    unsetenv("SLUICE_COUNT");
    unsetenv("SLUICE_VERBOSE");
    unsetenv("SLUICE_COLOUR");
    unsetenv("SLUICE_CONFIG");
    return 0;
}

static cfg_result parse(demo_settings *s, int argc, char **argv, char *err)
{
    memset(s, 0, sizeof *s);
    return cfg_parse(demo_options, s, argc, argv, err, 256);
}

static void test_defaults(void **state)
{
    (void)state;
    demo_settings s;
    char err[256];
    char *argv[] = {"prog"};
    assert_int_equal(parse(&s, 1, argv, err), CFG_OK);
    assert_string_equal(s.url, "amqp://default/");
    assert_int_equal(s.count, 10);
    assert_int_equal(s.verbose, 0);
    assert_int_equal(s.colour, 1);
    cfg_free(demo_options, &s);
}

/* An enum setting holds the index of its word, from any origin. */
static void test_enum_takes_its_words(void **state)
{
    (void)state;
    demo_settings s;
    char err[256];
    setenv("SLUICE_COLOUR", "red", 1);
    char *argv[] = {"prog"};
    assert_int_equal(parse(&s, 1, argv, err), CFG_OK);
    assert_int_equal(s.colour, 0);
    cfg_free(demo_options, &s);
    char *argv_flag[] = {"prog", "--colour", "blue"};
    assert_int_equal(parse(&s, 3, argv_flag, err), CFG_OK);
    assert_int_equal(s.colour, 2);
    cfg_free(demo_options, &s);
}

static void test_file_env_flags_in_order(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] =
        "# comment\nurl = amqp://u:p#ss@file/  \n\ncount=20 # trailing\nverbose = yes\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);

    setenv("SLUICE_COUNT", "30", 1);
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--config", path, "--url=amqp://flag/"};
    assert_int_equal(parse(&s, 4, argv, err), CFG_OK);
    assert_string_equal(s.url, "amqp://flag/"); /* flag beats file */
    cfg_free(demo_options, &s);

    /* Without the flag, the file's value stands, '#' inside it kept. */
    char *argv_file[] = {"prog", "--config", path};
    assert_int_equal(parse(&s, 3, argv_file, err), CFG_OK);
    assert_string_equal(s.url, "amqp://u:p#ss@file/");
    assert_int_equal(s.count, 30);  /* env beats file */
    assert_int_equal(s.verbose, 1); /* file beats default */
    cfg_free(demo_options, &s);
    unlink(path);
}

static void test_bool_flag_alone_means_true(void **state)
{
    (void)state;
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--verbose", "--count", "5"};
    assert_int_equal(parse(&s, 4, argv, err), CFG_OK);
    assert_int_equal(s.verbose, 1);
    assert_int_equal(s.count, 5);
    cfg_free(demo_options, &s);
}

/* Each bad input is refused with a message naming what and where. */
static void test_errors_name_the_problem(void **state)
{
    (void)state;
    static const struct {
        char *argv[4];
        int argc;
        const char *expected;
    } cases[] = {
        {{"prog", "--count", "abc"}, 3, "--count: count must be an integer, got 'abc'"},
        {{"prog", "--count", "101"}, 3, "count must be between 0 and 100, got 101"},
        {{"prog", "--verbose=maybe"}, 2, "verbose must be true or false"},
        {{"prog", "--flavour", "red"}, 3, "unknown flag '--flavour'"},
        {{"prog", "--colour", "pink"},
         3,
         "--colour: colour must be red, green or blue, got 'pink'"},
        {{"prog", "--colour", "Red"}, 3, "colour must be red, green or blue, got 'Red'"},
        {{"prog", "stray"}, 2, "unexpected argument 'stray'"},
        {{"prog", "--url"}, 2, "--url needs a value"},
        {{"prog", "--config", "/nonexistent/sluice.conf"}, 3, "config file /nonexistent"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        demo_settings s;
        char err[256] = "";
        assert_int_equal(parse(&s, cases[i].argc, (char **)cases[i].argv, err), CFG_BAD_USAGE);
        if (!strstr(err, cases[i].expected))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].expected);
        cfg_free(demo_options, &s);
    }
}

static void test_bad_env_names_variable(void **state)
{
    (void)state;
    setenv("SLUICE_COUNT", "-1", 1);
    demo_settings s;
    char err[256];
    char *argv[] = {"prog"};
    assert_int_equal(parse(&s, 1, argv, err), CFG_BAD_USAGE);
    assert_non_null(strstr(err, "SLUICE_COUNT"));
    cfg_free(demo_options, &s);
}

static void test_file_error_names_line(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-config-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "url = x\nnonsense line\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    demo_settings s;
    char err[256], where[300];
    char *argv[] = {"prog", "--config", path};
    assert_int_equal(parse(&s, 3, argv, err), CFG_BAD_USAGE);
    snprintf(where, sizeof where, "%s:2:", path);
    assert_non_null(strstr(err, where));
    cfg_free(demo_options, &s);
    unlink(path);
}

/* One file serves the binary and its sections: the settings are the lines
 * before the first header, and a section's keys are not the binary's. */
static void test_settings_then_sections(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-config-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "count = 7\n\n[source a]\nkey = one # note\n\n[other b]\n"
                        "url = not a setting\nshape = round\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--config", path};
    assert_int_equal(parse(&s, 3, argv, err), CFG_OK);
    assert_int_equal(s.count, 7);
    assert_string_equal(s.url, "amqp://default/");
    cfg_free(demo_options, &s);

    cfg_sections secs;
    assert_int_equal(cfg_read_sections(3, argv, &secs, err, sizeof err), 0);
    assert_string_equal(secs.path, path);
    assert_int_equal(secs.count, 2);
    assert_string_equal(secs.items[0].kind, "source");
    assert_string_equal(secs.items[0].name, "a");
    assert_int_equal(secs.items[0].line, 3);
    assert_int_equal(secs.items[0].count, 1);
    assert_string_equal(secs.items[0].entries[0].key, "key");
    assert_string_equal(secs.items[0].entries[0].value, "one");
    assert_int_equal(secs.items[0].entries[0].line, 4);
    assert_string_equal(secs.items[1].kind, "other");
    assert_int_equal(secs.items[1].count, 2);
    assert_string_equal(secs.items[1].entries[1].value, "round");
    cfg_sections_free(&secs);

    /* A line that is neither, inside a section, names file and line. */
    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "oops\n", 5), 5);
    close(fd);
    char where[300];
    assert_int_equal(cfg_read_sections(3, argv, &secs, err, sizeof err), -1);
    snprintf(where, sizeof where, "%s:9: expected 'key = value', got 'oops'", path);
    assert_string_equal(err, where);
    assert_int_equal(secs.count, 0);
    unlink(path);
}

static void test_help(void **state)
{
    (void)state;
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--count", "5", "--help"};
    assert_int_equal(parse(&s, 4, argv, err), CFG_HELP);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cfg_print_help(demo_options, out, "prog", "Demo.");
    fclose(out);
    assert_non_null(strstr(text, "--count"));
    assert_non_null(strstr(text, "SLUICE_COUNT"));
    /* The range is what a user needs before a value is refused. */
    assert_non_null(strstr(text, "SLUICE_COUNT, 0 to 100, default 10"));
    assert_non_null(strstr(text, "--version"));
    assert_non_null(strstr(text, "SLUICE_COLOUR, one of red, green or blue, default green"));
    free(text);
    cfg_free(demo_options, &s);
}

/* --version wins over everything else on the line, like --help, so that
 * it answers even beside a bad flag. */
static void test_version(void **state)
{
    (void)state;
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--no-such-flag", "--version"};
    assert_int_equal(parse(&s, 3, argv, err), CFG_VERSION);
    char *plain[] = {"prog", "--count", "5"};
    assert_int_equal(parse(&s, 3, plain, err), CFG_OK);
    cfg_free(demo_options, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_file_env_flags_in_order, clear_env),
        cmocka_unit_test_setup(test_bool_flag_alone_means_true, clear_env),
        cmocka_unit_test_setup(test_errors_name_the_problem, clear_env),
        cmocka_unit_test_setup(test_bad_env_names_variable, clear_env),
        cmocka_unit_test_setup(test_file_error_names_line, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
        cmocka_unit_test_setup(test_version, clear_env),
        cmocka_unit_test_setup(test_enum_takes_its_words, clear_env),
        cmocka_unit_test_setup(test_settings_then_sections, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
