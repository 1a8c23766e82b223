/* Integration tests of the whole path, producer -> RabbitMQ -> worker ->
 * PostgreSQL, against the real servers: 4 sources x 25,000 events end in
 * exactly 100,000 rows, and publishing them again adds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define PER_SOURCE 25000
#define SOURCES HARNESS_SOURCES
#define RUN_TIMEOUT_MS (10 * 60 * 1000)

/* Producer and worker run side by side; the worker drains and stops once
 * nothing has arrived for a few seconds. */
static void run_pipeline(const char *seed, const char *log)
{
    char count[16];
    snprintf(count, sizeof count, "%d", PER_SOURCE);
    const char *worker[] = {
        harness_bin("sluice-worker"), "--idle-exit-ms", "4000", "--metrics-port", "0", NULL};
    const char *producer[] = {
        harness_bin("sluice-producer"), "--count", count, "--seed", seed, NULL};
    pid_t p = harness_spawn(producer, log);
    pid_t w = harness_spawn(worker, log);
    int prc = harness_wait(p, RUN_TIMEOUT_MS);
    int wrc = harness_wait(w, RUN_TIMEOUT_MS);
    if (prc != 0 || wrc != 0) {
        char *text = harness_slurp(log);
        fail_msg("producer exit %d, worker exit %d; log:\n%s", prc, wrc, text ? text : "");
    }
}

static void test_four_sources_exactly_once(void **state)
{
    (void)state;
    char log[] = "/tmp/sluice-pipeline-XXXXXX";
    close(mkstemp(log));

    run_pipeline("2026", log);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), SOURCES * PER_SOURCE);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT msg_id) FROM events"), SOURCES * PER_SOURCE);
    for (size_t i = 0; i < SOURCES; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM events WHERE source = '%s' AND routing_key = 'src.%s'",
                 harness_sources[i], harness_sources[i]);
        assert_int_equal(pg_scalar(sql), PER_SOURCE);
    }
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);
    /* The contract's properties arrived: the producer's clock for latency. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE produced_at IS NULL"), 0);
    assert_source_queues_empty();

    /* The same seed makes the same events with the same message ids. */
    run_pipeline("2026", log);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), SOURCES * PER_SOURCE);
    assert_source_queues_empty();
    char *text = harness_slurp(log);
    assert_non_null(strstr(text, "duplicates=25000") ? text : strstr(text, "duplicates=100000"));
    free(text);
    unlink(log);
}

/* The events really are heterogeneous, and queryable with SQL. */
static void test_warehouse_holds_semi_structured_events(void **state)
{
    (void)state;
    char log[] = "/tmp/sluice-pipeline-XXXXXX";
    close(mkstemp(log));
    const char *producer[] = {
        harness_bin("sluice-producer"), "--count", "500", "--seed", "9", NULL};
    const char *worker[] = {
        harness_bin("sluice-worker"), "--idle-exit-ms", "2000", "--metrics-port", "0", NULL};
    assert_int_equal(harness_run(producer, NULL, 0, RUN_TIMEOUT_MS), 0);
    assert_int_equal(harness_run(worker, NULL, 0, RUN_TIMEOUT_MS), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 2000);
    /* Each source has several distinct sets of top-level keys. */
    assert_true(
        pg_scalar("SELECT min(shapes) FROM (SELECT source, count(DISTINCT keys) AS shapes"
                  " FROM (SELECT source, array(SELECT jsonb_object_keys(payload) ORDER BY 1)"
                  " AS keys FROM events) k GROUP BY source) s") >= 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'orders'"
                               " AND jsonb_typeof(payload->'items') <> 'array'"),
                     0);
    assert_true(pg_scalar("SELECT count(*) FROM events WHERE payload ? 'user_id'"
                          " AND source = 'profiles'") == 500);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_four_sources_exactly_once, harness_test_setup),
        cmocka_unit_test_setup(test_warehouse_holds_semi_structured_events, harness_test_setup),
    };
    return harness_run_tests(tests, NULL);
}
