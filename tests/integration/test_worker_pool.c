/* Integration tests of sluice-worker's pool against the real servers:
 * parallel and unified modes, /metrics and /healthz, restarts of crashed
 * workers (exactly once even when killed mid-batch), SIGTERM under load,
 * per-source projections, and dead-lettering after bounded retries. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define TIMEOUT_MS (5 * 60 * 1000)

static char log_path[64];

static int reset(void **state)
{
    (void)state;
    harness_reset();
    while (queue_get("sluice.dead", (char[8]){0}, 8, "x", (char[8]){0}, 8))
        ;
    snprintf(log_path, sizeof log_path, "/tmp/sluice-pool-XXXXXX");
    close(mkstemp(log_path));
    return 0;
}

static int cleanup(void **state)
{
    (void)state;
    harness_kill_spawned();
    unlink(log_path);
    return 0;
}

static void fail_with_log(const char *what)
{
    char *text = harness_slurp(log_path);
    fail_msg("%s; log:\n%s", what, text ? text : "");
}

static void produce(const char *count, const char *rate, const char *seed)
{
    const char *argv[] = {harness_bin("sluice-producer"),
                          "--count",
                          count,
                          "--rate",
                          rate,
                          "--seed",
                          seed,
                          "--log-level",
                          "warn",
                          NULL};
    if (harness_run(argv, NULL, 0, TIMEOUT_MS) != 0)
        fail_with_log("producer failed");
}

static pid_t spawn_producer(const char *count, const char *rate, const char *seed)
{
    const char *argv[] = {
        harness_bin("sluice-producer"), "--count", count, "--rate", rate, "--seed", seed, NULL};
    return harness_spawn(argv, log_path);
}

static long long rows_wanted;
static int rows_reached(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM events") >= rows_wanted;
}

static long expected_consumers;
static int consumers_attached(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < 4; i++) {
        char queue[64];
        snprintf(queue, sizeof queue, "sluice.q.%s", harness_sources[i]);
        if (queue_consumers(queue) != expected_consumers)
            return 0;
    }
    return 1;
}

/* The pool's /metrics or /healthz URL. */
static const char *pool_url(const char *path)
{
    static char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", harness_port(1), path);
    return url;
}

static int healthy(void *arg)
{
    (void)arg;
    char body[256];
    return http_get(pool_url("/healthz"), body, sizeof body) == 200;
}

/* Sum of every sample of a metric in Prometheus text. */
static double metric_sum(const char *text, const char *name)
{
    double sum = 0;
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n) {
        if ((p != text && p[-1] != '\n') || (p[n] != '{' && p[n] != ' '))
            continue;
        const char *space = strchr(p, ' ');
        if (space)
            sum += strtod(space + 1, NULL);
    }
    return sum;
}

static void assert_exactly(long long n)
{
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), n);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT msg_id) FROM events"), n);
    assert_source_queues_empty();
}

static void test_parallel_mode_binds_workers_to_queues(void **state)
{
    (void)state;
    produce("2000", "0", "11");
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--mode",
                          "parallel",
                          "--workers",
                          "2",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pool = harness_spawn(argv, log_path);
    expected_consumers = 2; /* two workers on each queue, one queue each */
    assert_true(harness_wait_for(consumers_attached, NULL, 60000));
    rows_wanted = 8000;
    assert_true(harness_wait_for(rows_reached, NULL, TIMEOUT_MS));
    kill(pool, SIGTERM);
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_exactly(8000);
    char *text = harness_slurp(log_path);
    assert_non_null(strstr(text, "worker started worker=7 "));
    assert_null(strstr(text, "worker started worker=8 "));
    free(text);
}

static void test_unified_mode_and_metrics(void **state)
{
    (void)state;
    const char *argv[] = {harness_bin("sluice-worker"), "--workers", "3", "--metrics-port",
                          harness_port_text(1),         NULL};
    pid_t pool = harness_spawn(argv, log_path);
    assert_true(harness_wait_for(healthy, NULL, 60000));
    expected_consumers = 3; /* every worker on every queue */
    assert_true(harness_wait_for(consumers_attached, NULL, 60000));
    produce("1500", "0", "12");
    rows_wanted = 6000;
    assert_true(harness_wait_for(rows_reached, NULL, TIMEOUT_MS));

    static char body[1 << 17];
    assert_int_equal(http_get(pool_url("/metrics"), body, sizeof body), 200);
    assert_int_equal((long)metric_sum(body, "sluice_events_stored_total"), 6000);
    assert_int_equal((long)metric_sum(body, "sluice_events_consumed_total"), 6000);
    assert_non_null(strstr(body, "sluice_events_stored_total{source=\"orders\"} 1500\n"));
    assert_int_equal((long)metric_sum(body, "sluice_batch_rows_sum"), 6000);
    assert_true(metric_sum(body, "sluice_commit_seconds_count") >= 1);
    assert_int_equal((long)metric_sum(body, "sluice_worker_up"), 3);
    assert_int_equal(http_get(pool_url("/nothing"), body, sizeof body), 404);

    kill(pool, SIGTERM);
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_exactly(6000);
    /* Each source's projection made its typed rows, with typed values. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM orders"), 1500);
    assert_int_equal(pg_scalar("SELECT count(*) FROM sensor_readings WHERE value IS NULL"), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM page_views"), 1500);
    assert_int_equal(pg_scalar("SELECT count(*) FROM profiles WHERE user_id IS NULL"), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM orders o JOIN events e USING (msg_id)"
                               " WHERE o.total <> (e.payload->>'total')::numeric"
                               " OR o.item_count <> jsonb_array_length(e.payload->'items')"),
                     0);
}

static int pid_changed_from;
static int worker_restarted(void *arg)
{
    (void)arg;
    int pid = harness_worker_pid(log_path, 0);
    return pid != 0 && pid != pid_changed_from;
}

/* A worker killed in the middle of its batches is restarted, and what it
 * held is redelivered and stored exactly once. */
static void test_crashed_worker_is_restarted_exactly_once(void **state)
{
    (void)state;
    const char *argv[] = {harness_bin("sluice-worker"), "--workers",    "2",   "--metrics-port",
                          harness_port_text(1),         "--batch-size", "200", NULL};
    pid_t pool = harness_spawn(argv, log_path);
    assert_true(harness_wait_for(healthy, NULL, 60000));
    pid_t producer = spawn_producer("4000", "1000", "13");
    rows_wanted = 2000;
    assert_true(harness_wait_for(rows_reached, NULL, TIMEOUT_MS));
    pid_changed_from = harness_worker_pid(log_path, 0);
    assert_true(pid_changed_from > 0);
    kill(pid_changed_from, SIGKILL);
    assert_true(harness_wait_for(worker_restarted, NULL, 60000));
    assert_int_equal(harness_wait(producer, TIMEOUT_MS), 0);
    rows_wanted = 16000;
    if (!harness_wait_for(rows_reached, NULL, TIMEOUT_MS))
        fail_with_log("rows missing after the crash");
    assert_true(harness_wait_for(healthy, NULL, 60000));
    static char body[1 << 17];
    assert_int_equal(http_get(pool_url("/metrics"), body, sizeof body), 200);
    assert_int_equal((long)metric_sum(body, "sluice_worker_restarts_total"), 1);
    kill(pool, SIGTERM);
    /* Every worker's last run ended cleanly: the crash shows in the
     * restarts counter and the log, not in the exit code. */
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_exactly(16000);
}

/* SIGTERM under load: the batch in hand is committed and acknowledged or
 * handed back; the pool exits 0; a later worker stores the rest once. */
static void test_sigterm_during_load(void **state)
{
    (void)state;
    pid_t producer = spawn_producer("3000", "1500", "14");
    const char *argv[] = {
        harness_bin("sluice-worker"), "--workers", "2", "--metrics-port", "0", NULL};
    pid_t pool = harness_spawn(argv, log_path);
    rows_wanted = 3000;
    assert_true(harness_wait_for(rows_reached, NULL, TIMEOUT_MS));
    kill(pool, SIGTERM);
    if (harness_wait(pool, 60000) != 0)
        fail_with_log("pool did not stop cleanly");
    assert_int_equal(harness_wait(producer, TIMEOUT_MS), 0);
    const char *drain[] = {
        harness_bin("sluice-worker"), "--idle-exit-ms", "1500", "--metrics-port", "0", NULL};
    assert_int_equal(harness_run(drain, NULL, 0, TIMEOUT_MS), 0);
    assert_exactly(12000);
}

/* A message whose storing keeps failing (here a trigger on events that
 * raises an error for it) is retried a bounded number of times, then
 * published to sluice.dead with the reason, and acknowledged; the others
 * are stored. */
static void test_dead_letter_after_bounded_retries(void **state)
{
    (void)state;
    pg_exec("CREATE OR REPLACE FUNCTION test_refuse_explosives() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " IF EXISTS (SELECT 1 FROM new_events WHERE payload ? 'explode')"
            " THEN RAISE EXCEPTION 'explosives refused'; END IF; RETURN NULL; END $$");
    pg_exec("CREATE TRIGGER test_refuse_explosives AFTER INSERT ON events"
            " REFERENCING NEW TABLE AS new_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_explosives()");
    harness_amqp_publish("src.orders", "{\"fine\":true}");
    harness_amqp_publish("src.orders", "{\"explode\":true}");
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--idle-exit-ms",
                          "2000",
                          "--max-retries",
                          "3",
                          "--metrics-port",
                          "0",
                          NULL};
    int rc = harness_run(argv, NULL, 0, TIMEOUT_MS);
    pg_exec("DROP TRIGGER test_refuse_explosives ON events");
    assert_int_equal(rc, 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload ? 'fine'"), 1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload ? 'explode'"), 0);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
    char body[256], reason[256];
    assert_int_equal(
        queue_get("sluice.dead", body, sizeof body, "x-sluice-reason", reason, sizeof reason), 1);
    assert_string_equal(body, "{\"explode\":true}");
    assert_non_null(strstr(reason, "explosives refused"));
    assert_int_equal(queue_get("sluice.dead", body, sizeof body, "x", reason, sizeof reason), 0);
}

static void test_bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value, *message;
    } cases[] = {
        {"--mode", "sideways", "mode must be unified or parallel"},
        {"--workers", "0", "workers must be between 1 and 256"},
        {"--metrics-address", "localhost:1", "not an IPv4 address"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[] = {harness_bin("sluice-worker"),
                              cases[i].flag,
                              cases[i].value,
                              "--metrics-port",
                              harness_port_text(2),
                              "--idle-exit-ms",
                              "1",
                              NULL};
        char err[4096];
        int rc = harness_run(argv, err, sizeof err, 60000);
        if (rc == 0 || !strstr(err, cases[i].message))
            fail_msg("case %zu: exit %d, output: %s", i, rc, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parallel_mode_binds_workers_to_queues, reset, cleanup),
        cmocka_unit_test_setup_teardown(test_unified_mode_and_metrics, reset, cleanup),
        cmocka_unit_test_setup_teardown(test_crashed_worker_is_restarted_exactly_once, reset,
                                        cleanup),
        cmocka_unit_test_setup_teardown(test_sigterm_during_load, reset, cleanup),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_bounded_retries, reset, cleanup),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, harness_group_setup, NULL);
}
