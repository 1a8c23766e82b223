/* Unit tests for opening an adapter instance (producer/source_spec.c):
 * every adapter's settings read through its table in one place, --help
 * from the same tables, and stable event ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter.h"

/* Opens adapter `name` for source "s" of x.conf whose section (header at
 * line 1) holds the lines key, value, key, value... (from line 2). Returns
 * adapter_open()'s result, err filled. */
static int open_with(const char *name, const char *const *kv, char *err, size_t errlen)
{
    cfg_entry entries[8];
    unsigned char used[8] = {0};
    size_t n = 0;
    for (; kv[2 * n]; n++)
        entries[n] = (cfg_entry){(char *)kv[2 * n], (char *)kv[2 * n + 1], (int)n + 2};
    atomic_int stop = 0;
    source_spec spec = {.name = "s",
                        .settings = entries,
                        .nsettings = n,
                        .used = used,
                        .file = "x.conf",
                        .line = 1,
                        .checkpoint_dir = "/nonexistent",
                        .stop = &stop};
    const adapter_class *a = adapter_find(name);
    assert_non_null(a);
    void *st = NULL;
    int rc = adapter_open(a, &spec, &st, err, errlen);
    if (rc == 0)
        a->close(st);
    return rc;
}

/* A key the table lacks, a value out of range or not one of an enum's
 * words is refused naming file, line, source and setting, before the
 * adapter opens anything; what a table cannot say the adapter checks. */
static void test_adapter_settings_refused(void **state)
{
    (void)state;
    static const struct {
        const char *adapter;
        const char *kv[7];
        const char *want;
    } cases[] = {
        {"http",
         {"url", "http://h/", "colour", "red"},
         "x.conf:3: source s: adapter http has no setting 'colour'"},
        {"http",
         {"url", "http://h/", "format", "xml"},
         "x.conf:3: source s: format must be auto, array, object or ndjson, got 'xml'"},
        {"http",
         {"url", "http://h/", "interval_ms", "5"},
         "x.conf:3: source s: interval_ms must be between 10 and 86400000, got 5"},
        {"http",
         {"format", "object", "url", "http://h/"},
         "x.conf:2: source s: format object needs items_pointer"},
        {"http", {NULL}, "x.conf:1: source s: adapter http needs 'url = http://...'"},
        {"file",
         {"path", "/x", "start_at", "middle"},
         "x.conf:3: source s: start_at must be beginning or end, got 'middle'"},
        {"stdin",
         {"max_line_bytes", "lots"},
         "x.conf:2: source s: max_line_bytes must be an integer, got 'lots'"},
        {"generator", {"kind", "weather"}, "x.conf:2: source s: generator has no kind 'weather'"},
        {"generator",
         {"count", "5", "seed", "-1"},
         "x.conf:3: source s: seed must be between 0 and"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512] = "";
        if (open_with(cases[i].adapter, cases[i].kv, err, sizeof err) == 0)
            fail_msg("case %zu accepted, want '%s'", i, cases[i].want);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s', want '%s'", i, err, cases[i].want);
    }
    /* What the tables accept opens: defaults fill the rest. */
    static const char *const good[] = {"kind", "orders", "count", "3", NULL};
    char err[512];
    if (open_with("generator", good, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* --help lists every adapter of the registry with its settings. */
static void test_adapter_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    adapter_print_help(out);
    fclose(out);
    char names[256];
    snprintf(names, sizeof names, "%s", adapter_names());
    for (char *save = NULL, *n = strtok_r(names, ", ", &save); n; n = strtok_r(NULL, ", ", &save)) {
        char line[80];
        snprintf(line, sizeof line, "\n  %s: ", n);
        if (!strstr(text, line))
            fail_msg("--help lacks adapter %s:\n%s", n, text);
    }
    assert_non_null(strstr(text, "    start_at             "));
    assert_non_null(strstr(text, "one of beginning or end; default beginning"));
    assert_non_null(strstr(text, "    header               "));
    assert_non_null(strstr(text, "; repeatable"));
    free(text);
}

static void test_event_ids(void **state)
{
    (void)state;
    char a[SOURCE_EVENT_ID_LEN + 1], b[SOURCE_EVENT_ID_LEN + 1];
    source_event_id("src", "gen0", 10, "{}", 2, a);
    source_event_id("src", "gen0", 10, "{}", 2, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), SOURCE_EVENT_ID_LEN);
    assert_memory_equal(a, "sha256:", 7);
    source_event_id("src", "gen1", 10, "{}", 2, b);
    assert_string_not_equal(a, b);
    source_event_id("src", "gen0", 11, "{}", 2, b);
    assert_string_not_equal(a, b);
    source_event_id("src", "gen0", 10, "{ }", 3, b);
    assert_string_not_equal(a, b);
    source_event_id("sr", "cgen0", 10, "{}", 2, b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_settings_refused),
        cmocka_unit_test(test_adapter_help),
        cmocka_unit_test(test_event_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
