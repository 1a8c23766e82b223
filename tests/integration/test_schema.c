/* Integration tests of the warehouse's schema as sluice-setup builds it
 * (broker-setup/migrate.h), against the real PostgreSQL of the stack:
 * - a warehouse built by every earlier release (migrations 001..N as
 *   released, tests/fixtures/migrations-3fb2956/) keeps its rows when
 *   upgraded and ends with the schema of a fresh install, compared as
 *   pg_dump --schema-only prints them;
 * - a second run changes nothing;
 * - an applied migration edited afterwards, a folder older than the
 *   warehouse or without its function files is refused with one line
 *   (exit 2), and a failing function file leaves the warehouse as it was;
 * - an older warehouse with typed rows upgrades and goes on storing
 *   events once each.
 * Each test works in databases of its own on the stack's server. */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glob.h>

#include "event.h"
#include "harness.h"

#define TIMEOUT_MS 120000
#define RELEASED SLUICE_SOURCE_DIR "/tests/fixtures/migrations-3fb2956"
/* The highest migration number of the releases in RELEASED. */
#define RELEASED_LEVELS 9

/* The DSN of database `db` on the stack's server. */
static void dsn_of(const char *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s", harness_pg_dsn());
    char *slash = strrchr(out, '/');
    assert_non_null(slash);
    snprintf(slash, cap - (size_t)(slash - out), "/%s", db);
}

/* An empty database `db` (dropped first if an earlier run left it). */
static void fresh_database(const char *db)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pg_exec(sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    pg_exec(sql);
}

static void drop_database(const char *db)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
    pg_exec(sql);
}

static PGconn *open_db(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", dsn, PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* Runs sql on c (several statements allowed); fails the test on error. */
static void exec_on(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%.200s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* Runs one statement with text parameters on c; fails the test on error. */
static void exec_params_on(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%.200s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* The first column of the first row of a query in another database, as
 * text into out. */
static void text_in(const char *dsn, const char *sql, char *out, size_t cap)
{
    PGconn *c = open_db(dsn);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
}

static long long scalar_in(const char *dsn, const char *sql)
{
    char v[64];
    text_in(dsn, sql, v, sizeof v);
    return atoll(v);
}

/* sluice-setup on another database; returns its exit code, stderr in err. */
static int setup_on(const char *dsn, const char *sql_dir, char *err, size_t cap)
{
    const char *argv[] = {harness_bin("sluice-setup"),  "--pg-dsn", dsn,
                          sql_dir ? "--sql-dir" : NULL, sql_dir,    NULL};
    return harness_run(argv, err, cap, 60000);
}

static void setup_ok(const char *dsn, const char *sql_dir)
{
    char err[16384];
    int rc = setup_on(dsn, sql_dir, err, sizeof err);
    if (rc != 0)
        fail_msg("sluice-setup on %s: exit %d: %s", dsn, rc, err);
}

/*
 * The warehouse the release with migrations 001..level built: each
 * migration as released, in its own transaction, recorded in the
 * schema_migrations of that time (no checksum), then the partition
 * maintenance that release's setup ran.
 */
static void build_released(const char *dsn, int level)
{
    glob_t g;
    if (glob(RELEASED "/[0-9]*.sql", 0, NULL, &g) != 0 || g.gl_pathc != RELEASED_LEVELS)
        fail_msg("%s should hold migrations 001-%03d", RELEASED, RELEASED_LEVELS);
    PGconn *c = open_db(dsn);
    exec_on(c, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())");
    for (int i = 0; i < level; i++) {
        char *text = harness_slurp(g.gl_pathv[i]);
        assert_non_null(text);
        char version[16];
        snprintf(version, sizeof version, "%d", i + 1);
        const char *params[] = {version, strrchr(g.gl_pathv[i], '/') + 1}; /* the file's name */
        exec_on(c, "BEGIN");
        exec_on(c, text);
        exec_params_on(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                       params);
        exec_on(c, "COMMIT");
        free(text);
    }
    if (level >= 5)
        exec_on(c, "SELECT sluice_maintain_partitions()");
    PQfinish(c);
    globfree(&g);
}

/* Rows as that release's workers and notifier would have left them:
 * events old and new, an ingest error, alerts (one delivered). Where the
 * release has partitions, the old rows get theirs as its workers did. */
static void put_rows(const char *dsn, int level)
{
    PGconn *c = open_db(dsn);
    if (level >= 5)
        exec_on(c, "SELECT sluice_create_partition('events', 'day', now() - interval '40 days');"
                   "SELECT sluice_create_partition('ingest_errors', 'day',"
                   " now() - interval '3 days')");
    if (level >= 6)
        exec_on(c, "SELECT sluice_create_partition('alerts', 'day', now() - interval '10 days')");
    exec_on(c, "INSERT INTO events (msg_id, source, routing_key, payload, produced_at,"
               " received_at) VALUES"
               " ('e-old', 'orders', 'src.orders', '{\"total\": 7}', now() - interval '40 days',"
               " now() - interval '40 days'),"
               " ('e-new', 'orders', 'src.orders', '{\"total\": 8}', now(), now());"
               "INSERT INTO ingest_errors (msg_id, source, routing_key, reason, raw, received_at)"
               " VALUES ('bad-1', 'orders', 'src.orders', 'invalid_json', '\\x7b',"
               " now() - interval '3 days');"
               "INSERT INTO alerts (alert_id, rule, severity, source, msg_id, message, raised_at,"
               " state) VALUES"
               " ('big:e-new', 'big', 'warning', 'orders', 'e-new', 'hi', now(), 'sent'),"
               " ('big:e-old', 'big', 'warning', 'orders', 'e-old', 'hi',"
               " now() - interval '10 days', 'failed')");
    if (level >= 5)
        exec_on(c, "INSERT INTO event_ids (msg_id, received_at)"
                   " SELECT msg_id, received_at FROM events;"
                   "INSERT INTO event_ids (msg_id, received_at, is_error)"
                   " SELECT msg_id, received_at, true FROM ingest_errors");
    if (level >= 4)
        exec_on(c, "INSERT INTO alert_deliveries (alert_id, channel, state, group_key)"
                   " VALUES ('big:e-new', 'log', 'sent', 'big:e-new')");
    else if (level >= 3)
        exec_on(c, "INSERT INTO alert_deliveries (alert_id, channel, state)"
                   " VALUES ('big:e-new', 'log', 'sent')");
    PQfinish(c);
}

/* put_rows' rows, after the upgrade; the current sluice_raise_alerts
 * finds the alert recorded before (its state, not a new 'raised'). */
static void check_rows(const char *dsn, int level)
{
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM events"), 2);
    assert_int_equal(scalar_in(dsn, "SELECT sum((payload->>'total')::int) FROM events"), 15);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM ingest_errors"
                                    " WHERE msg_id = 'bad-1' AND raw = '\\x7b'"),
                     1);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM event_ids"), 3);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM event_ids WHERE is_error"), 1);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM alerts WHERE (alert_id, state) IN"
                                    " (('big:e-new', 'sent'), ('big:e-old', 'failed'))"),
                     2);
    if (level >= 3)
        assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM alert_deliveries"
                                        " WHERE alert_id = 'big:e-new' AND state = 'sent'"),
                         1);
    char state[64];
    text_in(dsn,
            "SELECT state FROM sluice_raise_alerts(ARRAY['big:e-new'], ARRAY['big'],"
            " ARRAY['warning'], ARRAY['orders'], ARRAY['e-new'], ARRAY['hi'], ARRAY[''],"
            " ARRAY[0], ARRAY['alert.warning.big'])",
            state, sizeof state);
    assert_string_equal(state, "sent");
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM alerts"), 2);
}

/* pg_dump of the server's major version: the stack's PostgreSQL is
 * Debian's, whose binaries are not on PATH. */
static void pg_dump_path(const char *dsn, char *out, size_t cap)
{
    long version = (long)scalar_in(dsn, "SELECT current_setting('server_version_num')::int");
    snprintf(out, cap, "/usr/lib/postgresql/%ld/bin/pg_dump", version / 10000);
    if (access(out, X_OK) != 0)
        snprintf(out, cap, "pg_dump");
}

/* The database's schema as pg_dump --schema-only prints it, without what
 * says nothing about the schema (comments, blank lines, psql's
 * \restrict keys) and without the partitions of events, ingest_errors and
 * alerts: which exist depends on the day and on the rows, not on how the
 * schema was built. Free with free(). */
static char *schema_of(const char *dsn)
{
    char dump[] = "/tmp/sluice-schema-XXXXXX", tool[256], err[4096];
    close(mkstemp(dump));
    pg_dump_path(dsn, tool, sizeof tool);
    const char *argv[] = {tool,
                          "--schema-only",
                          "--no-owner",
                          "--no-privileges",
                          "--exclude-table=public.*_history",
                          "--exclude-table=public.events_2*",
                          "--exclude-table=public.ingest_errors_2*",
                          "--exclude-table=public.alerts_2*",
                          "-f",
                          dump,
                          dsn,
                          NULL};
    if (harness_run(argv, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("%s: %s", tool, err);
    char *text = harness_slurp(dump);
    unlink(dump);
    assert_non_null(text);
    char *out = text, *line = text;
    while (*line) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        int keep = !(len == 1 || strncmp(line, "--", 2) == 0 ||
                     strncmp(line, "\\restrict", 9) == 0 || strncmp(line, "\\unrestrict", 11) == 0);
        if (keep) {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
    return text;
}

/* Fails, keeping both dumps for a diff, unless the schemas are the same. */
static void assert_same_schema(const char *expected, const char *actual, const char *what)
{
    if (strcmp(expected, actual) == 0)
        return;
    FILE *f = fopen("/tmp/sluice-schema-expected.sql", "w"),
         *g = fopen("/tmp/sluice-schema-actual.sql", "w");
    if (f) {
        fputs(expected, f);
        fclose(f);
    }
    if (g) {
        fputs(actual, g);
        fclose(g);
    }
    fail_msg("%s: the schema differs from a fresh install's: diff "
             "/tmp/sluice-schema-expected.sql /tmp/sluice-schema-actual.sql",
             what);
}

/* A warehouse of every earlier release, with rows, upgraded by today's
 * setup: rows kept, checksums recorded, schema as a fresh install's. */
static void test_upgrade_from_every_release_equals_fresh(void **state)
{
    (void)state;
    char fresh[512], dsn[512];
    dsn_of("sluice_schema_fresh", fresh, sizeof fresh);
    dsn_of("sluice_schema_upgraded", dsn, sizeof dsn);
    fresh_database("sluice_schema_fresh");
    setup_ok(fresh, NULL);
    char *expected = schema_of(fresh);
    assert_non_null(strstr(expected, "CREATE FUNCTION public.sluice_raise_alerts("));
    assert_null(strstr(expected, "sluice_raise_alert("));

    char *text = harness_slurp(SLUICE_SQL_DIR "/001_warehouse.sql");
    assert_non_null(text);
    id_part part = {text, strlen(text)};
    char sum[EVENT_SHA256_ID_LEN + 1], recorded[EVENT_SHA256_ID_LEN + 1];
    event_sha256_id(&part, 1, sum);
    free(text);
    long migrations = (long)scalar_in(fresh, "SELECT count(*) FROM schema_migrations");

    for (int level = 1; level <= RELEASED_LEVELS; level++) {
        fresh_database("sluice_schema_upgraded");
        build_released(dsn, level);
        put_rows(dsn, level);
        setup_ok(dsn, NULL);
        check_rows(dsn, level);
        assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM schema_migrations"), migrations);
        assert_int_equal(
            scalar_in(dsn, "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL"), 0);
        text_in(dsn, "SELECT checksum FROM schema_migrations WHERE version = 1", recorded,
                sizeof recorded);
        assert_string_equal(recorded, sum);
        /* Today's partitions are there, as on a fresh install. */
        assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM pg_inherits"
                                        " WHERE inhrelid::regclass::text IN"
                                        " (SELECT p || to_char(now() AT TIME ZONE 'UTC',"
                                        " '_YYYYMMDD') FROM unnest(ARRAY['events',"
                                        " 'ingest_errors', 'alerts']) AS p)"),
                         3);
        char *actual = schema_of(dsn);
        char what[64];
        snprintf(what, sizeof what, "upgraded from migration %03d", level);
        assert_same_schema(expected, actual, what);
        free(actual);
    }
    free(expected);
    drop_database("sluice_schema_upgraded");
    drop_database("sluice_schema_fresh");
}

/* Running setup again changes nothing: no migration, the same schema. */
static void test_second_run_changes_nothing(void **state)
{
    (void)state;
    char dsn[512], err[16384];
    dsn_of("sluice_schema_rerun", dsn, sizeof dsn);
    fresh_database("sluice_schema_rerun");
    setup_ok(dsn, NULL);
    char *first = schema_of(dsn), applied_at[4096], again[4096];
    text_in(dsn,
            "SELECT string_agg(applied_at::text || checksum, ',' ORDER BY version)"
            " FROM schema_migrations",
            applied_at, sizeof applied_at);
    assert_int_equal(setup_on(dsn, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, "applied_now=0"));
    char *second = schema_of(dsn);
    assert_same_schema(first, second, "after a second run");
    text_in(dsn,
            "SELECT string_agg(applied_at::text || checksum, ',' ORDER BY version)"
            " FROM schema_migrations",
            again, sizeof again);
    assert_string_equal(applied_at, again);
    free(first);
    free(second);
    drop_database("sluice_schema_rerun");
}

/* A copy of sql/ to change, in a new temporary folder (into dir). */
static void copy_sql_dir(char *dir)
{
    assert_non_null(mkdtemp(dir));
    char from[1024];
    snprintf(from, sizeof from, "%s/.", SLUICE_SQL_DIR);
    const char *argv[] = {"cp", "-R", from, dir, NULL};
    char err[1024];
    if (harness_run(argv, err, sizeof err, 10000) != 0)
        fail_msg("cp -R %s %s: %s", from, dir, err);
}

static void remove_dir(const char *dir)
{
    const char *argv[] = {"rm", "-rf", dir, NULL};
    assert_int_equal(harness_run(argv, NULL, 0, 10000), 0);
}

/* Appends text to dir/name (made if missing). */
static void append_to(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Exit 2 with one line saying `message`, and the warehouse untouched. */
static void assert_refused(const char *dsn, const char *dir, const char *message)
{
    char err[16384];
    int rc = setup_on(dsn, dir, err, sizeof err);
    const char *line = strstr(err, "sluice-setup: ");
    if (rc != 2 || !line || !strstr(line, message))
        fail_msg("expected exit 2 and '%s', got exit %d: %s", message, rc, err);
    const char *end = strchr(line, '\n');
    assert_true(end && end[1] == '\0'); /* one line, and the last */
}

/* An applied migration edited afterwards is refused, naming the file;
 * so is a folder that lacks an applied migration (a setup older than the
 * warehouse) or the function files. Nothing changes. */
static void test_changed_folder_refused(void **state)
{
    (void)state;
    char dsn[512], dir[] = "/tmp/sluice-sql-XXXXXX", older[] = "/tmp/sluice-sql-XXXXXX";
    char path[1100], message[1200];
    dsn_of("sluice_schema_edited", dsn, sizeof dsn);
    fresh_database("sluice_schema_edited");
    setup_ok(dsn, NULL);
    copy_sql_dir(dir);
    char before[2048], after[2048];
    text_in(dsn, "SELECT string_agg(checksum, ',' ORDER BY version) FROM schema_migrations", before,
            sizeof before);

    append_to(dir, "005_partitions_and_projections.sql", "CREATE TABLE edited (x integer);\n");
    snprintf(message, sizeof message,
             "migration %s/005_partitions_and_projections.sql changed after it was applied", dir);
    assert_refused(dsn, dir, message);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM pg_class WHERE relname = 'edited'"), 0);
    text_in(dsn, "SELECT string_agg(checksum, ',' ORDER BY version) FROM schema_migrations", after,
            sizeof after);
    assert_string_equal(before, after);
    remove_dir(dir);

    copy_sql_dir(older);
    snprintf(path, sizeof path, "%s/010_unused_functions.sql", older);
    assert_int_equal(unlink(path), 0);
    assert_refused(dsn, older, "the warehouse has migration 10 applied, which");

    snprintf(path, sizeof path, "%s/functions", older);
    remove_dir(path);
    snprintf(message, sizeof message, "sql folder %s/functions:", older);
    assert_refused(dsn, older, message);
    remove_dir(older);
    drop_database("sluice_schema_edited");
}

/* One transaction: a function file that fails takes the pending
 * migration applied before it back with it. */
static void test_failed_function_file_changes_nothing(void **state)
{
    (void)state;
    char dsn[512], dir[] = "/tmp/sluice-sql-XXXXXX", err[16384];
    dsn_of("sluice_schema_failed", dsn, sizeof dsn);
    fresh_database("sluice_schema_failed");
    setup_ok(dsn, NULL);
    long migrations = (long)scalar_in(dsn, "SELECT count(*) FROM schema_migrations");
    copy_sql_dir(dir);
    append_to(dir, "999_probe.sql", "CREATE TABLE schema_probe (x integer);\n");
    append_to(dir, "functions/zz_broken.sql",
              "CREATE OR REPLACE FUNCTION broken() RETURNS integer LANGUAGE sql AS"
              " $$ SELECT x FROM no_such_table $$;\n");
    int rc = setup_on(dsn, dir, err, sizeof err);
    if (rc != 1 || !strstr(err, "zz_broken.sql") || !strstr(err, "no_such_table"))
        fail_msg("expected exit 1 naming zz_broken.sql and no_such_table, got exit %d: %s", rc,
                 err);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM pg_class WHERE relname = 'schema_probe'"),
                     0);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM schema_migrations"), migrations);
    remove_dir(dir);
    drop_database("sluice_schema_failed");
}

/* A warehouse of the release with migrations 001-003, with typed rows of
 * migration 002's demo tables, upgrades in place: its events (old and
 * recent), ingest errors, alerts and typed rows are kept, the declaration
 * of the demo's projections adopts the old table, and an event it holds
 * is still a duplicate afterwards. */
static void test_upgrade_keeps_typed_rows(void **state)
{
    (void)state;
    char dsn[512], err[16384];
    dsn_of("sluice_upgrade_test", dsn, sizeof dsn);
    fresh_database("sluice_upgrade_test");
    build_released(dsn, 3);
    /* Two events as a foreign client's would be stored: derived ids. */
    const char old_body[] = "{\"order_id\":\"u1\",\"total\":7}";
    const char new_body[] = "{\"order_id\":\"u2\",\"total\":8}";
    char old_id[EVENT_DERIVED_ID_LEN + 1], new_id[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id("orders", old_body, strlen(old_body), old_id);
    event_derive_id("orders", new_body, strlen(new_body), new_id);
    PGconn *c = open_db(dsn);
    const char *rows[] = {old_id, old_body, new_id, new_body};
    exec_params_on(c,
                   "INSERT INTO events (msg_id, source, routing_key, payload, produced_at,"
                   " received_at) VALUES ($1, 'orders', 'src.orders', $2,"
                   " now() - interval '40 days', now() - interval '40 days'),"
                   " ($3, 'orders', 'src.orders', $4, now(), now())",
                   4, rows);
    const char *ids[] = {old_id, new_id};
    exec_params_on(c,
                   "INSERT INTO orders (msg_id, order_id, total)"
                   " VALUES ($1, 'u1', 7), ($2, 'u2', 8)",
                   2, ids);
    /* The alert functions of that release. */
    exec_on(c, "SELECT sluice_raise_alert('big:o1', 'big', 'warning', 'orders', 'o1', 'hi',"
               " '', 0, 'alert.warning.big')");
    exec_on(c, "SELECT sluice_plan_deliveries('big:o1', 'big', 'warning', 'orders', 'hi', 'log')");
    exec_on(c, "INSERT INTO ingest_errors (msg_id, source, routing_key, reason, raw,"
               " received_at) VALUES ('bad-1', 'orders', 'src.orders', 'invalid_json',"
               " '\\x7b', now() - interval '3 days')");
    PQfinish(c);

    /* Today's setup, with the demo's declarations, on that warehouse. */
    const char *upgrade[] = {harness_bin("sluice-setup"),
                             "--pg-dsn",
                             dsn,
                             "--projections",
                             SLUICE_SOURCE_DIR "/config/projections.conf",
                             NULL};
    int rc = harness_run(upgrade, err, sizeof err, 60000);
    if (rc != 0)
        fail_msg("upgrade: exit %d: %s", rc, err);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM pg_partitioned_table"
                                    " WHERE partrelid IN ('events'::regclass, 'alerts'::regclass)"),
                     2);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM events"), 2);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM events_history"), 1);
    assert_int_equal(scalar_in(dsn, "SELECT sum((payload->>'total')::int) FROM events"), 15);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM ingest_errors WHERE msg_id = 'bad-1'"),
                     1);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM orders"), 2);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM event_ids"), 3);
    /* The alert kept its row and delivery, and is still raised once. */
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM alerts a JOIN alert_deliveries d"
                                    " USING (alert_id) WHERE a.alert_id = 'big:o1'"),
                     1);
    char raised[64];
    text_in(dsn,
            "SELECT state FROM sluice_raise_alerts(ARRAY['big:o1'], ARRAY['big'],"
            " ARRAY['warning'], ARRAY['orders'], ARRAY['o1'], ARRAY['hi'], ARRAY[''], ARRAY[0],"
            " ARRAY['alert.warning.big'])",
            raised, sizeof raised);
    assert_string_equal(raised, "raised");
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM alerts"), 1);
    /* Both old events delivered again are duplicates, whichever partition
     * holds them; a new one is stored and projected by the declaration
     * that adopted the old table. */
    harness_amqp_publish("src.orders", old_body);
    harness_amqp_publish("src.orders", new_body);
    harness_amqp_publish("src.orders", "{\"order_id\":\"u3\",\"total\":9}");
    const char *worker[] = {harness_bin("sluice-worker"),
                            "--pg-dsn",
                            dsn,
                            "--idle-exit-ms",
                            "1500",
                            "--metrics-port",
                            "0",
                            NULL};
    char werr[16384];
    if (harness_run(worker, werr, sizeof werr, TIMEOUT_MS) != 0)
        fail_msg("worker on the upgraded warehouse failed: %s", werr);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM events"), 3);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM orders"), 3);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM orders WHERE order_id = 'u3'"), 1);
    /* Running it again changes nothing. */
    rc = harness_run(upgrade, err, sizeof err, 60000);
    assert_int_equal(rc, 0);
    assert_int_equal(scalar_in(dsn, "SELECT count(*) FROM events"), 3);
    drop_database("sluice_upgrade_test");
}

static int reset(void **state)
{
    (void)state;
    harness_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_from_every_release_equals_fresh),
        cmocka_unit_test(test_second_run_changes_nothing),
        cmocka_unit_test(test_changed_folder_refused),
        cmocka_unit_test(test_failed_function_file_changes_nothing),
        cmocka_unit_test_setup(test_upgrade_keeps_typed_rows, reset),
    };
    return cmocka_run_group_tests(tests, harness_group_setup, NULL);
}
