/* Fault tests of the pipeline against the real servers: PostgreSQL stopped
 * for a while mid-stream, RabbitMQ restarted mid-stream (in both, every
 * event ends in the warehouse exactly once), and sluice.dead missing when
 * an event must be dead-lettered (it stays in its queue until it can be). */
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

/* Leaves both servers running for whatever test comes next. */
static int restore(void **state)
{
    (void)state;
    harness_kill_spawned();
    stack_ctl("start");
    stack_ctl("unblock-publishers");
    return 0;
}

static long health_wanted;
static int health_is(void *arg)
{
    (void)arg;
    char body[256], url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", harness_port(3));
    return http_get(url, body, sizeof body) == health_wanted;
}

static long backlog_wanted;
static int backlog_reached(void *arg)
{
    (void)arg;
    return harness_backlog() >= backlog_wanted;
}

static pid_t start_pool(void)
{
    /* Small batches and windows: paced (harness_pace_storing), two
     * workers store at most 250 events a second, and most of a backlog
     * waits in the queues rather than in their prefetch windows. */
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--workers",
                          "2",
                          "--metrics-port",
                          harness_port_text(3),
                          "--stats-interval-ms",
                          "1000",
                          "--batch-size",
                          "25",
                          "--prefetch",
                          "200",
                          NULL};
    pid_t pool = harness_spawn(argv, harness_log_path());
    health_wanted = 200;
    assert_true(harness_wait_for(health_is, NULL, 60000));
    return pool;
}

static pid_t start_producer(const char *count, const char *rate)
{
    const char *argv[] = {
        harness_bin("sluice-producer"), "--count", count, "--rate", rate, "--seed", "77", NULL};
    return harness_spawn(argv, harness_log_path());
}

/* Waits for the producer and the rows, stops the pool, and checks the
 * warehouse holds each generated event once (per_source per source). */
static void finish(pid_t producer, pid_t pool, long long per_source)
{
    if (harness_wait(producer, TIMEOUT_MS) != 0) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("producer failed; log:\n%s", text ? text : "");
    }
    harness_unpace_storing();
    harness_wait_sql("SELECT count(*) FROM events", 4 * per_source, TIMEOUT_MS, harness_log_path());
    kill(pool, SIGTERM);
    if (harness_wait(pool, 60000) != 0) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("pool did not stop cleanly; log:\n%s", text ? text : "");
    }
    assert_generated_exactly(per_source);
}

/* Fails unless the rows stored are strictly between 0 and total: the fault
 * about to strike comes mid-work. */
static void assert_mid_work(long long total)
{
    long long rows = pg_scalar("SELECT count(*) FROM events");
    if (rows <= 0 || rows >= total)
        fail_msg("the fault comes at %lld of %lld rows, not mid-work", rows, total);
}

/* While PostgreSQL is down the workers stop consuming (the backlog grows
 * in the queues, /healthz says 503); once it is back they store it all. */
static void test_postgres_stopped_mid_stream(void **state)
{
    (void)state;
    pid_t pool = start_pool();
    pid_t producer = start_producer("3000", "500");
    harness_wait_sql("SELECT count(*) FROM events", 2000, TIMEOUT_MS, harness_log_path());
    assert_mid_work(12000);

    stack_ctl("stop-pg");
    health_wanted = 503;
    assert_true(harness_wait_for(health_is, NULL, 60000));
    backlog_wanted = 1500;
    assert_true(harness_wait_for(backlog_reached, NULL, 60000));
    stack_ctl("start-pg");

    health_wanted = 200;
    assert_true(harness_wait_for(health_is, NULL, 60000));
    finish(producer, pool, 3000);
}

static int redelivered(void *arg)
{
    (void)arg;
    return harness_redelivered() > 0;
}

/* RabbitMQ stops and starts again mid-stream: producer and workers
 * reconnect; unconfirmed events are republished and unacknowledged ones
 * redelivered, and the warehouse absorbs every copy. So that both happen,
 * not by luck of timing: storing is paced (the workers fall behind the
 * producer, so they hold full prefetch windows and a backlog waits), and
 * RabbitMQ's memory alarm stops it reading from the producer before the
 * stop, so the producer holds unconfirmed messages. */
static void test_rabbitmq_restarted_mid_stream(void **state)
{
    (void)state;
    harness_pace_storing();
    pid_t pool = start_pool();
    /* 600 events a second for 20 s: faster than the paced workers, and
     * still publishing when the alarm (rabbitmqctl takes seconds) is on. */
    pid_t producer = start_producer("3000", "150");
    harness_wait_sql("SELECT count(*) FROM events", 1000, TIMEOUT_MS, harness_log_path());
    stack_ctl("block-publishers");
    if (!harness_wait_for(harness_publisher_blocked, NULL, 60000)) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("RabbitMQ never blocked the producer (rows %lld, backlog %ld); log:\n%s",
                 pg_scalar("SELECT count(*) FROM events"), harness_backlog(), text ? text : "");
    }
    assert_mid_work(12000);
    long backlog = harness_backlog();
    if (backlog <= 0)
        fail_msg("no backlog at the restart: the workers held nothing unacknowledged");

    stack_ctl("stop-rabbit");
    health_wanted = 503;
    assert_true(harness_wait_for(health_is, NULL, 60000));
    stack_ctl("start-rabbit");

    health_wanted = 200;
    if (!harness_wait_for(health_is, NULL, 120000)) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("workers not healthy after the restart; log:\n%s", text ? text : "");
    }
    finish(producer, pool, 3000);
    /* The producer republished what the broker had not confirmed (its
     * first connect reports 0, so only a reconnect can raise this)... */
    long long republished = harness_log_max(harness_log_path(), "unconfirmed_republished=");
    if (republished <= 0)
        fail_msg("the producer republished %lld messages after the restart", republished);
    /* ...and RabbitMQ delivered again what the workers held. */
    if (!harness_wait_for(redelivered, NULL, 30000))
        fail_msg("RabbitMQ redelivered nothing after the restart");
}

static int orders_ready(void *arg)
{
    (void)arg;
    return queue_ready("sluice.q.orders") == 1;
}

static int dead_arrived(void *arg)
{
    (void)arg;
    return queue_ready("sluice.dead") == 1;
}

/* Puts back what the dead-letter test removes, whatever became of it. */
static int restore_dead(void **state)
{
    harness_accept_events();
    harness_group_setup(state);
    return restore(state);
}

/* sluice.dead deleted (sluice.dlx then routes nowhere): an event that must
 * be dead-lettered is not acknowledged but stays in its queue, the worker
 * says why and backs off rather than spinning, and once sluice-setup has
 * declared sluice.dead again the same worker dead-letters it there. */
static void test_event_kept_while_sluice_dead_is_missing(void **state)
{
    (void)state;
    harness_refuse_marked_events();
    queue_delete("sluice.dead");
    assert_int_equal(queue_ready("sluice.dead"), -1);
    harness_amqp_publish("src.orders", "{\"refuse\":true}");

    const char *argv[] = {
        harness_bin("sluice-worker"), "--max-retries", "2", "--metrics-port", "0", NULL};
    pid_t worker = harness_spawn(argv, harness_log_path());
    const char *why = "sluice.dlx routed the dead letter nowhere (312 NO_ROUTE): is sluice.dead "
                      "bound? run sluice-setup";
    harness_wait_log(harness_log_path(), why, 1, 60000);
    /* Between attempts the event is back in its queue, not lost. */
    assert_true(harness_wait_for(orders_ready, NULL, 30000));
    /* Backing off: a handful of attempts in three seconds, not hundreds. */
    sleep(3);
    int attempts = harness_log_count(harness_log_path(), why);
    if (attempts > 10) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("%d attempts in 3 s; log:\n%s", attempts, text ? text : "");
    }
    assert_int_equal(harness_log_count(harness_log_path(), "event dead-lettered to sluice.dead"),
                     0);

    /* sluice-setup declares sluice.dead again: the worker recovers. */
    assert_int_equal(harness_group_setup(NULL), 0);
    if (!harness_wait_for(dead_arrived, NULL, 60000)) {
        char *text = harness_slurp(harness_log_path());
        fail_msg("the event never reached sluice.dead; log:\n%s", text ? text : "");
    }
    harness_wait_log(harness_log_path(), "event dead-lettered to sluice.dead", 1, 10000);
    kill(worker, SIGTERM);
    assert_int_equal(harness_wait(worker, 60000), 0);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 0);
    assert_dead_letter("{\"refuse\":true}", "refused for the test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_postgres_stopped_mid_stream, harness_test_setup,
                                        restore),
        cmocka_unit_test_setup_teardown(test_rabbitmq_restarted_mid_stream, harness_test_setup,
                                        restore),
        cmocka_unit_test_setup_teardown(test_event_kept_while_sluice_dead_is_missing,
                                        harness_test_setup, restore_dead),
    };
    const harness_options options = {.log_name = "faults"};
    return harness_run_tests(tests, &options);
}
