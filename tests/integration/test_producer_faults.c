/* Integration test of the producer through a broker outage: RabbitMQ is
 * stopped and started again (scripts/stack.sh stop-rabbit / start-rabbit)
 * in the middle of a run. The producer reconnects, republishes what was
 * not confirmed, holds back its source while it cannot publish, and every
 * event accepted from the source ends in the warehouse exactly once. */
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

#define TIMEOUT_MS 300000
#define EVENTS 20000

#ifndef SLUICE_SOURCE_DIR
#error "SLUICE_SOURCE_DIR must name the source tree (for scripts/stack.sh)"
#endif

static const char *const sources[] = {"s_outage"};
static pid_t producer = -1; /* killed by the teardown if a check failed first */

static int queue_has(void *arg)
{
    return queue_ready("sluice.q.s_outage") >= *(long *)arg;
}

static void test_broker_restart_mid_run(void **state)
{
    (void)state;
    char input[512], config[512], log[512], cmd[4096];
    snprintf(input, sizeof input, "%s/events.ndjson", harness_workdir());
    snprintf(config, sizeof config, "%s/outage.conf", harness_workdir());
    snprintf(log, sizeof log, "%s/producer.log", harness_workdir());
    FILE *f = fopen(input, "w");
    assert_non_null(f);
    for (int i = 0; i < EVENTS; i++)
        fprintf(f, "{\"seq\":%d,\"what\":\"outage test\"}\n", i);
    assert_int_equal(fclose(f), 0);
    f = fopen(config, "w");
    assert_non_null(f);
    /* Read at 2,000/s so the outage falls in the middle; a small buffer so
     * backpressure holds the source back while the broker is away. */
    fputs("buffer = 500\nheartbeat = 5\n[source s_outage]\nadapter = stdin\nrate = 2000\n", f);
    assert_int_equal(fclose(f), 0);
    /* A node that is down comes first in the list: connecting goes round
     * the list to the one that answers, at the start and after the outage. */
    snprintf(cmd, sizeof cmd,
             "exec %s --config %s --amqp-url 'amqp://guest:guest@127.0.0.1:9/,%s' < %s",
             harness_bin("sluice-producer"), config, harness_amqp_url(), input);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    producer = harness_spawn(argv, log);

    long some = 3000;
    assert_true(harness_wait_for(queue_has, &some, TIMEOUT_MS));
    /* RabbitMQ stops reading from the producer (memory alarm) before it
     * stops: what the producer sends meanwhile is certainly unconfirmed
     * when the connection goes, whatever the timing. The restart clears
     * the alarm. */
    stack_ctl("block-publishers");
    assert_true(harness_wait_for(harness_publisher_blocked, NULL, TIMEOUT_MS));
    long ready_at_stop = queue_ready("sluice.q.s_outage");
    if (ready_at_stop <= 0 || ready_at_stop >= EVENTS)
        fail_msg("the broker stops with %ld of %d events queued, not mid-publish", ready_at_stop,
                 EVENTS);
    stack_ctl("stop-rabbit");
    harness_wait_log(log, "connection lost", 1, TIMEOUT_MS);
    stack_ctl("start-rabbit");

    int rc = harness_wait(producer, TIMEOUT_MS);
    producer = -1;
    char *text = harness_slurp(log);
    if (rc != 0)
        fail_msg("producer exit %d; log:\n%s", rc, text ? text : "");
    /* It connected twice and finished with nothing outstanding. */
    const char *second = strstr(text, "connected url=");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "connected url="));
    assert_non_null(strstr(text, "confirmed=20000 outstanding=0 buffered=0"));
    assert_null(strstr(text, "connected url=amqp://guest@127.0.0.1:9/"));
    /* The reconnect republished what was unconfirmed (the first connect
     * reports 0, so only a reconnect can make this positive). */
    long long republished = harness_log_max(log, "unconfirmed_republished=");
    if (republished <= 0)
        fail_msg("the producer republished %lld messages after the restart; log:\n%s", republished,
                 text);
    /* The buffer never held more than its bound (500, plus the one event a
     * stopping reader may hand over): the source was held back instead. */
    assert_true(harness_log_max(log, "buffered=") <= 501);
    free(text);

    const char *worker[] = {
        harness_bin("sluice-worker"), "--sources", "s_outage", "--idle-exit-ms", "2000", NULL};
    char err[16384];
    if (harness_run(worker, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("worker failed: %s", err);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 's_outage'"), EVENTS);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT (payload->>'seq')::int) FROM events "
                               "WHERE source = 's_outage'"),
                     EVENTS);
    assert_int_equal(queue_ready("sluice.q.s_outage"), 0);
}

/* Whatever happened, the next tests find RabbitMQ running and no
 * producer of this one left. */
static int cleanup(void **state)
{
    (void)state;
    if (producer > 0) {
        kill(producer, SIGKILL);
        harness_wait(producer, TIMEOUT_MS);
        producer = -1;
    }
    stack_ctl("start-rabbit");
    stack_ctl("unblock-publishers");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_restart_mid_run, harness_test_setup, cleanup),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){"--sources", "s_outage", NULL},
        .sources = sources,
        .nsources = 1,
        .workdir = 1,
    };
    return harness_run_tests(tests, &options);
}
