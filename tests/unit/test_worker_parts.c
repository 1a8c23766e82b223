/* Unit tests for the worker's pure parts: binary COPY encoding
 * (workers/pgcopy.c) and batches (workers/batch.c). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "batch.h"
#include "metrics.h"
#include "pgcopy.h"
#include "retries.h"
#include "supervisor.h"

static void test_copy_stream_layout(void **state)
{
    (void)state;
    pgcopy c = {0};
    pgcopy_begin(&c);
    pgcopy_row(&c, 3);
    pgcopy_text(&c, "ab", 2);
    pgcopy_jsonb(&c, "{}", 2);
    pgcopy_null(&c);
    pgcopy_row(&c, 1);
    pgcopy_timestamptz(&c, INT64_C(946684800000001)); /* 2000-01-01 00:00:00.000001 UTC */
    pgcopy_end(&c);

    static const unsigned char expected[] = {
        'P',  'G',  'C',  'O',  'P', 'Y', '\n', 0xff, '\r', '\n', 0,    /* signature */
        0,    0,    0,    0,    0,   0,   0,    0,                      /* flags, extension */
        0,    3,                                                        /* 3 fields */
        0,    0,    0,    2,    'a', 'b',                               /* text */
        0,    0,    0,    3,    1,   '{', '}',                          /* jsonb v1 */
        0xff, 0xff, 0xff, 0xff,                                         /* NULL */
        0,    1,                                                        /* 1 field */
        0,    0,    0,    8,    0,   0,   0,    0,    0,    0,    0, 1, /* 1 us after PG epoch */
        0xff, 0xff,                                                     /* trailer */
    };
    assert_false(c.failed);
    assert_int_equal(c.len, sizeof expected);
    assert_memory_equal(c.data, expected, sizeof expected);

    /* begin empties the buffer for reuse. */
    pgcopy_begin(&c);
    assert_int_equal(c.len, 19);
    pgcopy_free(&c);
}

/* Times before PostgreSQL's epoch (2000) are negative in the stream; a
 * time near INT64_MIN (a header any publisher can set) wraps instead of
 * overflowing (fuzz/corpus/pgcopy/regress-timestamptz-int64-min). */
static void test_copy_times_before_2000(void **state)
{
    (void)state;
    pgcopy c = {0};
    pgcopy_begin(&c);
    pgcopy_row(&c, 2);
    pgcopy_timestamptz(&c, 0); /* 1970-01-01 */
    pgcopy_timestamptz(&c, INT64_MIN);
    static const unsigned char expected[] = {
        0, 2,                                                       /* 2 fields */
        0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* -946684800000000 */
        0, 0, 0, 8, 0x7f, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* wrapped */
    };
    assert_int_equal(c.len, 19 + sizeof expected);
    assert_memory_equal(c.data + 19, expected, sizeof expected);
    pgcopy_free(&c);
}

static incoming delivery_of(uint64_t tag, const char *id, const char *body)
{
    incoming in = {.delivery_tag = tag,
                   .source = "orders",
                   .routing_key = "src.orders",
                   .routing_key_len = 10,
                   .message_id = id,
                   .message_id_len = id ? strlen(id) : 0,
                   .body = body,
                   .body_len = strlen(body),
                   .produced_at_us = 5,
                   .received_at_us = 6};
    return in;
}

static void test_batch_keeps_copies(void **state)
{
    (void)state;
    batch b;
    batch_init(&b);
    char body[] = "{\"n\":1}";
    incoming in = delivery_of(7, "m-1", body);
    assert_int_equal(batch_add(&b, &in, EVENT_OK), 0);
    body[5] = '2'; /* the library reuses its buffers: the batch must not notice */
    assert_string_equal(batch_str(&b, b.items[0].body), "{\"n\":1}");
    assert_string_equal(batch_str(&b, b.items[0].msg_id), "m-1");
    assert_string_equal(batch_str(&b, b.items[0].source), "orders");
    assert_string_equal(batch_str(&b, b.items[0].routing_key), "src.orders");
    assert_int_equal(b.last_tag, 7);

    /* Many more, forcing the arena and the array to grow. */
    for (uint64_t t = 8; t < 3000; t++) {
        in = delivery_of(t, "m-x", "{\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
        assert_int_equal(batch_add(&b, &in, t % 10 ? EVENT_OK : EVENT_BAD_JSON), 0);
    }
    assert_int_equal(b.count, 2993);
    assert_int_equal(b.last_tag, 2999);
    assert_int_equal(b.invalid, 299);
    assert_string_equal(batch_str(&b, b.items[0].body), "{\"n\":1}");
    batch_reset(&b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.invalid, 0);
    batch_free(&b);
}

/* A message without a usable message_id gets the id derived from source and
 * body, so the same content from another client is stored once. */
static void test_batch_derives_missing_ids(void **state)
{
    (void)state;
    batch b;
    batch_init(&b);
    incoming none = delivery_of(1, NULL, "{\"a\":1}");
    incoming empty = delivery_of(2, "", "{\"a\":1}");
    incoming control = delivery_of(3, "bad\nid", "{\"a\":1}");
    incoming broken = delivery_of(4, "\xff\xfe", "{\"a\":1}");
    assert_int_equal(batch_add(&b, &none, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &empty, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &control, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &broken, EVENT_OK), 0);
    char expected[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id("orders", "{\"a\":1}", 7, expected);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(batch_str(&b, b.items[i].msg_id), expected);
    batch_free(&b);
}

static void test_retries_count_and_forget(void **state)
{
    (void)state;
    retries *r = retries_new(4);
    assert_int_equal(retries_bump(r, "a"), 1);
    assert_int_equal(retries_bump(r, "a"), 2);
    assert_int_equal(retries_bump(r, "b"), 1);
    assert_int_equal(retries_bump(r, "a"), 3);
    retries_forget(r, "a");
    assert_int_equal(retries_bump(r, "a"), 1);
    /* Far more ids than capacity: the table starts afresh instead of
     * growing, and counts stay bounded. */
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        assert_true(retries_bump(r, id) <= 2);
    }
    retries_free(r);
}

static const char *find_line(const char *text, const char *line)
{
    const char *p = strstr(text, line);
    if (!p)
        fail_msg("missing line '%s' in:\n%s", line, text);
    return p;
}

static void test_metrics_render(void **state)
{
    (void)state;
    strlist sources;
    assert_int_equal(strlist_split("orders,sensors", &sources), 0);
    metrics *m = metrics_create(2, &sources);
    assert_non_null(m);
    metrics_count(m, 0, 0, COUNT_STORED, 5);
    metrics_count(m, 1, 0, COUNT_STORED, 7);
    metrics_count(m, 1, 1, COUNT_REJECTED, 2);
    metrics_observe_batch(m, 0, 300, 2000);   /* 300 rows, 2 ms */
    metrics_observe_batch(m, 0, 1000, 40000); /* 1000 rows, 40 ms */
    metrics_set_pid(m, 0, 100);
    metrics_set_connected(m, 0, 1, 1);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    find_line(text, "# TYPE sluice_events_stored_total counter\n");
    find_line(text, "sluice_events_stored_total{source=\"orders\"} 12\n");
    find_line(text, "sluice_events_stored_total{source=\"sensors\"} 0\n");
    find_line(text, "sluice_events_rejected_total{source=\"sensors\"} 2\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"250\"} 0\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"500\"} 1\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"1000\"} 2\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"+Inf\"} 2\n");
    find_line(text, "sluice_batch_rows_sum{worker=\"0\"} 1300\n");
    find_line(text, "sluice_commit_seconds_bucket{worker=\"0\",le=\"0.0025\"} 1\n");
    find_line(text, "sluice_commit_seconds_bucket{worker=\"0\",le=\"0.05\"} 2\n");
    find_line(text, "sluice_worker_up{worker=\"0\"} 1\n");
    find_line(text, "sluice_worker_up{worker=\"1\"} 0\n");
    assert_int_equal(metrics_total(m, COUNT_STORED), 12);

    char why[128];
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not running");
    metrics_set_pid(m, 1, 101);
    metrics_set_connected(m, 1, 1, 0);
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: PostgreSQL not connected");
    metrics_set_connected(m, 1, 1, 1);
    /* Both connected, but a source nobody consumes (its queue missing or
     * its consumer cancelled) is not ready either. */
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_non_null(strstr(why, "not consumed"));
    for (int s = 0; s < (int)sources.count; s++)
        metrics_set_consuming(m, 0, s, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 1);
    metrics_set_consuming(m, 0, 1, 0);
    metrics_set_consuming(m, 1, 1, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 1); /* worker 1 consumes it */
    metrics_set_connected(m, 1, 0, 1);                      /* ... until AMQP drops */
    metrics_set_connected(m, 1, 1, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    char expected[256];
    snprintf(expected, sizeof expected,
             "source %s: not consumed (queue sluice.q.%s missing or its consumer cancelled)",
             sources.items[1], sources.items[1]);
    assert_string_equal(why, expected);
    free(text);
    out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    char line[128];
    snprintf(line, sizeof line, "sluice_source_consumers{source=\"%s\"} 0\n", sources.items[1]);
    find_line(text, line);
    snprintf(line, sizeof line, "sluice_source_consumers{source=\"%s\"} 1\n", sources.items[0]);
    find_line(text, line);
    free(text);
    metrics_free(m);
    strlist_free(&sources);
}

/* Children that really crash: the supervisor restarts them until they end
 * cleanly, and counts the restarts. Child 0 is killed by a signal twice,
 * child 1 exits with an error once; runs are counted in shared memory. */
static int *runs;

static int flaky_child(size_t index, void *arg)
{
    (void)arg;
    int run = __atomic_add_fetch(&runs[index], 1, __ATOMIC_SEQ_CST);
    if (index == 0 && run <= 2)
        raise(SIGKILL);
    if (index == 1 && run == 1)
        return 3;
    return 0;
}

static void test_supervisor_restarts_until_clean(void **state)
{
    (void)state;
    runs = mmap(NULL, 2 * sizeof *runs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(runs != MAP_FAILED);
    strlist sources;
    assert_int_equal(strlist_split("orders", &sources), 0);
    metrics *m = metrics_create(2, &sources);
    supervisor_config cfg = {.children = 2,
                             .run = flaky_child,
                             .m = m,
                             .restart_base_ms = 1,
                             .restart_max_ms = 10,
                             .shutdown_timeout_ms = 1000};
    assert_int_equal(supervisor_run(&cfg), 0);
    assert_int_equal(runs[0], 3);
    assert_int_equal(runs[1], 2);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    find_line(text, "sluice_worker_restarts_total{worker=\"0\"} 2\n");
    find_line(text, "sluice_worker_restarts_total{worker=\"1\"} 1\n");
    free(text);
    metrics_free(m);
    strlist_free(&sources);
    munmap(runs, 2 * sizeof *runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_stream_layout),
        cmocka_unit_test(test_copy_times_before_2000),
        cmocka_unit_test(test_batch_keeps_copies),
        cmocka_unit_test(test_batch_derives_missing_ids),
        cmocka_unit_test(test_retries_count_and_forget),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_supervisor_restarts_until_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
