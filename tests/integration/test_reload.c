/* Integration test of SIGHUP in the worker pool: the rules file is re-read
 * while events keep flowing (none lost, none doubled, no worker restarted),
 * a file with a mistake is refused with the line sluice-worker prints at
 * start and the rules in force stay; and the pool's /metrics, with its
 * alert counters, passes `promtool check metrics` (Debian's prometheus). */
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
#define STREAM_EVENTS 3000

static char rules_path[256], bad_path[256], metrics_path[256];

/* In force at start: big orders. */
static const char rules_big[] =
    "{\"rules\": [{\"name\": \"big_order\", \"sources\": [\"orders\"],\n"
    "  \"when\": {\"path\": \"total\", \"gt\": 1000}, \"severity\": \"warning\",\n"
    "  \"message\": \"order {order_id}: {total}\"}]}\n";
/* After the first reload: small orders, one alert per customer an hour. */
static const char rules_small[] =
    "{\"rules\": [{\"name\": \"tiny_order\", \"sources\": [\"orders\"],\n"
    "  \"when\": {\"path\": \"total\", \"lt\": 1}, \"severity\": \"info\",\n"
    "  \"message\": \"order {order_id}: {total}\",\n"
    "  \"dedup\": {\"key\": \"{customer_id}\", \"window_s\": 3600}}]}\n";
/* A mistake: an operator that does not exist. */
static const char rules_bad[] =
    "{\"rules\": [{\"name\": \"hot\", \"when\": {\"path\": \"t\", \"above\": 3},\n"
    "  \"severity\": \"info\", \"message\": \"m\"}]}\n";

static int name_files(void)
{
    const char *dir = harness_workdir();
    snprintf(rules_path, sizeof rules_path, "%s/rules.json", dir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.json", dir);
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.prom", dir);
    return 0;
}

static long long alerts_of(const char *rule)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM alerts WHERE rule = '%s'", rule);
    return pg_scalar(sql);
}

typedef struct want {
    const char *rule;
    long long count;
} want;

static int alerts_reached(void *arg)
{
    const want *w = arg;
    return alerts_of(w->rule) >= w->count;
}

static void wait_alerts(const char *rule, long long count)
{
    want w = {rule, count};
    if (!harness_wait_for(alerts_reached, &w, TIMEOUT_MS))
        fail_msg("%s: %lld alerts, expected %lld", rule, alerts_of(rule), count);
}

static int events_reached(void *arg)
{
    return pg_scalar("SELECT count(*) FROM events") >= *(long long *)arg;
}

/* The value of one sample line ("name{labels} value") of /metrics, or -1. */
static long long metric(const char *text, const char *series)
{
    const char *p = text;
    size_t n = strlen(series);
    while ((p = strstr(p, series))) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atoll(p + n + 1);
        p += n;
    }
    return -1;
}

static void test_sighup_reloads_rules_without_losing_events(void **state)
{
    (void)state;
    harness_write_file(rules_path, rules_big);
    const char *worker[] = {harness_bin("sluice-worker"), "--rules", rules_path, "--metrics-port",
                            harness_port_text(8),         NULL};
    pid_t pool = harness_spawn(worker, harness_log_path());
    harness_wait_log(harness_log_path(), "worker.0: consuming", 1, TIMEOUT_MS);
    int child = harness_worker_pid(harness_log_path(), 0);
    assert_true(child > 0);

    /* A stream of orders; the rules change under it. */
    char count[16];
    snprintf(count, sizeof count, "%d", STREAM_EVENTS);
    const char *producer[] = {harness_bin("sluice-producer"),
                              "--source",
                              "orders",
                              "--count",
                              count,
                              "--rate",
                              "1500",
                              "--seed",
                              "5",
                              NULL};
    pid_t prod = harness_spawn(producer, harness_log_path());
    long long some = STREAM_EVENTS / 4;
    assert_true(harness_wait_for(events_reached, &some, TIMEOUT_MS));
    long long big_before = alerts_of("big_order");
    harness_write_file(rules_path, rules_small);
    assert_int_equal(kill(pool, SIGHUP), 0);
    harness_wait_log(harness_log_path(), "worker.0: rules reloaded", 1, TIMEOUT_MS);
    /* The reload landed mid-stream: events stored now (at least those
     * stored before the reload) fall short of the stream, so the last ones
     * met the new rules. */
    long long at_reload = pg_scalar("SELECT count(*) FROM events");
    if (at_reload >= STREAM_EVENTS)
        fail_msg("the reload came after all %d events were stored", STREAM_EVENTS);
    assert_int_equal(harness_wait(prod, TIMEOUT_MS), 0);
    long long all = STREAM_EVENTS;
    assert_true(harness_wait_for(events_reached, &all, TIMEOUT_MS));

    /* Every event stored once, by the same worker process: nothing was
     * dropped or redone for the reload. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), STREAM_EVENTS);
    assert_int_equal(harness_worker_pid(harness_log_path(), 0), child);
    assert_int_equal(harness_log_count(harness_log_path(), "worker crashed"), 0);
    assert_true(big_before > 0); /* the first rules were in force... */
    long long big_after = alerts_of("big_order");
    /* ...and the new ones from the reload on: no big_order alert raised
     * on events after it, the generator's orders never total under 1. */
    harness_amqp_publish("src.orders", "{\"order_id\":\"late-big\",\"total\":5000}");
    harness_amqp_publish("src.orders",
                         "{\"order_id\":\"t-1\",\"customer_id\":\"c-1\",\"total\":0.5}");
    wait_alerts("tiny_order", 1);
    long long stored = STREAM_EVENTS + 2;
    assert_true(harness_wait_for(events_reached, &stored, TIMEOUT_MS));
    assert_int_equal(alerts_of("big_order"), big_after);

    /* A file with a mistake: the same line as at start, the rules stay. */
    harness_write_file(bad_path, rules_bad);
    const char *bad_start[] = {
        harness_bin("sluice-worker"), "--rules", bad_path, "--metrics-port", "0", NULL};
    char start_err[2048];
    assert_int_equal(harness_run(bad_start, start_err, sizeof start_err, 30000), 2);
    const char *prefix = "sluice-worker: ";
    assert_true(strncmp(start_err, prefix, strlen(prefix)) == 0);
    char *line = start_err + strlen(prefix);
    line[strcspn(line, "\n")] = '\0';
    /* The same message names the file the pool reads. */
    char expected[2048];
    char *at = strstr(line, bad_path);
    assert_non_null(at);
    snprintf(expected, sizeof expected, "%.*s%s%s", (int)(at - line), line, rules_path,
             at + strlen(bad_path));
    harness_write_file(rules_path, rules_bad);
    assert_int_equal(kill(pool, SIGHUP), 0);
    harness_wait_log(harness_log_path(), "rules reload refused", 1, TIMEOUT_MS);
    harness_wait_log(harness_log_path(), expected, 1, TIMEOUT_MS);
    /* Still the tiny_order rules: a second tiny order of c-1 is suppressed
     * by its dedup window, one of c-2 raises an alert. */
    harness_amqp_publish("src.orders",
                         "{\"order_id\":\"t-2\",\"customer_id\":\"c-1\",\"total\":0.25}");
    harness_amqp_publish("src.orders",
                         "{\"order_id\":\"t-3\",\"customer_id\":\"c-2\",\"total\":0.75}");
    wait_alerts("tiny_order", 2);
    stored = STREAM_EVENTS + 4;
    assert_true(harness_wait_for(events_reached, &stored, TIMEOUT_MS));
    assert_int_equal(harness_worker_pid(harness_log_path(), 0), child);

    /* /metrics: the alert counters match the warehouse, and promtool
     * accepts the whole exposition. */
    char url[128], *body = malloc(1 << 20);
    assert_non_null(body);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", harness_port(8));
    assert_int_equal(http_get(url, body, 1 << 20), 200);
    assert_int_equal(metric(body, "sluice_alerts_raised_total{source=\"orders\"}"),
                     pg_scalar("SELECT count(*) FROM alerts"));
    assert_int_equal(metric(body, "sluice_alerts_suppressed_total{source=\"orders\"}"),
                     pg_scalar("SELECT COALESCE(sum(suppressed), 0) FROM alert_windows"));
    assert_int_equal(metric(body, "sluice_alerts_suppressed_total{source=\"orders\"}"), 1);
    assert_int_equal(metric(body, "sluice_alerts_raised_total{source=\"sensors\"}"), 0);
    FILE *f = fopen(metrics_path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    free(body);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", metrics_path);
    if (system(cmd) != 0)
        fail_msg("promtool check metrics refused the worker's /metrics (above)");

    kill(pool, SIGTERM);
    assert_int_equal(harness_wait(pool, 60000), 0);
    assert_source_queues_empty();
}

/* A pool without a rules file ignores SIGHUP instead of dying of it. */
static void test_sighup_without_rules_is_harmless(void **state)
{
    (void)state;
    const char *worker[] = {harness_bin("sluice-worker"), "--metrics-port", "0", NULL};
    pid_t pool = harness_spawn(worker, harness_log_path());
    harness_wait_log(harness_log_path(), "worker.0: consuming", 1, TIMEOUT_MS);
    assert_int_equal(kill(pool, SIGHUP), 0);
    harness_wait_log(harness_log_path(), "no rules file to re-read", 1, TIMEOUT_MS);
    harness_amqp_publish("src.orders", "{\"order_id\":\"after-hup\",\"total\":1}");
    long long one = 1;
    assert_true(harness_wait_for(events_reached, &one, TIMEOUT_MS));
    kill(pool, SIGTERM);
    assert_int_equal(harness_wait(pool, 60000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_sighup_reloads_rules_without_losing_events),
        harness_unit_test(test_sighup_without_rules_is_harmless),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){NULL},
        .empties = HARNESS_EMPTY_ALERTS | HARNESS_EMPTY_NOTIFIER,
        .workdir = 1,
        .log_name = "reload",
        .ready = name_files,
    };
    return harness_run_tests(tests, &options);
}
