/* Unit tests for the producer's pure parts: config sections and the
 * source list built from them (producer/sources.c), splitting NDJSON into
 * lines (producer/linebuf.c), the bounded hub (producer/hub.c) and stable
 * event ids (producer/source_spec.c). */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapter.h"
#include "hub.h"
#include "linebuf.h"
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

    /* No sections: the flat settings, as the skeleton had them. */
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

/* Every adapter's settings are read by its table: a key it lacks, a value
 * out of range or not one of an enum's words is refused naming file, line,
 * source and setting, before the adapter opens anything. */
static void test_adapter_settings_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[source s]\nadapter = http\nurl = http://h/\ncolour = red\n",
         ":4: source s: adapter http has no setting 'colour'"},
        {"[source s]\nadapter = http\nurl = http://h/\nformat = xml\n",
         ":4: source s: format must be auto, array, object or ndjson, got 'xml'"},
        {"[source s]\nadapter = http\nurl = http://h/\ninterval_ms = 5\n",
         ":4: source s: interval_ms must be between 10 and 86400000, got 5"},
        {"[source s]\nadapter = http\nformat = object\nurl = http://h/\n",
         ":3: source s: format object needs items_pointer"},
        {"[source s]\nadapter = http\n", ":1: source s: adapter http needs 'url = http://...'"},
        {"[source s]\nadapter = file\npath = /x\nstart_at = middle\n",
         ":4: source s: start_at must be beginning or end, got 'middle'"},
        {"[source s]\nadapter = stdin\nmax_line_bytes = lots\n",
         ":3: source s: max_line_bytes must be an integer, got 'lots'"},
        {"[source orders]\nadapter = generator\nkind = weather\n",
         ":3: source orders: generator has no kind 'weather'"},
        {"[source s]\nrate = 5\nadapter = generator\nrate = 6\nseed = -1\n",
         ":5: source s: seed must be between 0 and"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfg_sections secs;
        source_defs defs;
        char err[512] = "";
        atomic_int stop = 0;
        if (build(cases[i].text, "", &secs, &defs, err, sizeof err) != 0)
            fail_msg("case %zu: %s", i, err);
        source_def *d = &defs.items[0];
        source_spec spec = {.name = d->name,
                            .settings = d->settings,
                            .nsettings = d->nsettings,
                            .used = d->used,
                            .file = secs.path,
                            .line = d->line,
                            .checkpoint_dir = "/nonexistent",
                            .stop = &stop};
        void *st = NULL;
        int rc = adapter_open(d->adapter, &spec, &st, err, sizeof err);
        if (rc == 0)
            d->adapter->close(st);
        source_defs_free(&defs);
        cfg_sections_free(&secs);
        if (rc == 0)
            fail_msg("case %zu accepted, want '%s'", i, cases[i].want);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s', want '%s'", i, err, cases[i].want);
    }
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

static void test_linebuf(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    linebuf lb;
    assert_int_equal(linebuf_init(&lb, 8), 0);
    const char input[] = "ab\r\n\n0123456789012345678901234567890\nlast";
    assert_int_equal(write(fds[1], input, strlen(input)), (ssize_t)strlen(input));
    close(fds[1]);
    const char *line;
    size_t len, consumed, total = 0;
    assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_OK);
    assert_int_equal(len, 2); /* "\r" dropped */
    assert_memory_equal(line, "ab", 2);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_OK);
    assert_int_equal(len, 0);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_TOO_LONG);
    assert_int_equal(len, 31);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_NONE);
    assert_int_equal(linebuf_fill(&lb, fds[0]), 0);
    assert_int_equal(linebuf_rest(&lb, &line, &len, &consumed), LINE_OK);
    assert_memory_equal(line, "last", 4);
    total += consumed;
    assert_int_equal(total, strlen(input)); /* offsets add up */
    close(fds[0]);
    linebuf_free(&lb);
}

/* A line longer than the whole buffer is dropped piece by piece and still
 * reported as one line of the right size. */
static void test_linebuf_huge_line(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    linebuf lb;
    assert_int_equal(linebuf_init(&lb, 4), 0);
    size_t huge = lb.cap * 2 + 10;
    char *big = malloc(huge + 6);
    memset(big, 'x', huge);
    memcpy(big + huge, "\nok\n", 4);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        ssize_t w = write(fds[1], big, huge + 4);
        _exit(w == (ssize_t)(huge + 4) ? 0 : 1);
    }
    close(fds[1]);
    const char *line;
    size_t len, consumed;
    line_result r;
    while ((r = linebuf_next(&lb, &line, &len, &consumed)) == LINE_NONE)
        assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(r, LINE_TOO_LONG);
    assert_int_equal(len, huge);
    assert_int_equal(consumed, huge + 1);
    while ((r = linebuf_next(&lb, &line, &len, &consumed)) == LINE_NONE)
        assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(r, LINE_OK);
    assert_memory_equal(line, "ok", 2);
    close(fds[0]);
    free(big);
    linebuf_free(&lb);
}

typedef struct putter {
    hub *h;
    atomic_int stop;
    atomic_int put;
} putter;

static void *put_five(void *arg)
{
    putter *p = arg;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "m%d", i);
        hub_put(p->h, 0, "{}", 2, id, (uint64_t)i + 1, &p->stop);
        atomic_fetch_add(&p->put, 1);
    }
    hub_finish(p->h, 0);
    return NULL;
}

static int put_count(putter *p, int want)
{
    for (int i = 0; i < 200 && atomic_load(&p->put) < want; i++)
        usleep(5000);
    return atomic_load(&p->put);
}

/* A full queue holds its reader back; taking makes room; the order is kept. */
static void test_hub_backpressure(void **state)
{
    (void)state;
    putter p = {.h = hub_new(2, 2, 1 << 20)};
    assert_non_null(p.h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_five, &p), 0);
    assert_int_equal(put_count(&p, 2), 2);
    usleep(50000); /* give a wrong implementation the chance to put a third */
    assert_int_equal(atomic_load(&p.put), 2);
    assert_int_equal(hub_buffered(p.h), 2);
    hub_item it;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(hub_take(p.h, &it, 5000), 1);
        assert_int_equal(it.position, (uint64_t)i + 1);
        hub_item_free(&it);
    }
    pthread_join(t, NULL);
    assert_int_equal(hub_take(p.h, &it, 0), 0);
    assert_false(hub_done(p.h)); /* source 1 never finished */
    hub_finish(p.h, 1);
    assert_true(hub_done(p.h));
    hub_free(p.h);
}

static void *put_three_big(void *arg)
{
    putter *p = arg;
    for (int i = 0; i < 3; i++) {
        hub_put(p->h, 0, "{\"a\":123}", 9, "m", (uint64_t)i + 1, &p->stop);
        atomic_fetch_add(&p->put, 1);
    }
    return NULL;
}

/* The byte bound holds a reader back as the count bound does; an empty
 * queue takes one event even if it alone is over the bound. */
static void test_hub_bounded_in_bytes(void **state)
{
    (void)state;
    putter p = {.h = hub_new(1, 100, 8)}; /* 100 events, but 8 bytes */
    assert_non_null(p.h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_three_big, &p), 0);
    assert_int_equal(put_count(&p, 1), 1);
    usleep(50000); /* give a wrong implementation the chance to put a second */
    assert_int_equal(atomic_load(&p.put), 1);
    hub_item it;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hub_take(p.h, &it, 5000), 1);
        assert_int_equal(it.position, (uint64_t)i + 1);
        hub_item_free(&it);
    }
    pthread_join(t, NULL);
    hub_free(p.h);
}

/* A stopping reader hands over the event it holds, one over the capacity,
 * without waiting. */
static void test_hub_stop_keeps_event(void **state)
{
    (void)state;
    hub *h = hub_new(1, 2, 1 << 20);
    atomic_int stop = 0;
    assert_int_equal(hub_put(h, 0, "{}", 2, "a", 1, &stop), 0);
    assert_int_equal(hub_put(h, 0, "{}", 2, "b", 2, &stop), 0);
    atomic_store(&stop, 1);
    assert_int_equal(hub_put(h, 0, "{}", 2, "c", 3, &stop), 0);
    assert_int_equal(hub_buffered(h), 3);
    hub_item it;
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(hub_take(h, &it, 0), 1);
        assert_int_equal(it.position, i);
        hub_item_free(&it);
    }
    assert_int_equal(hub_put(h, 0, "{}", 2, "d", 4, &stop), 0);
    hub_free(h); /* frees the event still buffered */
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
        cmocka_unit_test(test_adapter_settings_refused),
        cmocka_unit_test(test_adapter_help),
        cmocka_unit_test(test_flat_list_must_match_sections),
        cmocka_unit_test(test_flat_reader_skips_sections),
        cmocka_unit_test(test_linebuf),
        cmocka_unit_test(test_linebuf_huge_line),
        cmocka_unit_test(test_hub_backpressure),
        cmocka_unit_test(test_hub_stop_keeps_event),
        cmocka_unit_test(test_hub_bounded_in_bytes),
        cmocka_unit_test(test_event_ids),
        cmocka_unit_test(test_example_config),
    };
    return cmocka_run_group_tests(tests, NULL, remove_config);
}
