/* Integration test of event detection end to end: events published with
 * amqp-publish are stored by a worker running a rules file, the rule fires,
 * the alert lands in `alerts` and, through sluice.alerts, in the notifier's
 * log channel; the dedup window suppresses repeats, across worker
 * processes; an alert committed with its batch but not yet published when
 * the worker is killed is published once by the next worker; a bad rules
 * file is refused at start. */
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

#define TIMEOUT_MS 120000

static char rules_path[256];

static const char rules_json[] =
    "{\"rules\": [{\"name\": \"big_spend\", \"sources\": [\"orders\"],\n"
    "  \"when\": {\"all\": [{\"path\": \"total\", \"gt\": 1000},\n"
    "                     {\"path\": \"customer.tier\", \"not_equals\": \"staff\"}]},\n"
    "  \"severity\": \"critical\",\n"
    "  \"message\": \"{customer.name} spent {total} on {order_id}\",\n"
    "  \"dedup\": {\"key\": \"{customer.id}\", \"window_s\": 3600}},\n"
    /* No dedup window: nothing but duplicate handling stands between a
     * redelivered copy and a second alert. */
    " {\"name\": \"huge_spend\", \"sources\": [\"orders\"],\n"
    "  \"when\": {\"path\": \"total\", \"gt\": 100000}, \"severity\": \"warning\",\n"
    "  \"message\": \"{order_id}: {total}\"}]}\n";

static int write_rules(void)
{
    snprintf(rules_path, sizeof rules_path, "/tmp/sluice-test-rules-%d.json", (int)getpid());
    harness_write_file(rules_path, rules_json);
    return 0;
}

static void publish_order(const char *id, const char *customer, const char *name, double total)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"order_id\":\"%s\",\"total\":%.2f,\"customer\":{\"id\":\"%s\",\"name\":\"%s\","
             "\"tier\":\"gold\"}}",
             id, total, customer, name);
    harness_amqp_publish("src.orders", body);
}

static void run_worker_until_idle(void)
{
    const char *const rules[] = {"--rules", rules_path, NULL};
    harness_drain(rules);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
}

static int log_has_two_alerts(void *arg)
{
    (void)arg;
    char *log = harness_slurp(harness_log_path());
    int n = 0;
    for (char *p = log ? strstr(log, "alert rule=big_spend") : NULL; p;
         p = strstr(p + 1, "alert rule=big_spend"))
        n++;
    free(log);
    return n >= 2;
}

static void test_rule_fires_and_dedup_window_holds(void **state)
{
    (void)state;
    publish_order("o-1", "c-1", "Ada <A&B>", 1500);
    publish_order("o-2", "c-1", "Ada <A&B>", 2500); /* same key: suppressed */
    publish_order("o-3", "c-2", "Bob", 1200);
    publish_order("o-4", "c-3", "Cy", 10); /* no match */
    run_worker_until_idle();

    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 4);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), 2);
    char text[512];
    pg_text("SELECT message FROM alerts WHERE dedup_key = 'c-1'", text, sizeof text);
    assert_string_equal(text, "Ada <A&B> spent 1500.00 on o-1");
    pg_text("SELECT routing_key FROM alerts WHERE dedup_key = 'c-2'", text, sizeof text);
    assert_string_equal(text, "alert.critical.big_spend");
    assert_int_equal(pg_scalar("SELECT suppressed FROM alert_windows WHERE dedup_key = 'c-1'"), 1);
    assert_int_equal(queue_ready("sluice.q.notifier"), 2);

    /* Another worker process, later: the window still holds for c-1. */
    publish_order("o-5", "c-1", "Ada <A&B>", 9000);
    run_worker_until_idle();
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), 2);
    assert_int_equal(pg_scalar("SELECT suppressed FROM alert_windows WHERE dedup_key = 'c-1'"), 2);

    /* The notifier's log channel delivers both and records it. */
    const char *argv[] = {harness_bin("sluice-notifier"), "--metrics-port", "0", NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    assert_true(harness_wait_for(log_has_two_alerts, NULL, TIMEOUT_MS));
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE state = 'sent'"), 2);
    char *log = harness_slurp(harness_log_path());
    assert_non_null(strstr(log, "message=\"Ada <A&B> spent 1500.00 on o-1\""));
    free(log);
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
}

/* A copy of an event (same body: the same derived msg_id, as a
 * redelivery or a republished copy has) raises nothing new. huge_spend has
 * no dedup window, so no window can hide a second alert; big_spend's
 * window must not have counted the copy as a repeat either. */
static void test_redelivered_events_raise_nothing_new(void **state)
{
    (void)state;
    publish_order("o-9", "c-9", "Di", 500000);
    publish_order("o-9", "c-9", "Di", 500000); /* same body: same derived msg_id */
    run_worker_until_idle();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE rule = 'huge_spend'"), 1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE rule = 'big_spend'"), 1);
    assert_int_equal(pg_scalar("SELECT coalesce(sum(suppressed), 0) FROM alert_windows"), 0);
    /* The copy is a duplicate event; its alert (same id) is still 'raised',
     * so it may be published again: the notifier absorbs it. */
    assert_true(queue_ready("sluice.q.notifier") >= 1);
}

static int alert_committed_and_publish_failed(void *arg)
{
    return pg_scalar("SELECT count(*) FROM alerts WHERE dedup_key = 'c-k1'") == 1 &&
           harness_log_count(arg, "no exchange 'sluice.alerts'") +
                   harness_log_count(arg, "NOT_FOUND") >
               0;
}

static int orders_back(void *arg)
{
    (void)arg;
    return queue_ready("sluice.q.orders") == 2;
}

/* The batch's events and its alert commit together; publishing the alert
 * comes after. Kill the worker in between (the alerts exchange is gone, so
 * it cannot publish and does not ack): the next worker gets the events back
 * as duplicates and publishes the alert, once. */
static void test_alert_committed_but_unpublished_survives_kill(void **state)
{
    (void)state;
    char worker_log[256];
    snprintf(worker_log, sizeof worker_log, "/tmp/sluice-test-alerts-worker-%d.log", (int)getpid());
    unlink(worker_log);
    exchange_delete("sluice.alerts");
    publish_order("o-k1", "c-k1", "Eve", 4000);
    publish_order("o-k2", "c-k2", "Fay", 20); /* no match */
    const char *argv[] = {
        harness_bin("sluice-worker"), "--rules", rules_path, "--metrics-port", "0", NULL};
    pid_t pid = harness_spawn(argv, worker_log);
    if (!harness_wait_for(alert_committed_and_publish_failed, worker_log, TIMEOUT_MS)) {
        char *log = harness_slurp(worker_log), tail[4096];
        snprintf(tail, sizeof tail, "%s", log ? log : "");
        free(log);
        fail_msg("no committed alert with a failed publish; worker log:\n%s", tail);
    }
    kill(pid, SIGKILL);
    harness_wait(pid, 30000);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 2);
    /* Never acknowledged: both back in the queue once the broker sees the
     * connection gone. */
    assert_true(harness_wait_for(orders_back, NULL, TIMEOUT_MS));

    const char *setup[] = {harness_bin("sluice-setup"), NULL};
    assert_int_equal(harness_run(setup, NULL, 0, 60000), 0);
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
    run_worker_until_idle();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 2);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), 1);
    assert_int_equal(queue_ready("sluice.q.notifier"), 1);
    char body[2048], value[8];
    assert_true(queue_get("sluice.q.notifier", body, sizeof body, "x", value, sizeof value));
    assert_non_null(strstr(body, "Eve spent 4000.00 on o-k1"));
    unlink(worker_log);
}

/* An order whose customer id (the dedup key) is 6,000 bytes and whose name
 * (in the message) is 60,000: PostgreSQL cannot index such a key, and it
 * once held back every event of the worker, retried forever. */
static void publish_long_order(const char *id, unsigned key_seed, double total)
{
    enum { KEY = 6000, NAME = 60000 };
    char *body = malloc(KEY + NAME + 256);
    assert_non_null(body);
    int n = sprintf(body, "{\"order_id\":\"%s\",\"total\":%.2f,\"customer\":{\"id\":\"", id, total);
    harness_random_text(body + n, KEY, key_seed);
    n += KEY;
    n += sprintf(body + n, "\",\"name\":\"");
    memset(body + n, 'n', NAME);
    n += NAME;
    sprintf(body + n, "\",\"tier\":\"gold\"}}");
    harness_amqp_publish("src.orders", body);
    free(body);
}

/* Large fields filled into a rule's dedup key and message: the events are
 * stored, the alerts raised and suppressed as with short ones (the key by
 * its digest), the message cut to 16 KiB; nothing is held back. */
static void test_large_fields_in_key_and_message(void **state)
{
    (void)state;
    publish_long_order("o-L1", 1, 1500);
    publish_long_order("o-L2", 1, 1600); /* the same long key: suppressed */
    publish_long_order("o-L3", 2, 1700); /* another long key */
    publish_order("o-L4", "c-4", "Eve", 1800);
    run_worker_until_idle();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 4);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE rule = 'big_spend'"), 3);
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM alert_windows WHERE dedup_key LIKE 'sha256:%'"), 2);
    assert_int_equal(pg_scalar("SELECT max(suppressed) FROM alert_windows"), 1);
    assert_int_equal(pg_scalar("SELECT max(octet_length(message)) FROM alerts"), 16384);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE message LIKE '%…'"), 2);
}

static void test_bad_rules_file_is_refused(void **state)
{
    (void)state;
    char bad_path[256];
    snprintf(bad_path, sizeof bad_path, "/tmp/sluice-test-bad-rules-%d.json", (int)getpid());
    harness_write_file(bad_path, "{\"rules\": [{\"name\": \"hot\", \"when\": {\"path\": \"t\", "
                                 "\"above\": 3}, \"severity\": \"info\", \"message\": \"m\"}]}");
    const char *argv[] = {
        harness_bin("sluice-worker"), "--rules", bad_path, "--metrics-port", "0", NULL};
    char err[2048];
    assert_int_equal(harness_run(argv, err, sizeof err, 30000), 2);
    if (!strstr(err, bad_path) || !strstr(err, "rule 'hot' (#1)") ||
        !strstr(err, "unknown operator 'above'"))
        fail_msg("error does not name file, rule and problem: %s", err);
    assert_int_equal((int)(strchr(err, '\n') - err) + 1, (int)strlen(err)); /* one line */
    unlink(bad_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_rule_fires_and_dedup_window_holds),
        harness_unit_test(test_redelivered_events_raise_nothing_new),
        harness_unit_test(test_alert_committed_but_unpublished_survives_kill),
        harness_unit_test(test_large_fields_in_key_and_message),
        harness_unit_test(test_bad_rules_file_is_refused),
    };
    const harness_options options = {
        .empties = HARNESS_EMPTY_ALERTS | HARNESS_EMPTY_NOTIFIER,
        .log_name = "alerts",
        .ready = write_rules,
        .setup_args = (const char *const[]){NULL},
    };
    return harness_run_tests(tests, &options);
}
