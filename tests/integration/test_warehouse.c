/* Integration tests of the warehouse at volume, against the real servers:
 * time partitions (created ahead, pruned by a time range, dropped after
 * the retention), idempotency across a partition boundary, and projections
 * a deployment declares (created, filled, extended, refused when wrong).
 * Upgrades of older warehouses: test_schema.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define TIMEOUT_MS 120000

/* Puts the demo's declarations back, whatever a test declared. */
static int restore_projections(void **state)
{
    harness_kill_spawned();
    return harness_group_setup(state);
}

static void drain_with_worker(void)
{
    harness_drain(NULL);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
}

/* sluice-setup with extra arguments; returns its exit code, stderr in err. */
static int setup(const char *a1, const char *a2, const char *a3, const char *a4, char *err,
                 size_t cap)
{
    const char *argv[] = {harness_bin("sluice-setup"), a1, a2, a3, a4, NULL};
    return harness_run(argv, err, cap, 60000);
}

/* The partitions exist ahead of time, and a query over a time range reads
 * only the partitions of that range. */
static void test_partitions_ahead_and_pruned(void **state)
{
    (void)state;
    for (int day = 0; day <= 7; day++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
                 " AND inhrelid::regclass::text = 'events_' ||"
                 " to_char((now() + interval '%d days') AT TIME ZONE 'UTC', 'YYYYMMDD')",
                 day);
        assert_int_equal(pg_scalar(sql), 1);
    }
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM pg_partitioned_table WHERE partrelid IN"
                  " ('events'::regclass, 'ingest_errors'::regclass, 'alerts'::regclass)"),
        3);
    char plan[8192];
    /* EXPLAIN through a function, as pg_text runs a query. */
    pg_exec("CREATE OR REPLACE FUNCTION test_plan(q text) RETURNS text LANGUAGE plpgsql AS $$"
            " DECLARE r text; out text := ''; BEGIN"
            " FOR r IN EXECUTE 'EXPLAIN ' || q LOOP out := out || r || E'\\n'; END LOOP;"
            " RETURN out; END $$");
    pg_text("SELECT test_plan(format('SELECT count(*) FROM events WHERE received_at >= %L"
            " AND received_at < %L', date_trunc('day', now(), 'UTC') + interval '1 day',"
            " date_trunc('day', now(), 'UTC') + interval '2 days'))",
            plan, sizeof plan);
    char tomorrow[64];
    pg_text(
        "SELECT 'events_' || to_char((now() + interval '1 day') AT TIME ZONE 'UTC', 'YYYYMMDD')",
        tomorrow, sizeof tomorrow);
    if (!strstr(plan, tomorrow) || strstr(plan, "events_2") != strstr(plan, tomorrow) ||
        strstr(strstr(plan, tomorrow) + 1, "events_2"))
        fail_msg("a query over one day should read one partition (%s):\n%s", tomorrow, plan);
    pg_exec("DROP FUNCTION test_plan(text)");
}

/* An event stored in one partition and received again the next day (a
 * redelivery or a republished copy) is not stored again in the other. */
static void test_copy_across_partition_boundary_stored_once(void **state)
{
    (void)state;
    const char body[] = "{\"order_id\":\"pb-1\",\"total\":3}";
    harness_amqp_publish("src.orders", body);
    drain_with_worker();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 1);
    /* Make it yesterday's: the row moves to yesterday's partition. */
    pg_exec("SELECT sluice_create_partition('events', 'day', now() - interval '1 day')");
    pg_exec("UPDATE events SET received_at = received_at - interval '1 day'");
    pg_exec("UPDATE event_ids SET received_at = received_at - interval '1 day'");
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE tableoid::regclass::text ="
                               " 'events_' || to_char((now() - interval '1 day') AT TIME ZONE"
                               " 'UTC', 'YYYYMMDD')"),
                     1);

    harness_amqp_publish("src.orders", body); /* same content: same derived msg_id */
    harness_amqp_publish("src.orders", "{\"order_id\":\"pb-2\",\"total\":4}");
    drain_with_worker();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 2);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'order_id' = 'pb-1'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM orders WHERE order_id = 'pb-1'"), 1);
}

/* A source with a projection is COPYed in a statement of its own (the
 * trigger then runs only its projection); the events of sources without
 * one share a statement: a batch spread over many sources costs one
 * statement, not one per source. A trigger records the sources of every
 * statement that adds events. */
static void test_unprojected_sources_share_a_copy(void **state)
{
    (void)state;
    char err[4096];
    static const char *const sources = "orders,gx_a,gx_b";
    const char *setup_argv[] = {harness_bin("sluice-setup"), "--sources", sources, NULL};
    assert_int_equal(harness_run(setup_argv, err, sizeof err, 60000), 0);
    pg_exec("CREATE TABLE test_statements (sources text)");
    pg_exec("CREATE FUNCTION test_statements() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO test_statements SELECT string_agg(DISTINCT source, ',' ORDER BY source)"
            " FROM new_rows; RETURN NULL; END $$");
    pg_exec("CREATE TRIGGER test_statements AFTER INSERT ON events REFERENCING NEW TABLE AS"
            " new_rows FOR EACH STATEMENT EXECUTE FUNCTION test_statements()");
    for (int i = 0; i < 10; i++) {
        char body[128];
        static const char *const keys[] = {"src.gx_a", "src.gx_b", "src.orders"};
        for (int k = 0; k < 3; k++) {
            snprintf(body, sizeof body, "{\"order_id\":\"sh-%d-%d\",\"total\":%d}", k, i, i);
            harness_amqp_publish(keys[k], body);
        }
    }
    const char *const extra[] = {"--sources", sources, NULL};
    harness_drain(extra);
    long long mixed = pg_scalar("SELECT count(*) FROM test_statements"
                                " WHERE sources LIKE '%orders%' AND sources <> 'orders'");
    long long shared =
        pg_scalar("SELECT count(*) FROM test_statements WHERE sources = 'gx_a,gx_b'");
    long long rows = pg_scalar("SELECT count(*) FROM events");
    long long projected = pg_scalar("SELECT count(*) FROM orders WHERE order_id LIKE 'sh-2-%'");
    pg_exec("DROP TRIGGER test_statements ON events; DROP FUNCTION test_statements();"
            " DROP TABLE test_statements");
    queue_delete("sluice.q.gx_a");
    queue_delete("sluice.q.gx_b");
    assert_int_equal(rows, 30);
    assert_int_equal(projected, 10);
    assert_int_equal(mixed, 0);
    assert_true(shared >= 1);
}

/* Partitions entirely older than retention_days go, with their ids; the
 * current ones stay. */
static void test_retention_drops_old_partitions(void **state)
{
    (void)state;
    harness_amqp_publish("src.orders", "{\"order_id\":\"old-1\"}");
    harness_amqp_publish("src.orders", "{\"order_id\":\"new-1\"}");
    drain_with_worker();
    pg_exec("SELECT sluice_create_partition('events', 'day', now() - interval '5 days')");
    pg_exec("UPDATE events SET received_at = received_at - interval '5 days'"
            " WHERE payload->>'order_id' = 'old-1'");
    pg_exec("UPDATE event_ids SET received_at = e.received_at FROM events e"
            " WHERE e.msg_id = event_ids.msg_id");
    char err[4096];
    int rc = setup("--retention-days", "3", "--projections",
                   SLUICE_SOURCE_DIR "/config/projections.conf", err, sizeof err);
    if (rc != 0)
        fail_msg("sluice-setup --retention-days 3 exit %d: %s", rc, err);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'order_id' = 'new-1'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM event_ids"), 1);
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
                  " AND sluice_partition_upper(inhrelid) <= now() - interval '3 days'"),
        0);
    assert_true(pg_scalar("SELECT count(*) FROM pg_inherits"
                          " WHERE inhparent = 'events'::regclass") >= 8);
    /* Back to keeping everything, as the other tests expect. */
    rc = setup("--retention-days", "0", NULL, NULL, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM sluice_partitioning WHERE retention IS NOT NULL"), 0);
}

static const char customers_v1[] = "[projection test_customers]\n"
                                   "source = orders\n"
                                   "upsert_key = customer_id\n"
                                   "column customer_id = text /customer_id\n"
                                   "column last_total = numeric /total\n";

/* A declared projection: created by setup, filled by the worker (latest
 * state per key), a wrong-typed value NULL without failing its batch; a
 * column added to the declaration is added to the table. */
static void test_declared_projection(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-projections-XXXXXX";
    close(mkstemp(path));
    harness_write_file(path, customers_v1);
    char err[4096];
    int rc = setup("--projections", path, NULL, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("setup: exit %d: %s", rc, err);
    rc = setup("--projections", path, NULL, NULL, err, sizeof err); /* idempotent */
    assert_int_equal(rc, 0);
    pg_exec("TRUNCATE test_customers");

    harness_amqp_publish("src.orders", "{\"customer_id\":\"c1\",\"total\":10}");
    harness_amqp_publish("src.orders", "{\"customer_id\":\"c2\",\"total\":\"lots\"}");
    harness_amqp_publish("src.orders", "{\"customer_id\":\"c1\",\"total\":12}");
    drain_with_worker();
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM test_customers"), 2);
    assert_int_equal(pg_scalar("SELECT count(*) FROM test_customers"
                               " WHERE customer_id = 'c2' AND last_total IS NULL"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);

    /* A column added to the declaration: the table gains it. */
    char v2[1024];
    snprintf(v2, sizeof v2, "%scolumn country = text /shipping/country\n", customers_v1);
    harness_write_file(path, v2);
    rc = setup("--projections", path, NULL, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("setup with a new column: exit %d: %s", rc, err);
    harness_amqp_publish("src.orders",
                         "{\"customer_id\":\"c2\",\"total\":5,\"shipping\":{\"country\":\"PT\"}}");
    drain_with_worker();
    assert_int_equal(pg_scalar("SELECT count(*) FROM test_customers"), 2);
    assert_int_equal(pg_scalar("SELECT last_total FROM test_customers WHERE customer_id = 'c2'"
                               " AND country = 'PT'"),
                     5);

    /* Declared with another type than the table has: exit 2, one line. */
    snprintf(v2, sizeof v2, "%scolumn country = numeric /shipping/country\n", customers_v1);
    harness_write_file(path, v2);
    rc = setup("--projections", path, NULL, NULL, err, sizeof err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "column country is text in the table but declared numeric"));
    unlink(path);
    pg_exec("DROP TABLE test_customers");
}

/* Bad declarations exit 2 with one line naming file, line and problem. */
static void test_bad_declarations(void **state)
{
    (void)state;
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"[projection t1]\nsource = orders\ncolumn a = float /a\n",
         ":3: projection 't1': column a: unknown type 'float'"},
        {"[projection t1]\nsource = orders\ncolumn a = text a\n", "'a' is not a JSON pointer"},
        {"[projection t1]\ncolumn a = text /a\n", ":1: projection 't1' needs a source"},
        {"[projection T1]\nsource = orders\ncolumn a = text /a\n", "a table name is"},
        {"[projection t1]\nsource = orders\nupsert_key = b\ncolumn a = text /a\n",
         "upsert_key names 'b', not a declared column"},
        {"[projection t1]\nsource = orders\ncolour a = text /a\n", "unknown setting 'colour a'"},
    };
    char path[] = "/tmp/sluice-projections-XXXXXX";
    close(mkstemp(path));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        harness_write_file(path, cases[i].text);
        char err[4096];
        int rc = setup("--projections", path, NULL, NULL, err, sizeof err);
        if (rc != 2 || !strstr(err, cases[i].message))
            fail_msg("case %zu: exit %d, expected 2 and '%s' in: %s", i, rc, cases[i].message, err);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_partitions_ahead_and_pruned, harness_test_setup),
        cmocka_unit_test_setup(test_copy_across_partition_boundary_stored_once, harness_test_setup),
        cmocka_unit_test_setup(test_retention_drops_old_partitions, harness_test_setup),
        cmocka_unit_test_setup(test_unprojected_sources_share_a_copy, harness_test_setup),
        cmocka_unit_test_setup_teardown(test_declared_projection, harness_test_setup,
                                        restore_projections),
        cmocka_unit_test_setup(test_bad_declarations, harness_test_setup),
    };
    return harness_run_tests(tests, NULL);
}
