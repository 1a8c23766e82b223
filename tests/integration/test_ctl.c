/* Integration tests of sluice-ctl against the real servers:
 *  - replay-dead moves the matching dead letters back to their source
 *    queue, leaves the others in sluice.dead in their order, and the worker
 *    stores the replayed events;
 *  - replay-dead killed (SIGKILL) in the middle, then run again: nothing
 *    lost, and the warehouse holds each event exactly once;
 *  - reprocess-errors stores the ingest_errors rows whose cause was fixed
 *    (a projection trigger's constraint), keeps the others with their new
 *    reason, and honours its filters;
 *  - status reports queues, warehouse, ingest_errors, dead letters and
 *    alerts, as a table and as JSON, and leaves sluice.dead as it was. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "deadletter.h"
#include "harness.h"
#include "publisher.h"

#define TIMEOUT_MS 120000
#define INTERRUPTED_EVENTS 3000

/* Publishes dead letters the way the workers do (common/deadletter.h):
 * to sluice.dlx with the original routing key and x-sluice-reason. */
typedef struct dead_writer {
    strlist urls;
    deadletter *dl;
} dead_writer;

static void dead_open(dead_writer *w)
{
    assert_int_equal(strlist_split(harness_amqp_url(), &w->urls), 0);
    w->dl = deadletter_new(&w->urls, 30);
    assert_non_null(w->dl);
}

static void dead_put(dead_writer *w, const char *routing_key, const char *id, const char *source,
                     const char *reason, const char *body)
{
    dead_letter m = {.routing_key = routing_key,
                     .message_id = id,
                     .source = source,
                     .body = body,
                     .len = strlen(body),
                     .reason = reason,
                     .attempts = 5};
    char err[512];
    if (deadletter_publish(w->dl, &m, err, sizeof err) != 0)
        fail_msg("dead letter: %s", err);
}

static void dead_close(dead_writer *w)
{
    deadletter_free(w->dl);
    strlist_free(&w->urls);
}

/* Dead letter i of dead_put_many, in the buffers of one call. */
typedef struct dead_maker {
    const char *prefix;
    char id[32], body[64];
} dead_maker;

static void make_dead(int i, pub_message *m, void *arg)
{
    dead_maker *d = arg;
    snprintf(d->id, sizeof d->id, "%s-%d", d->prefix, i);
    snprintf(d->body, sizeof d->body, "{\"n\":%d}", i);
    m->routing_key = "src.orders";
    m->message_id = d->id;
    m->source = "orders";
    m->body = d->body;
    m->body_len = strlen(d->body);
}

/* Many dead letters of orders at once, with a window of confirms (one
 * round trip each would take most of the test's time): routing key
 * src.orders, ids <prefix>-<i>, bodies {"n":i}, no reason header. */
static void dead_put_many(const char *prefix, int n)
{
    dead_maker d = {.prefix = prefix};
    harness_publish_each("sluice.dlx", n, make_dead, &d, 60000);
    assert_int_equal(queue_ready("sluice.dead"), n);
}

/* Runs sluice-ctl with args (a string of flags), stdout into out. Returns
 * its exit code. */
static int ctl(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>>%s", harness_bin("sluice-ctl"), args, harness_log_path());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The bodies left in a queue, in order, each followed by '|'. */
static void drain_bodies(const char *queue, char *out, size_t cap)
{
    out[0] = '\0';
    char body[256], value[8];
    while (queue_get(queue, body, sizeof body, "x", value, sizeof value)) {
        strncat(out, body, cap - strlen(out) - 1);
        strncat(out, "|", cap - strlen(out) - 1);
    }
}

static void test_replay_filters_and_keeps_the_rest_in_order(void **state)
{
    (void)state;
    dead_writer w;
    dead_open(&w);
    dead_put(&w, "src.orders", "d1", "orders", "boom", "{\"n\":1}");
    dead_put(&w, "src.sensors", "d2", "sensors", "boom", "{\"n\":2}");
    dead_put(&w, "src.orders", "d3", "orders", "other", "{\"n\":3}");
    dead_put(&w, "alert.info.big", "d4", "orders", "boom", "{\"n\":4}"); /* an alert */
    dead_put(&w, "src.orders", "d5", "orders", "boom", "{\"n\":5}");
    dead_put(&w, "src.orders", "d6", "orders", "boom", "{\"n\":6}");
    dead_close(&w);
    assert_int_equal(queue_ready("sluice.dead"), 6);

    char out[1024];
    assert_int_equal(ctl("replay-dead --source orders --reason boom", out, sizeof out), 0);
    assert_non_null(strstr(out, "replayed 3 dead letters"));
    assert_non_null(
        strstr(out, "kept in sluice.dead: 3 filtered out or not a source event, 0 not reached"));
    assert_int_equal(queue_ready("sluice.q.orders"), 3);
    assert_int_equal(queue_ready("sluice.q.sensors"), 0);

    /* What did not match stays, in its order. */
    char left[1024];
    drain_bodies("sluice.dead", left, sizeof left);
    assert_string_equal(left, "{\"n\":2}|{\"n\":3}|{\"n\":4}|");

    /* The replayed ones reach the warehouse under their message ids. */
    harness_drain(NULL);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'orders' AND msg_id "
                               "IN ('d1', 'd5', 'd6')"),
                     3);

    /* Nothing left to replay: a second run moves nothing. */
    assert_int_equal(ctl("replay-dead", out, sizeof out), 0);
    assert_non_null(strstr(out, "replayed 0 dead letters"));

    /* A source without a queue: the broker returns the copy, the dead
     * letter stays, and the exit code says so. */
    dead_open(&w);
    dead_put(&w, "src.ghost", "g1", "ghost", "boom", "{\"n\":7}");
    dead_close(&w);
    assert_int_equal(ctl("replay-dead --source ghost", out, sizeof out), 1);
    assert_non_null(strstr(out, "replayed 0 dead letters"));
    harness_wait_log(harness_log_path(), "its source queue does not exist", 1, 10000);
    drain_bodies("sluice.dead", left, sizeof left);
    assert_string_equal(left, "{\"n\":7}|");

    /* Bad usage is refused before anything moves. */
    assert_int_equal(ctl("replay-dead --source 'Not A Source'", out, sizeof out), 2);
}

static int replay_under_way(void *arg)
{
    (void)arg;
    return queue_ready("sluice.q.orders") >= 200;
}

static int all_accounted(void *arg)
{
    (void)arg;
    return queue_ready("sluice.dead") + queue_ready("sluice.q.orders") >= INTERRUPTED_EVENTS;
}

static void test_replay_killed_midway_loses_and_doubles_nothing(void **state)
{
    (void)state;
    dead_put_many("k", INTERRUPTED_EVENTS);

    const char *argv[] = {harness_bin("sluice-ctl"), "replay-dead", NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    assert_true(harness_wait_for(replay_under_way, NULL, TIMEOUT_MS));
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(harness_wait(pid, 30000), -1);

    /* The broker took back what was unacknowledged: every message is in
     * one queue or the other, at most those in flight (a window of 256) in
     * both. */
    assert_true(harness_wait_for(all_accounted, NULL, 30000));
    long dead = queue_ready("sluice.dead"), moved = queue_ready("sluice.q.orders");
    if (dead == 0)
        fail_msg("the replay finished before it was killed: nothing was interrupted");
    assert_true(moved > 0);
    assert_true(dead + moved <= INTERRUPTED_EVENTS + 256);

    /* Run again to the end: sluice.dead empties, and the warehouse stores
     * each event once (message_id absorbs a doubled copy). */
    char out[512];
    assert_int_equal(ctl("replay-dead", out, sizeof out), 0);
    assert_int_equal(queue_ready("sluice.dead"), 0);
    assert_true(queue_ready("sluice.q.orders") >= INTERRUPTED_EVENTS);
    harness_drain(NULL);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), INTERRUPTED_EVENTS);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT payload->>'n') FROM events"),
                     INTERRUPTED_EVENTS);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
}

static int exactly_accounted(void *arg)
{
    return queue_ready("sluice.dead") + queue_ready("sluice.q.orders") == *(long *)arg;
}

static void test_replay_stopped_by_sigint_moves_each_once(void **state)
{
    (void)state;
    dead_put_many("s", INTERRUPTED_EVENTS);
    const char *argv[] = {harness_bin("sluice-ctl"), "replay-dead", NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    assert_true(harness_wait_for(replay_under_way, NULL, TIMEOUT_MS));
    assert_int_equal(kill(pid, SIGINT), 0);
    assert_int_equal(harness_wait(pid, 30000), 0);
    /* Stopped after the message in hand: each message in exactly one
     * queue, the rest not reached. */
    long all = INTERRUPTED_EVENTS;
    assert_true(harness_wait_for(exactly_accounted, &all, 30000));
    assert_true(queue_ready("sluice.dead") > 0);
    harness_wait_log(harness_log_path(), "not reached", 1, 10000);
    harness_wait_log(harness_log_path(), "replay interrupted by a signal", 1, 10000);
}

/* A projection of sensors, filled by a trigger of the test's own, that
 * refuses values at or above a limit, so events fail in the database
 * until the limit is raised. */
static void install_strict_projection(void)
{
    pg_exec("DROP TABLE IF EXISTS ctl_test_readings");
    pg_exec("CREATE TABLE ctl_test_readings (msg_id text PRIMARY KEY, value numeric,"
            " CONSTRAINT ctl_test_value_lt_100 CHECK (value < 100))");
    pg_exec("CREATE OR REPLACE FUNCTION ctl_test_project() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO ctl_test_readings SELECT msg_id, (payload->>'value')::numeric"
            " FROM new_events WHERE source = 'sensors'; RETURN NULL; END $$");
    pg_exec("CREATE TRIGGER ctl_test_project AFTER INSERT ON events"
            " REFERENCING NEW TABLE AS new_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION ctl_test_project()");
}

static int restore_projection(void **state)
{
    harness_kill_spawned();
    pg_exec("DROP TRIGGER IF EXISTS ctl_test_project ON events");
    pg_exec("DROP TABLE IF EXISTS ctl_test_readings");
    pg_exec("DROP FUNCTION IF EXISTS ctl_test_project()");
    return harness_test_teardown(state);
}

static void test_reprocess_stores_what_was_fixed(void **state)
{
    (void)state;
    install_strict_projection();
    harness_amqp_publish("src.sensors", "{\"device\":\"a\",\"value\":5}");
    harness_amqp_publish("src.sensors", "{\"device\":\"b\",\"value\":150}");
    harness_amqp_publish("src.sensors", "{\"device\":\"c\",\"value\":250}");
    harness_amqp_publish("src.sensors", "{\"device\":\"d\",\"value\":170}");
    harness_amqp_publish("src.sensors", "{not json");
    harness_drain(NULL);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 1);
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = 'rejected_by_database'"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = 'invalid_json'"),
                     1);

    /* The cause is fixed for some: the limit goes up to 200. */
    pg_exec("ALTER TABLE ctl_test_readings DROP CONSTRAINT ctl_test_value_lt_100,"
            " ADD CONSTRAINT ctl_test_value_lt_200 CHECK (value < 200)");

    /* An id range holding only device d's row. */
    char args[256], out[1024];
    long long d_id = pg_scalar("SELECT id FROM ingest_errors WHERE convert_from(raw, 'UTF8')"
                               " LIKE '%\"d\"%'");
    snprintf(args, sizeof args, "reprocess-errors --min-id %lld --max-id %lld", d_id, d_id);
    assert_int_equal(ctl(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "reprocessed 1 ingest_errors rows: 1 stored"));
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'device' = 'd'"), 1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 3);

    /* By reason: b is stored now, c fails again on the new constraint and
     * stays; the invalid JSON is not touched. */
    assert_int_equal(ctl("reprocess-errors --reason rejected_by_database", out, sizeof out), 0);
    assert_non_null(strstr(out, "reprocessed 2 ingest_errors rows: 1 stored as events, 1 failed"));
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ctl_test_readings"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events e JOIN ctl_test_readings r"
                               " USING (msg_id) WHERE e.payload->>'device' IN ('a', 'b', 'd')"),
                     3);
    char detail[512];
    pg_text("SELECT reason || ': ' || detail FROM ingest_errors"
            " WHERE convert_from(raw, 'UTF8') LIKE '%\"c\"%'",
            detail, sizeof detail);
    if (!strstr(detail, "rejected_by_database") || !strstr(detail, "ctl_test_value_lt_200"))
        fail_msg("row c should carry its new failure, has: %s", detail);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = 'invalid_json'"),
                     1);

    /* A row that now fails for another reason takes that reason. */
    assert_int_equal(
        ctl("reprocess-errors --source sensors --max-message-bytes 12", out, sizeof out), 0);
    assert_non_null(strstr(out, "reprocessed 2 ingest_errors rows: 0 stored as events, 2 failed"));
    pg_text("SELECT reason FROM ingest_errors WHERE convert_from(raw, 'UTF8') LIKE '%\"c\"%'",
            detail, sizeof detail);
    assert_string_equal(detail, "too_large");
    pg_text("SELECT reason FROM ingest_errors WHERE convert_from(raw, 'UTF8') = '{not json'",
            detail, sizeof detail);
    assert_string_equal(detail, "invalid_json");

    /* Stored twice is impossible: reprocessing a row whose event exists
     * (stored meanwhile by a republished copy) only clears the row. */
    pg_exec("INSERT INTO ingest_errors (msg_id, source, routing_key, reason, raw, received_at)"
            " SELECT msg_id, source, routing_key, 'rejected_by_database',"
            " convert_to(payload::text, 'UTF8'), received_at FROM events"
            " WHERE payload->>'device' = 'a'");
    assert_int_equal(ctl("reprocess-errors --reason rejected_by_database", out, sizeof out), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 2);
}

static json_object *find_source(json_object *doc, const char *name)
{
    json_object *sources;
    assert_true(json_object_object_get_ex(doc, "sources", &sources));
    for (size_t i = 0; i < json_object_array_length(sources); i++) {
        json_object *s = json_object_array_get_idx(sources, i), *n;
        if (json_object_object_get_ex(s, "source", &n) &&
            strcmp(json_object_get_string(n), name) == 0)
            return s;
    }
    fail_msg("source %s missing from status", name);
    return NULL;
}

static long long path_int(json_object *o, const char *a, const char *b)
{
    json_object *x, *y;
    assert_true(json_object_object_get_ex(o, a, &x));
    if (!b)
        return json_object_get_int64(x);
    assert_true(json_object_object_get_ex(x, b, &y));
    return json_object_get_int64(y);
}

static void test_status_reports_every_part(void **state)
{
    (void)state;
    /* sluice's producer sets x-produced-at-us: the lag is known. */
    const char *producer[] = {
        harness_bin("sluice-producer"), "--source", "orders", "--count", "2", NULL};
    assert_int_equal(harness_run(producer, NULL, 0, TIMEOUT_MS), 0);
    harness_amqp_publish("src.orders", "[1]"); /* not an object */
    harness_drain(NULL);
    harness_amqp_publish("src.sensors", "{\"v\":1}"); /* left queued: no worker */
    harness_amqp_publish("src.sensors", "{\"v\":2}");
    dead_writer w;
    dead_open(&w);
    dead_put(&w, "src.orders", "x1", "orders", "boom", "{\"n\":1}");
    dead_put(&w, "src.orders", "x2", "orders", "boom", "{\"n\":2}");
    dead_put(&w, "src.profiles", "x3", "profiles", "worse", "{\"n\":3}");
    dead_close(&w);
    pg_exec("INSERT INTO alerts (alert_id, rule, severity, source, message, state) VALUES"
            " ('r:1', 'r', 'info', 'orders', 'm', 'sent'), ('r:2', 'r', 'info', 'orders', 'm',"
            " 'sent'), ('r:3', 'r', 'info', 'orders', 'm', 'failed')");

    static char out[65536];
    assert_int_equal(ctl("status --json", out, sizeof out), 0);
    json_object *doc = json_tokener_parse(out);
    if (!doc)
        fail_msg("status --json is not JSON: %s", out);
    json_object *orders = find_source(doc, "orders"), *sensors = find_source(doc, "sensors");
    assert_int_equal(path_int(orders, "stored_last_hour", NULL), 2);
    assert_int_equal(path_int(orders, "queue", "ready"), 0);
    assert_int_equal(path_int(sensors, "queue", "ready"), 2);
    assert_int_equal(path_int(sensors, "queue", "consumers"), 0);
    assert_int_equal(path_int(sensors, "stored_last_hour", NULL), 0);
    json_object *lag;
    assert_true(json_object_object_get_ex(orders, "end_to_end_lag_s", &lag));
    assert_non_null(lag);
    assert_true(json_object_get_double(lag) >= 0 && json_object_get_double(lag) < 120);
    assert_int_equal(path_int(doc, "dead_letters", "messages"), 3);
    const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "{\"source\":\"orders\",\"reason\":\"boom\",\"count\":2}"));
    assert_non_null(strstr(text, "{\"source\":\"profiles\",\"reason\":\"worse\",\"count\":1}"));
    assert_non_null(
        strstr(text, "{\"source\":\"orders\",\"reason\":\"not_an_object\",\"count\":1}"));
    assert_non_null(strstr(text, "{\"state\":\"sent\",\"count\":2}"));
    assert_non_null(strstr(text, "{\"state\":\"failed\",\"count\":1}"));
    json_object_put(doc);

    /* The table says the same; status changes nothing in sluice.dead. */
    assert_int_equal(ctl("status", out, sizeof out), 0);
    assert_non_null(strstr(out, "dead letters: 3 in sluice.dead: orders/boom 2, profiles/worse 1"));
    assert_non_null(strstr(out, "ingest_errors: orders/not_an_object 1"));
    assert_non_null(strstr(out, "alerts: failed 1, sent 2"));
    assert_int_equal(queue_ready("sluice.dead"), 3);
    char left[256];
    drain_bodies("sluice.dead", left, sizeof left);
    assert_string_equal(left, "{\"n\":1}|{\"n\":2}|{\"n\":3}|");

    /* A management API that does not answer: the rest is still shown, and
     * the exit code says something is missing. */
    assert_int_equal(ctl("status --mgmt-url http://127.0.0.1:1/", out, sizeof out), 1);
    assert_non_null(strstr(out, "alerts: failed 1, sent 2"));
}

/* publish_event's one event. */
static void make_event(int i, pub_message *m, void *arg)
{
    (void)i;
    *m = *(const pub_message *)arg;
}

/* Publishes one event to sluice.ingest as sluice's producer does, with
 * x-produced-at-us (and the timestamp) saying `produced_at_us`. */
static void publish_event(const char *source, const char *id, const char *body,
                          int64_t produced_at_us)
{
    char rk[80];
    snprintf(rk, sizeof rk, "src.%s", source);
    pub_message m = {.routing_key = rk,
                     .message_id = id,
                     .source = source,
                     .body = body,
                     .body_len = strlen(body),
                     .produced_at_us = produced_at_us};
    harness_publish_each("sluice.ingest", 1, make_event, &m, 60000);
}

static int drop_refusal(void **state)
{
    harness_accept_events();
    return harness_test_teardown(state);
}

/* An event a worker dead-letters, replayed with replay-dead once the cause
 * is gone, is stored with the time it was produced (x-produced-at-us
 * travels through sluice.dead), not the time it was replayed. */
static void test_replayed_event_keeps_its_produced_time(void **state)
{
    (void)state;
    harness_refuse_marked_events();
    /* An hour ago, to the microsecond: neither now nor a whole second. */
    int64_t produced = ((int64_t)time(NULL) - 3600) * 1000000 + 123457;
    publish_event("orders", "kept-time-1", "{\"refuse\":true}", produced);
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--idle-exit-ms",
                          "1500",
                          "--max-retries",
                          "1",
                          "--metrics-port",
                          "0",
                          NULL};
    char err[16384];
    if (harness_run(argv, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("worker failed: %s", err);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 0);
    assert_int_equal(queue_ready("sluice.dead"), 1);

    harness_accept_events();
    char out[1024];
    assert_int_equal(ctl("replay-dead", out, sizeof out), 0);
    assert_non_null(strstr(out, "replayed 1 dead letters"));
    harness_drain(NULL);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE msg_id = 'kept-time-1'"), 1);
    assert_int_equal(pg_scalar("SELECT (extract(epoch FROM produced_at) * 1000000)::bigint"
                               " FROM events WHERE msg_id = 'kept-time-1'"),
                     produced);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_replay_filters_and_keeps_the_rest_in_order),
        harness_unit_test(test_replay_killed_midway_loses_and_doubles_nothing),
        harness_unit_test(test_replay_stopped_by_sigint_moves_each_once),
        cmocka_unit_test_setup_teardown(test_reprocess_stores_what_was_fixed, harness_test_setup,
                                        restore_projection),
        harness_unit_test(test_status_reports_every_part),
        cmocka_unit_test_setup_teardown(test_replayed_event_keeps_its_produced_time,
                                        harness_test_setup, drop_refusal),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){NULL},
        .empties = HARNESS_EMPTY_ALERTS | HARNESS_EMPTY_DEAD,
        .needs_mgmt = 1,
        .log_name = "ctl",
    };
    return harness_run_tests(tests, &options);
}
