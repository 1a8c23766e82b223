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

static void fail_with_log(const char *what)
{
    char *text = harness_slurp(harness_log_path());
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
    pid_t pool = harness_spawn(argv, harness_log_path());
    expected_consumers = 2; /* two workers on each queue, one queue each */
    assert_true(harness_wait_for(consumers_attached, NULL, 60000));
    harness_wait_sql("SELECT count(*) FROM events", 8000, TIMEOUT_MS, harness_log_path());
    kill(pool, SIGTERM);
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_generated_exactly(2000);
    char *text = harness_slurp(harness_log_path());
    assert_non_null(strstr(text, "worker started worker=7 "));
    assert_null(strstr(text, "worker started worker=8 "));
    free(text);
}

static void test_unified_mode_and_metrics(void **state)
{
    (void)state;
    const char *argv[] = {harness_bin("sluice-worker"), "--workers", "3", "--metrics-port",
                          harness_port_text(1),         NULL};
    pid_t pool = harness_spawn(argv, harness_log_path());
    assert_true(harness_wait_for(healthy, NULL, 60000));
    expected_consumers = 3; /* every worker on every queue */
    assert_true(harness_wait_for(consumers_attached, NULL, 60000));
    produce("1500", "0", "12");
    harness_wait_sql("SELECT count(*) FROM events", 6000, TIMEOUT_MS, harness_log_path());

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
    assert_generated_exactly(1500);
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
    int pid = harness_worker_pid(harness_log_path(), 0);
    return pid != 0 && pid != pid_changed_from;
}

static long long redelivered_base;
static int redelivered_since(void *arg)
{
    (void)arg;
    return harness_redelivered() > redelivered_base;
}

static int both_at_gate(void *arg)
{
    (void)arg;
    return harness_sessions_at_gate() == 2;
}

static int source_queues_empty(void *arg)
{
    (void)arg;
    static const char *const queues[] = {"sluice.q.profiles", "sluice.q.clickstream",
                                         "sluice.q.orders", "sluice.q.sensors"};
    for (size_t i = 0; i < sizeof queues / sizeof *queues; i++) {
        if (queue_ready(queues[i]) != 0)
            return 0;
    }
    return 1;
}

static int all_stored(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM events") >= 16000;
}

/* A worker killed in the middle of its batches is restarted, and what it
 * held is redelivered and stored exactly once. A backlog waits in the
 * queues and storing is paced (200 ms a batch) until 2,000 rows are in;
 * then a gate holds every COPY, and the kill comes once both workers wait
 * there, each with a batch in hand: a worker that acknowledged before
 * committing would lose that batch, and the gap check says so. */
static void test_crashed_worker_is_restarted_exactly_once(void **state)
{
    (void)state;
    produce("4000", "0", "13");
    harness_pace_storing();
    redelivered_base = harness_redelivered();
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--workers",
                          "2",
                          "--metrics-port",
                          harness_port_text(1),
                          "--batch-size",
                          "200",
                          "--prefetch",
                          "400",
                          NULL};
    pid_t pool = harness_spawn(argv, harness_log_path());
    assert_true(harness_wait_for(healthy, NULL, 60000));
    harness_wait_sql("SELECT count(*) FROM events", 2000, TIMEOUT_MS, harness_log_path());
    harness_close_gate();
    if (!harness_wait_for(both_at_gate, NULL, 60000))
        fail_msg("the two workers never both waited at the gate (%ld there)",
                 harness_sessions_at_gate());
    pid_changed_from = harness_worker_pid(harness_log_path(), 0);
    assert_true(pid_changed_from > 0);
    kill(pid_changed_from, SIGKILL);
    /* Struck mid-work: the rows at the kill (exact: nothing commits while
     * the gate is closed) strictly below the total. */
    long long at_kill = pg_scalar("SELECT count(*) FROM events");
    harness_open_gate();
    harness_unpace_storing();
    if (at_kill <= 0 || at_kill >= 16000)
        fail_msg("the kill came at %lld of 16000 rows, not mid-work", at_kill);
    assert_true(harness_wait_for(worker_restarted, NULL, 60000));
    /* Every message delivered; then all stored, unless a batch was lost
     * (the gap check below names it). */
    assert_true(harness_wait_for(source_queues_empty, NULL, TIMEOUT_MS));
    if (!harness_wait_for(all_stored, NULL, 30000))
        print_message("only %lld of 16000 rows stored\n", pg_scalar("SELECT count(*) FROM events"));
    /* What the killed worker held unacknowledged went back to its queues
     * and out again with the redelivered flag. */
    if (!harness_wait_for(redelivered_since, NULL, 30000))
        fail_msg("RabbitMQ redelivered nothing after the kill (%lld before, %lld now)",
                 redelivered_base, harness_redelivered());
    assert_true(harness_wait_for(healthy, NULL, 60000));
    static char body[1 << 17];
    assert_int_equal(http_get(pool_url("/metrics"), body, sizeof body), 200);
    assert_int_equal((long)metric_sum(body, "sluice_worker_restarts_total"), 1);
    kill(pool, SIGTERM);
    /* Every worker's last run ended cleanly: the crash shows in the
     * restarts counter and the log, not in the exit code. */
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_generated_exactly(4000);
}

/* SIGTERM under load: the batch in hand is committed and acknowledged, the
 * rest handed back; the pool exits 0 with work left; a later worker stores
 * the rest once. Events arrive at 400 a second and a batch commits at
 * 1,000 events or after 2 s, so each worker nearly always holds a partly
 * filled batch, and the producer still runs when the signal comes. */
static void test_sigterm_during_load(void **state)
{
    (void)state;
    const char *producer[] = {
        harness_bin("sluice-producer"), "--count", "1000", "--rate", "100", "--seed", "14", NULL};
    pid_t prod = harness_spawn(producer, harness_log_path());
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--workers",
                          "2",
                          "--metrics-port",
                          "0",
                          "--batch-size",
                          "1000",
                          "--flush-interval-ms",
                          "2000",
                          NULL};
    pid_t pool = harness_spawn(argv, harness_log_path());
    harness_wait_sql("SELECT count(*) FROM events", 400, TIMEOUT_MS, harness_log_path());
    kill(pool, SIGTERM);
    if (harness_wait(pool, 60000) != 0)
        fail_with_log("pool did not stop cleanly");
    /* The signal struck mid-work: the pool stored some, not all... */
    long long at_exit = pg_scalar("SELECT count(*) FROM events");
    if (at_exit <= 0 || at_exit >= 4000)
        fail_msg("the pool stopped at %lld of 4000 rows, not mid-work", at_exit);
    if (harness_wait(prod, TIMEOUT_MS) != 0)
        fail_with_log("producer failed");
    /* ...and every event it did not store is back in the queues: none
     * acknowledged without being stored, none stored and handed back. */
    assert_int_equal(harness_backlog(), 4000 - at_exit);
    harness_drain(NULL);
    assert_generated_exactly(1000);
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
    assert_dead_letter("{\"explode\":true}", "explosives refused");
    char body[256], reason[256];
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
        harness_unit_test(test_parallel_mode_binds_workers_to_queues),
        harness_unit_test(test_unified_mode_and_metrics),
        harness_unit_test(test_crashed_worker_is_restarted_exactly_once),
        harness_unit_test(test_sigterm_during_load),
        harness_unit_test(test_dead_letter_after_bounded_retries),
        cmocka_unit_test(test_bad_flags),
    };
    const harness_options options = {.empties = HARNESS_EMPTY_DEAD, .log_name = "pool"};
    return harness_run_tests(tests, &options);
}
