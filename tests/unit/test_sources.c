/* Unit tests for the source list a producer runs, from config sections or
 * the flat settings (producer/sources.c), and the example config file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapter.h"
#include "sources.h"

static char config_path[] = "/tmp/sluice-unit-conf-XXXXXX";

static void write_config(const char *text)
{
    int fd = mkstemp(config_path);
    if (fd < 0) /* already created by an earlier case: reuse the name */
        fd = open(config_path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Reads the sections of `text` and builds the source list with the flat
 * `sources` setting `flat`. Returns 0 or -1 with err. */
static int build_with(const char *text, const char *flat, const char *only, cfg_sections *secs,
                      source_defs *defs, char *err, size_t errlen)
{
    write_config(text);
    char *argv[] = {"prog", "--config", config_path, NULL};
    if (cfg_read_sections(3, argv, secs, err, errlen) != 0)
        return -1;
    return source_defs_build(secs, flat, "generator", 7, only, defs, err, errlen);
}

/* The same with `sources` unset when there are sections, "profiles,orders"
 * when there are none. */
static int build(const char *text, const char *only, cfg_sections *secs, source_defs *defs,
                 char *err, size_t errlen)
{
    const char *flat = strchr(text, '[') ? "" : "profiles,orders";
    return build_with(text, flat, only, secs, defs, err, errlen);
}

static void test_sections(void **state)
{
    (void)state;
    cfg_sections secs;
    source_defs defs;
    char err[512];
    assert_int_equal(build("amqp_url = amqp://x/\n# comment\n"
                           "[source orders_api]\nadapter = http\nurl = http://h/x # note\n"
                           "header = A: 1\nheader = B: 2\nrate = 50\n\n"
                           "[source app]\nadapter = file\npath = /var/log/app.ndjson\n",
                           "", &secs, &defs, err, sizeof err),
                     0);
    assert_int_equal(defs.count, 2);
    assert_string_equal(defs.items[0].name, "orders_api");
    assert_string_equal(defs.items[0].adapter->name, "http");
    assert_int_equal(defs.items[0].rate, 50);
    assert_int_equal(defs.items[0].line, 3);
    assert_int_equal(defs.items[1].rate, 7); /* the producer-wide default */

    /* The adapter's table takes the section's other lines, a repeated
     * header included; adapter and rate are the producer's. */
    source_spec spec = {.name = "orders_api",
                        .settings = defs.items[0].settings,
                        .nsettings = defs.items[0].nsettings,
                        .used = defs.items[0].used,
                        .file = config_path,
                        .line = defs.items[0].line};
    void *st = NULL;
    if (adapter_open(defs.items[0].adapter, &spec, &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    defs.items[0].adapter->close(st);
    source_defs_free(&defs);
    cfg_sections_free(&secs);

    /* Distributed mode keeps one. */
    assert_int_equal(build("[source a]\nadapter = stdin\n[source b]\nadapter = generator\n", "b",
                           &secs, &defs, err, sizeof err),
                     0);
    assert_int_equal(defs.count, 1);
    assert_string_equal(defs.items[0].name, "b");
    source_defs_free(&defs);
    cfg_sections_free(&secs);

    /* `sources` beside sections picks some of them, in section order. */
    assert_int_equal(build_with("[source a]\nadapter = stdin\n[source b]\nadapter = generator\n"
                                "[source c]\nadapter = generator\n",
                                "c,b", "", &secs, &defs, err, sizeof err),
                     0);
    assert_int_equal(defs.count, 2);
    assert_string_equal(defs.items[0].name, "b");
    assert_string_equal(defs.items[1].name, "c");
    source_defs_free(&defs);
    cfg_sections_free(&secs);

    /* No sections and no `sources`: the four simulated sources. */
    assert_int_equal(build_with("count = 5\n", "", "", &secs, &defs, err, sizeof err), 0);
    assert_int_equal(defs.count, 4);
    assert_string_equal(defs.items[3].name, "sensors");
    source_defs_free(&defs);
    cfg_sections_free(&secs);

    /* No sections: the flat settings (a `sources` list, one `adapter`). */
    assert_int_equal(build("count = 5\n", "", &secs, &defs, err, sizeof err), 0);
    assert_int_equal(defs.count, 2);
    assert_string_equal(defs.items[1].name, "orders");
    assert_string_equal(defs.items[1].adapter->name, "generator");
    source_defs_free(&defs);
    cfg_sections_free(&secs);
}

static void test_section_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *only, *want;
    } cases[] = {
        {"[source a]\nurl = x\n", "", ":1: source a has no 'adapter = ...'"},
        {"[source a]\nadapter = ftp\n", "", ":2: source a: unknown adapter 'ftp'"},
        {"[source Bad]\nadapter = stdin\n", "", ":1: bad source name 'Bad'"},
        {"[source a]\nadapter = stdin\n[source a]\nadapter = stdin\n", "",
         ":3: source a is defined twice (first at line 1)"},
        {"[sink a]\n", "", ":1: unknown section kind 'sink'"},
        {"[source]\n", "", ":1: a section header is '[kind name]'"},
        {"[source a\n", "", ":1: expected a section header"},
        {"[source a]\nadapter stdin\n", "", ":2: expected 'key = value'"},
        {"[source a]\nadapter = stdin\nrate = fast\n", "", ":3: source a: rate must be"},
        {"[source a]\nadapter = stdin\n", "z", "--source z is not one of the sources of"},
        {"[source a]\nadapter = stdin\n[source b]\nadapter = stdin\n", "",
         "sources a and b both read stdin"},
        {"[source unrouted]\nadapter = stdin\n", "",
         ":1: source name 'unrouted' is reserved (queue sluice.q.unrouted"},
        {"[source notifier]\nadapter = stdin\n", "", ":1: source name 'notifier' is reserved"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfg_sections secs;
        source_defs defs;
        char err[512] = "";
        int rc = build(cases[i].text, cases[i].only, &secs, &defs, err, sizeof err);
        cfg_sections_free(&secs);
        if (rc == 0) {
            source_defs_free(&defs);
            fail_msg("case %zu accepted, want '%s'", i, cases[i].want);
        }
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s', want '%s'", i, err, cases[i].want);
    }
}

/* A `sources` setting naming a source without a section is refused: the
 * sections are the list every binary reads. */
static void test_flat_list_must_match_sections(void **state)
{
    (void)state;
    cfg_sections secs;
    source_defs defs;
    char err[512] = "";
    assert_int_equal(
        build_with("[source a]\nadapter = stdin\n", "a,newsrc", "", &secs, &defs, err, sizeof err),
        -1);
    cfg_sections_free(&secs);
    if (!strstr(err, "sources: 'newsrc' has no [source newsrc] section in"))
        fail_msg("unexpected error: %s", err);
}

/* The flat reader skips sections, so every binary can share the file. */
static void test_flat_reader_skips_sections(void **state)
{
    (void)state;
    typedef struct s {
        char *url;
    } s;
    static const cfg_option opts[] = {{"url", CFG_STRING, offsetof(s, url), "d", 0, 0, "u", NULL},
                                      CFG_END};
    write_config("url = flat\n[source a]\nadapter = stdin\nurl = not-mine\n");
    char *argv[] = {"prog", "--config", config_path, NULL};
    s v = {0};
    char err[256];
    assert_int_equal(cfg_parse(opts, &v, 3, argv, err, sizeof err), CFG_OK);
    assert_string_equal(v.url, "flat");
    cfg_free(opts, &v);
}

/* The example in config/ is valid: its sections build and every adapter
 * accepts its settings. */
static void test_example_config(void **state)
{
    (void)state;
    char *argv[] = {"prog", "--config", SLUICE_SOURCE_DIR "/config/producer.conf", NULL};
    cfg_sections secs;
    source_defs defs;
    char err[512], dir[] = "/tmp/sluice-unit-state-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (cfg_read_sections(3, argv, &secs, err, sizeof err) != 0 ||
        source_defs_build(&secs, "", "generator", 0, "", &defs, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(defs.count, 4);
    setenv("ORDERS_API_TOKEN", "example", 1);
    atomic_int stop = 0;
    for (size_t i = 0; i < defs.count; i++) {
        source_def *d = &defs.items[i];
        if (strcmp(d->adapter->name, "stdin") == 0)
            continue; /* would read this test's stdin; it has no settings */
        source_spec spec = {.name = d->name,
                            .settings = d->settings,
                            .nsettings = d->nsettings,
                            .used = d->used,
                            .file = secs.path,
                            .line = d->line,
                            .checkpoint_dir = dir,
                            .stop = &stop};
        void *st = NULL;
        if (adapter_open(d->adapter, &spec, &st, err, sizeof err) != 0)
            fail_msg("%s", err);
        d->adapter->close(st);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/app_log.offset", dir);
    unlink(path);
    rmdir(dir);
    source_defs_free(&defs);
    cfg_sections_free(&secs);
}

static int remove_config(void **state)
{
    (void)state;
    unlink(config_path);
    return 0;
}

int main(void)
{
    unsetenv("SLUICE_CONFIG");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_section_errors),
        cmocka_unit_test(test_flat_list_must_match_sections),
        cmocka_unit_test(test_flat_reader_skips_sections),
        cmocka_unit_test(test_example_config),
    };
    return cmocka_run_group_tests(tests, NULL, remove_config);
}
