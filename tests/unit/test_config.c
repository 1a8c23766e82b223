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
    char *token;
} demo_settings;

static const char *const colours[] = {"red", "green", "blue", NULL};

static const cfg_option demo_options[] = {
    {"url", CFG_STRING, offsetof(demo_settings, url), "amqp://default/", 0, 0, "where", NULL},
    {"count", CFG_INT, offsetof(demo_settings, count), "10", 0, 100, "how many", NULL},
    {"verbose", CFG_BOOL, offsetof(demo_settings, verbose), "false", 0, 0, "chatty", NULL},
    {"colour", CFG_ENUM, offsetof(demo_settings, colour), "green", 0, 0, "which", colours},
    {"token", CFG_SECRET, offsetof(demo_settings, token), NULL, 0, 0, "password", NULL},
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
    unsetenv("SLUICE_TOKEN");
    unsetenv("SLUICE_TOKEN_FILE");
    cfg_tolerate(NULL);
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

/* Writes `len` bytes to a new temporary file; its path goes to `path`
 * (a "/tmp/sluice-config-XXXXXX" buffer). */
static void write_temp(char *path, const char *text, size_t len)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* A secret's file, named by the variable, the flag or the config key,
 * gives its value less the trailing newlines; blanks, '#' and inner
 * newlines are the secret's own. */
static void test_secret_from_file(void **state)
{
    (void)state;
    char secret[] = "/tmp/sluice-config-XXXXXX", other[] = "/tmp/sluice-config-XXXXXX",
         conf[] = "/tmp/sluice-config-XXXXXX", line[300];
    write_temp(secret, " p#ss word\nline2\r\n\n", 19);
    write_temp(other, "from-flag\n", 10);
    snprintf(line, sizeof line, "token_file = %s\n", other);
    write_temp(conf, line, strlen(line));
    demo_settings s;
    char err[256];

    setenv("SLUICE_TOKEN_FILE", secret, 1);
    char *argv[] = {"prog"};
    assert_int_equal(parse(&s, 1, argv, err), CFG_OK);
    assert_string_equal(s.token, " p#ss word\nline2");
    cfg_free(demo_options, &s);
    assert_null(s.token);

    /* The flag names a file too, and beats the environment. */
    char *argv_flag[] = {"prog", "--token-file", other};
    assert_int_equal(parse(&s, 3, argv_flag, err), CFG_OK);
    assert_string_equal(s.token, "from-flag");
    cfg_free(demo_options, &s);

    /* The environment's file beats the config file's. */
    char *argv_conf[] = {"prog", "--config", conf};
    assert_int_equal(parse(&s, 3, argv_conf, err), CFG_OK);
    assert_string_equal(s.token, " p#ss word\nline2");
    cfg_free(demo_options, &s);
    unsetenv("SLUICE_TOKEN_FILE");
    assert_int_equal(parse(&s, 3, argv_conf, err), CFG_OK);
    assert_string_equal(s.token, "from-flag");
    cfg_free(demo_options, &s);

    /* A section's key NAME_file goes through cfg_set and cfg_find alike. */
    memset(&s, 0, sizeof s);
    assert_int_equal(cfg_set(demo_options, &s, "token_file", secret, "here", err, sizeof err), 0);
    assert_string_equal(s.token, " p#ss word\nline2");
    assert_ptr_equal(cfg_find(demo_options, "token_file"), cfg_find(demo_options, "token"));
    assert_null(cfg_find(demo_options, "url_file")); /* url is not a secret */
    assert_null(cfg_find(demo_options, "_file"));
    cfg_free(demo_options, &s);

    /* The value itself still works, and an empty *_FILE is unset. */
    setenv("SLUICE_TOKEN", "plain", 1);
    setenv("SLUICE_TOKEN_FILE", "", 1);
    assert_int_equal(parse(&s, 1, argv, err), CFG_OK);
    assert_string_equal(s.token, "plain");
    cfg_free(demo_options, &s);
    unlink(secret);
    unlink(other);
    unlink(conf);
}

/* Each wrong secret file is refused with the setting and the path, and
 * never with what the file holds. */
static void test_secret_file_errors(void **state)
{
    (void)state;
    char empty[] = "/tmp/sluice-config-XXXXXX", nul[] = "/tmp/sluice-config-XXXXXX",
         big[] = "/tmp/sluice-config-XXXXXX";
    write_temp(empty, "\n\n", 2);
    write_temp(nul, "hunter2\0rest", 12);
    static char large[65537];
    memset(large, 'x', sizeof large);
    write_temp(big, large, sizeof large);
    static const struct {
        const char *var, *flag;
        int file;                   /* index into paths, or -1: no such file */
        const char *before, *after; /* the message holds before, the path, after */
    } cases[] = {
        {NULL, "--token-file", -1, "--token-file: token_file ", ": No such file"},
        {"SLUICE_TOKEN_FILE", NULL, -1, "SLUICE_TOKEN_FILE: token_file ", ": No such file"},
        {NULL, "--token-file", 0, "token_file ", ": empty"},
        {NULL, "--token-file", 1, "token_file ", ": holds a NUL byte"},
        {NULL, "--token-file", 2, "token_file ", ": larger than 65536 bytes"},
        {NULL, "--url-file", 0, "unknown flag '--url-file'", NULL},
    };
    const char *paths[] = {empty, nul, big};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = cases[i].file < 0 ? "/nonexistent/token" : paths[cases[i].file];
        char expected[300], err[256] = "";
        snprintf(expected, sizeof expected, "%s%s%s", cases[i].before, cases[i].after ? path : "",
                 cases[i].after ? cases[i].after : "");
        char *argv[] = {"prog", (char *)cases[i].flag, (char *)path};
        if (cases[i].var)
            setenv(cases[i].var, path, 1);
        demo_settings s;
        assert_int_equal(parse(&s, cases[i].flag ? 3 : 1, argv, err), CFG_BAD_USAGE);
        if (!strstr(err, expected))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, expected);
        assert_null(strstr(err, "hunter2"));
        assert_null(s.token);
        cfg_free(demo_options, &s);
        if (cases[i].var)
            unsetenv(cases[i].var);
    }

    /* Both the value and its file: which one was meant is a guess. */
    setenv("SLUICE_TOKEN", "hunter2", 1);
    setenv("SLUICE_TOKEN_FILE", nul, 1);
    demo_settings s;
    char err[256];
    char *argv[] = {"prog"};
    assert_int_equal(parse(&s, 1, argv, err), CFG_BAD_USAGE);
    assert_string_equal(err, "SLUICE_TOKEN and SLUICE_TOKEN_FILE are both set: keep one");
    cfg_free(demo_options, &s);
    unlink(empty);
    unlink(nul);
    unlink(big);
}

/* A shared config file may hold another program's secret file. */
static void test_tolerated_secret_file(void **state)
{
    (void)state;
    static const char *const others[] = {"mgmt_password", NULL};
    char conf[] = "/tmp/sluice-config-XXXXXX";
    const char text[] = "mgmt_password_file = /run/secrets/x\ncount = 3\n";
    write_temp(conf, text, sizeof text - 1);
    demo_settings s;
    char err[256];
    char *argv[] = {"prog", "--config", conf};
    assert_int_equal(parse(&s, 3, argv, err), CFG_BAD_USAGE); /* unknown to this table */
    cfg_free(demo_options, &s);
    cfg_tolerate(others);
    assert_int_equal(parse(&s, 3, argv, err), CFG_OK);
    assert_int_equal(s.count, 3);
    cfg_free(demo_options, &s);
    unlink(conf);
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
    assert_non_null(strstr(text, "SLUICE_TOKEN; or read from a file: --token-file, env "
                                 "SLUICE_TOKEN_FILE"));
    assert_null(strstr(text, "--url-file"));
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
        cmocka_unit_test_setup(test_secret_from_file, clear_env),
        cmocka_unit_test_setup(test_secret_file_errors, clear_env),
        cmocka_unit_test_setup(test_tolerated_secret_file, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
