/*
 * Integration test of least privilege (users.h; roles in PostgreSQL): the
 * accounts sluice-setup creates for each component can do what that
 * component does and are refused the rest, by the real RabbitMQ and
 * PostgreSQL of the stack. Setup reads every password from a file, as
 * compose's Docker secrets give them.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "amqp_api.h"
#include "event.h"
#include "harness.h"
#include "mq.h"

/* The passwords setup gives, and the files it reads them from. */
#define PRODUCER_PASSWORD "producer-secret-1"
#define WORKER_PASSWORD "worker-secret-1"
#define NOTIFIER_PASSWORD "notifier-secret-1"
#define PG_PASSWORD "pg-secret-1" /* of each PostgreSQL role */

#define TIMEOUT_MS 300000
#define EVENTS_PER_SOURCE 5000

static char secret_dir[] = "/tmp/sluice-privilege-XXXXXX";

/* Writes `text` and a newline (as `echo` would) to <secret_dir>/<name> and
 * points the variable `var` at it. */
static void secret_file(const char *var, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", secret_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
    setenv(var, path, 1);
}

static int group_setup(void **state)
{
    if (!mkdtemp(secret_dir))
        return -1;
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", PRODUCER_PASSWORD);
    secret_file("SLUICE_AMQP_WORKER_PASSWORD_FILE", "worker", WORKER_PASSWORD);
    secret_file("SLUICE_AMQP_NOTIFIER_PASSWORD_FILE", "notifier", NOTIFIER_PASSWORD);
    static const char *const words[] = {"OWNER", "WRITER", "NOTIFIER", "READER"};
    for (size_t i = 0; i < 4; i++) {
        char var[64];
        snprintf(var, sizeof var, "SLUICE_PG_%s_PASSWORD_FILE", words[i]);
        secret_file(var, words[i], PG_PASSWORD);
    }
    return harness_group_setup(state);
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", secret_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void secret_path(const char *name, const char *text, char *out, size_t cap);

/* The stack's AMQP URL with another login. Statically allocated. */
static const char *url_as(const char *user, const char *password)
{
    static char url[512];
    char *copy = strdup(harness_amqp_url());
    struct amqp_connection_info info;
    assert_int_equal(amqp_parse_url(copy, &info), AMQP_STATUS_OK);
    snprintf(url, sizeof url, "amqp://%s:%s@%s:%d/%s", user, password, info.host, info.port,
             strcmp(info.vhost, "/") == 0 ? "" : info.vhost);
    free(copy);
    return url;
}

static mq_conn *connect_as(const char *user, const char *password)
{
    char err[512];
    mq_conn *c = mq_connect(url_as(user, password), 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("login as %s: %s", user, err);
    return c;
}

/* 0 if the last RPC succeeded; its reply code if the broker closed the
 * channel (answering the close, so the connection stays usable);
 * fails the test on anything else. */
static int rpc_outcome(mq_conn *c, amqp_channel_t ch)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(mq_amqp(c));
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(mq_amqp(c), ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        return ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
    }
    fail_msg("unexpected reply type %d", r.reply_type);
    return -1;
}

typedef enum { OP_CONSUME, OP_DECLARE, OP_DELETE, OP_PASSIVE, OP_PUBLISH } op_kind;

/*
 * Runs one AMQP operation on a channel of its own: consume `name` (a
 * queue), declare it, delete it, declare it passively, or publish one
 * message with confirms to `name` (an exchange) with routing key `key`.
 * Returns 0 if the broker allowed it, else the reply code it closed the
 * channel with (403 ACCESS_REFUSED).
 */
static int try_op(mq_conn *c, op_kind op, const char *name, const char *key)
{
    static amqp_channel_t next = 10;
    amqp_connection_state_t st = mq_amqp(c);
    amqp_channel_t ch = next++;
    amqp_channel_open(st, ch);
    assert_int_equal(rpc_outcome(c, ch), 0);
    amqp_bytes_t n = amqp_cstring_bytes(name);
    int rc = 0;
    switch (op) {
    case OP_CONSUME:
        amqp_basic_consume(st, ch, n, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_DECLARE:
        amqp_queue_declare(st, ch, n, 0, 1, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_DELETE:
        amqp_queue_delete(st, ch, n, 0, 0);
        rc = rpc_outcome(c, ch);
        break;
    case OP_PASSIVE:
        amqp_queue_declare(st, ch, n, 1, 0, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_PUBLISH: {
        amqp_confirm_select(st, ch);
        assert_int_equal(rpc_outcome(c, ch), 0);
        amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                         .delivery_mode = 2};
        assert_int_equal(amqp_basic_publish(st, ch, n, amqp_cstring_bytes(key), 0, 0, &props,
                                            amqp_cstring_bytes("{\"privilege\":1}")),
                         AMQP_STATUS_OK);
        /* Refused: the broker closes the channel; allowed: it confirms. */
        amqp_frame_t f;
        struct timeval tv = {10, 0};
        assert_int_equal(amqp_simple_wait_frame_noblock(st, &f, &tv), AMQP_STATUS_OK);
        assert_int_equal(f.frame_type, AMQP_FRAME_METHOD);
        if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            rc = ((amqp_channel_close_t *)f.payload.method.decoded)->reply_code;
            amqp_channel_close_ok_t ok = {0};
            amqp_send_method(st, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
            return rc;
        }
        assert_int_equal(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
        break;
    }
    }
    if (rc == 0) {
        amqp_channel_close(st, ch, AMQP_REPLY_SUCCESS);
        assert_int_equal(rpc_outcome(c, ch), 0);
    }
    return rc;
}

#define REFUSED 403 /* AMQP ACCESS_REFUSED */

/* The producer publishes to sluice.ingest and checks which sources have a
 * queue; it cannot consume, declare or delete a queue, nor publish to
 * another exchange. */
static void test_producer_user(void **state)
{
    (void)state;
    harness_reset();
    mq_conn *c = connect_as("sluice-producer", PRODUCER_PASSWORD);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), 0);
    assert_int_equal(try_op(c, OP_PASSIVE, "sluice.q.orders", NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_DEAD, NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DECLARE, "sluice.q.intruder", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.high.x"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_DLX, "x"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, "", "sluice.q.orders"), REFUSED);
    mq_close(c);
    assert_int_equal(queue_ready("sluice.q.orders"), 1); /* the one allowed publish */
    assert_int_equal(queue_ready("sluice.q.intruder"), -1);
}

/* A worker consumes its source queues, dead-letters and raises alerts; it
 * cannot publish to sluice.ingest, consume the notifier's queue, nor
 * declare or delete a queue. */
static void test_worker_user(void **state)
{
    (void)state;
    harness_reset();
    mq_conn *c = connect_as("sluice-worker", WORKER_PASSWORD);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_UNROUTED, NULL), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_DLX, "orders"), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.info.privilege"), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), REFUSED);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_NOTIFIER, NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DECLARE, "sluice.q.intruder", NULL), REFUSED);
    mq_close(c);
    assert_int_equal(queue_ready("sluice.q.orders"), 0); /* nothing got through */
    /* sluice-ctl replay-dead needs an administrator: as the producer, it
     * is refused, and says so. */
    char url_file[300], err[8192];
    secret_path("producer_url", url_as("sluice-producer", PRODUCER_PASSWORD), url_file,
                sizeof url_file);
    const char *replay[] = {harness_bin("sluice-ctl"), "replay-dead", "--amqp-url-file", url_file,
                            NULL};
    assert_int_equal(harness_run(replay, err, sizeof err, TIMEOUT_MS), 1);
    if (!strstr(err, "403 ACCESS_REFUSED") || !strstr(err, "RabbitMQ user lacks the permission"))
        fail_msg("replay-dead as the producer: %s", err);
    assert_int_equal(queue_ready(SLUICE_QUEUE_DEAD), 1); /* left where it was */
    /* What the allowed publishes left behind. */
    queue_purge(SLUICE_QUEUE_DEAD);
    queue_purge(SLUICE_QUEUE_NOTIFIER);
}

/* The notifier consumes sluice.q.notifier and dead-letters, nothing else. */
static void test_notifier_user(void **state)
{
    (void)state;
    mq_conn *c = connect_as("sluice-notifier", NOTIFIER_PASSWORD);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_NOTIFIER, NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.info.x"), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, SLUICE_QUEUE_NOTIFIER, NULL), REFUSED);
    mq_close(c);
}

/* A password changed in its file takes effect when setup runs again: the
 * old one no longer logs in. */
static void test_password_rotation(void **state)
{
    (void)state;
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", "producer-secret-2");
    const char *argv[] = {harness_bin("sluice-setup"), NULL};
    char err[8192];
    assert_int_equal(harness_run(argv, err, sizeof err, 60000), 0);
    assert_null(strstr(err, "producer-secret")); /* never logged */
    char why[512];
    mq_conn *old =
        mq_connect(url_as("sluice-producer", PRODUCER_PASSWORD), 0, 5000, why, sizeof why);
    assert_null(old);
    mq_close(connect_as("sluice-producer", "producer-secret-2"));
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", PRODUCER_PASSWORD);
    assert_int_equal(harness_run(argv, err, sizeof err, 60000), 0);
}

/* The stack's PostgreSQL as `role`, keyword=value form; statically
 * allocated. */
static const char *dsn_as(const char *role)
{
    static char dsn[512];
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(harness_pg_dsn(), &why);
    assert_non_null(opts);
    const char *host = "", *port = "", *dbname = "";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (o->val && strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (o->val && strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=%s password=%s", host, port, dbname,
             role, PG_PASSWORD);
    PQconninfoFree(opts);
    return dsn;
}

static PGconn *pg_as(const char *role)
{
    PGconn *db = PQconnectdb(dsn_as(role));
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("connecting as %s: %s", role, PQerrorMessage(db));
    return db;
}

/* "" if `sql` succeeded, else its SQLSTATE; statically allocated. */
static const char *sqlstate(PGconn *db, const char *sql)
{
    static char state[6];
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s",
             st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? ""
             : s                                             ? s
                                                             : "?????");
    PQclear(r);
    return state;
}

#define DENIED "42501" /* insufficient_privilege */

static void assert_denied(PGconn *db, const char *role, const char *sql)
{
    const char *state = sqlstate(db, sql);
    if (strcmp(state, DENIED) != 0)
        fail_msg("as %s, '%s' gave SQLSTATE '%s', not " DENIED, role, sql, state);
}

static void assert_allowed(PGconn *db, const char *role, const char *sql)
{
    const char *state = sqlstate(db, sql);
    if (*state)
        fail_msg("as %s, '%s' was refused: SQLSTATE %s", role, sql, state);
}

#define INSERT_EVENT                                                                               \
    "INSERT INTO events (msg_id, source, routing_key, payload, received_at)"                       \
    " VALUES ('privilege-1', 'orders', 'src.orders', '{}', now())"

/* Setup gave each role the password of its file (as a SCRAM verifier),
 * and the schema to the owner. */
static void test_roles_exist(void **state)
{
    (void)state;
    assert_int_equal(pg_scalar("SELECT count(*) FROM pg_authid WHERE rolname IN ('sluice_owner',"
                               " 'sluice_writer', 'sluice_notifier', 'sluice_reader')"
                               " AND rolcanlogin AND NOT rolsuper AND NOT rolcreaterole"
                               " AND rolpassword LIKE 'SCRAM-SHA-256$%'"),
                     4);
    assert_int_equal(pg_scalar("SELECT count(*) FROM pg_class WHERE relnamespace ="
                               " 'public'::regnamespace AND relkind IN ('r', 'p')"
                               " AND pg_get_userbyid(relowner) <> 'sluice_owner'"),
                     0);
}

/* Connects as `role` and runs each statement of `allowed` (NULL-ended),
 * which must succeed, and of `denied`, which must be refused for lack of
 * rights. */
static void check_role(const char *role, const char *const *allowed, const char *const *denied)
{
    PGconn *db = pg_as(role);
    for (; *allowed; allowed++)
        assert_allowed(db, role, *allowed);
    for (; *denied; denied++)
        assert_denied(db, role, *denied);
    PQfinish(db);
}

/* The writer stores and maintains partitions, and can do nothing else to
 * the warehouse: no DDL, no change to a stored event, no reading of
 * events or of the notifier's tables. */
static void test_writer_role(void **state)
{
    (void)state;
    static const char *const allowed[] = {"SELECT sluice_maintain_partitions()",
                                          "BEGIN; " INSERT_EVENT "; ROLLBACK", NULL};
    static const char *const denied[] = {
        "DROP TABLE events",
        "TRUNCATE events",
        "ALTER TABLE events ADD COLUMN intruder integer",
        "CREATE TABLE intruder (x integer)",
        "UPDATE events SET source = 'intruder'",
        "DELETE FROM events",
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM alert_deliveries",
        "DELETE FROM alerts",
        "DROP TABLE ingest_errors",
        "SELECT sluice_create_partition('events', 'day', now() + interval '100 days')",
        "SELECT sluice_build_projections()",
        NULL,
    };
    check_role("sluice_writer", allowed, denied);
}

/* The reader reads every table, partitions included, and writes none. */
static void test_reader_role(void **state)
{
    (void)state;
    char part[128], sql[256];
    pg_text("SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')", part, sizeof part);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", part);
    const char *const allowed[] = {"SELECT count(*) FROM events", "SELECT count(*) FROM alerts",
                                   "SELECT count(*) FROM orders", /* a typed table */
                                   sql, NULL};
    static const char *const denied[] = {
        INSERT_EVENT,
        "DELETE FROM ingest_errors",
        "UPDATE alerts SET state = 'sent'",
        "CREATE TABLE intruder (x integer)",
        "SELECT sluice_maintain_partitions()",
        NULL,
    };
    check_role("sluice_reader", allowed, denied);
}

/* The notifier reaches the alert and delivery tables only. */
static void test_notifier_role(void **state)
{
    (void)state;
    static const char *const allowed[] = {"SELECT count(*) FROM alert_deliveries", NULL};
    static const char *const denied[] = {"SELECT count(*) FROM events", INSERT_EVENT,
                                         "DROP TABLE alert_messages", NULL};
    check_role("sluice_notifier", allowed, denied);
}

static char rules_path[300], notifier_log[300];

/* A secret file under secret_dir holding `text`; its path in out. */
static void secret_path(const char *name, const char *text, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", secret_dir, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
}

static void run_or_fail(const char *what, const char *const argv[])
{
    char err[16384];
    if (harness_run(argv, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("%s failed: %s", what, err);
}

static int alerts_all_sent(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM alerts WHERE state <> 'sent'") == 0;
}

/* The notifier has taken every message of its queue: each alert sent, and
 * each copy (an alert published again for a redelivered event while it
 * was still unsent) logged as not sent again. */
typedef struct notifier_took {
    const char *log;
    long copies;
} notifier_took;

static int notifier_took_every_message(void *arg)
{
    const notifier_took *t = arg;
    return alerts_all_sent(NULL) &&
           harness_log_count(t->log, "not sent again alert_id=") >= t->copies;
}

/*
 * The whole pipeline with the least rights: the producer, the workers and
 * the notifier each log in with their own RabbitMQ user and PostgreSQL
 * role, read from files. 4 x 5,000 events are stored exactly once, twice
 * published; the worker's maintenance on connecting creates tomorrow's
 * partition (dropped before) and drops one past the retention; the alerts
 * its rule raises are delivered and recorded by the notifier.
 */
static void test_pipeline_with_roles(void **state)
{
    (void)state;
    harness_reset();
    pg_exec("TRUNCATE alerts, alert_deliveries, alert_windows, alert_messages, alert_groups");
    queue_purge(SLUICE_QUEUE_NOTIFIER);
    char tomorrow[128], old[128];
    pg_text(
        "SELECT 'events_' || to_char((now() + interval '1 day') AT TIME ZONE 'UTC', 'YYYYMMDD')",
        tomorrow, sizeof tomorrow);
    pg_text("SELECT 'events_' || to_char((now() - interval '400 days') AT TIME ZONE 'UTC',"
            " 'YYYYMMDD')",
            old, sizeof old);
    char sql[512];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", tomorrow);
    pg_exec(sql);
    pg_exec("SET ROLE sluice_owner;"
            " SELECT sluice_create_partition('events', 'day', now() - interval '400 days');"
            " RESET ROLE");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_class WHERE relname IN ('%s', '%s')",
             tomorrow, old);
    assert_int_equal(pg_scalar(sql), 1); /* the old one only */
    pg_exec(
        "UPDATE sluice_partitioning SET retention = interval '300 days' WHERE parent = 'events'");

    char producer_url[300], worker_url[300], notifier_url[300], writer_dsn[300], notifier_dsn[300];
    secret_path("producer_url", url_as("sluice-producer", PRODUCER_PASSWORD), producer_url,
                sizeof producer_url);
    secret_path("worker_url", url_as("sluice-worker", WORKER_PASSWORD), worker_url,
                sizeof worker_url);
    secret_path("notifier_url", url_as("sluice-notifier", NOTIFIER_PASSWORD), notifier_url,
                sizeof notifier_url);
    secret_path("writer_dsn", dsn_as("sluice_writer"), writer_dsn, sizeof writer_dsn);
    secret_path("notifier_dsn", dsn_as("sluice_notifier"), notifier_dsn, sizeof notifier_dsn);
    snprintf(rules_path, sizeof rules_path, "%s/rules.json", secret_dir);
    FILE *f = fopen(rules_path, "w");
    assert_non_null(f);
    fputs("{\"rules\": [{\"name\": \"big_order\", \"sources\": [\"orders\"],"
          " \"when\": {\"path\": \"total\", \"gt\": 1250}, \"severity\": \"info\","
          " \"message\": \"order {order_id}: {total}\"}]}\n",
          f);
    fclose(f);

    char count[32];
    snprintf(count, sizeof count, "%d", EVENTS_PER_SOURCE);
    const char *producer[] = {
        harness_bin("sluice-producer"), "--count", count, "--amqp-url-file", producer_url, NULL};
    const char *worker[] = {harness_bin("sluice-worker"),
                            "--rules",
                            rules_path,
                            "--idle-exit-ms",
                            "2000",
                            "--metrics-port",
                            "0",
                            "--amqp-url-file",
                            worker_url,
                            "--pg-dsn-file",
                            writer_dsn,
                            NULL};
    for (int round = 0; round < 2; round++) { /* the second publishes the same events again */
        run_or_fail("sluice-producer", producer);
        run_or_fail("sluice-worker", worker);
        assert_source_queues_empty();
        assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 4 * EVENTS_PER_SOURCE);
        assert_int_equal(pg_scalar("SELECT count(DISTINCT msg_id) FROM events"),
                         4 * EVENTS_PER_SOURCE);
    }
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);
    assert_int_equal(queue_ready(SLUICE_QUEUE_DEAD), 0);

    /* The worker's maintenance, as the writer, through the owner's
     * function: tomorrow's partition is back, the owner's, readable by the
     * reader; the old one is gone. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_class WHERE relname = '%s'"
             " AND pg_get_userbyid(relowner) = 'sluice_owner'",
             tomorrow);
    assert_int_equal(pg_scalar(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_class WHERE relname = '%s'", old);
    assert_int_equal(pg_scalar(sql), 0);
    PGconn *reader = pg_as("sluice_reader");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tomorrow);
    assert_allowed(reader, "sluice_reader", sql);
    PQfinish(reader);
    pg_exec("UPDATE sluice_partitioning SET retention = NULL WHERE parent = 'events'");

    /* One alert per big order, each delivered once by the notifier. */
    long long big = pg_scalar("SELECT count(*) FROM events WHERE source = 'orders'"
                              " AND (payload->>'total')::numeric > 1250");
    assert_true(big > 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), big);
    snprintf(notifier_log, sizeof notifier_log, "%s/notifier.log", secret_dir);
    const char *notifier[] = {harness_bin("sluice-notifier"),
                              "--metrics-port",
                              "0",
                              "--amqp-url-file",
                              notifier_url,
                              "--pg-dsn-file",
                              notifier_dsn,
                              NULL};
    /* Round two's events came while round one's alerts were unsent, so
     * each alert is in the queue twice: the notifier sends it once. */
    long queued = queue_ready(SLUICE_QUEUE_NOTIFIER);
    assert_true(queued >= big);
    notifier_took took = {notifier_log, queued - (long)big};
    pid_t pid = harness_spawn(notifier, notifier_log);
    assert_true(harness_wait_for(notifier_took_every_message, &took, TIMEOUT_MS));
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
    assert_int_equal(queue_ready(SLUICE_QUEUE_NOTIFIER), 0);
    assert_int_equal(harness_log_count(notifier_log, "alert rule=big_order"), big);
    /* No password in any log line. */
    assert_int_equal(harness_log_count(notifier_log, "secret-1"), 0);
}

/* The count of tables of schema public in `dsn`'s database owned by
 * `owner`. */
static long long tables_owned(const char *dsn, const char *owner)
{
    PGconn *db = PQconnectdb(dsn);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    const char *params[] = {owner};
    PGresult *r = PQexecParams(db,
                               "SELECT count(*) FROM pg_class WHERE relnamespace ="
                               " 'public'::regnamespace AND relkind IN ('r', 'p')"
                               " AND pg_get_userbyid(relowner) = $1",
                               1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(db);
    return n;
}

/* An existing warehouse, set up by a login that is no superuser but has
 * CREATEROLE (and owns the database), is handed to the owner role in
 * place when setup runs with the roles, and a second run changes nothing
 * more. */
static void test_existing_warehouse_converted(void **state)
{
    (void)state;
    pg_exec("DROP DATABASE IF EXISTS sluice_privilege_cr");
    pg_exec("DROP ROLE IF EXISTS sluice_privilege_admin");
    pg_exec("CREATE ROLE sluice_privilege_admin LOGIN CREATEROLE");
    pg_exec("CREATE DATABASE sluice_privilege_cr OWNER sluice_privilege_admin");
    char dsn_file[300], dsn[512];
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(harness_pg_dsn(), &why);
    assert_non_null(opts);
    const char *host = "", *port = "";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (o->val && strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    snprintf(dsn, sizeof dsn,
             "host=%s port=%s dbname=sluice_privilege_cr user=sluice_privilege_admin", host, port);
    PQconninfoFree(opts);
    secret_path("cr_dsn", dsn, dsn_file, sizeof dsn_file);
    const char *before[] = {
        harness_bin("sluice-setup"), "--pg-dsn-file", dsn_file, "--pg-roles", "false", NULL};
    const char *with_roles[] = {harness_bin("sluice-setup"), "--pg-dsn-file", dsn_file, NULL};
    run_or_fail("sluice-setup --pg-roles false", before);
    long long tables = tables_owned(dsn, "sluice_privilege_admin");
    assert_true(tables > 10);
    run_or_fail("sluice-setup with the roles", with_roles);
    assert_int_equal(tables_owned(dsn, "sluice_privilege_admin"), 0);
    assert_int_equal(tables_owned(dsn, "sluice_owner"), tables);
    run_or_fail("sluice-setup again", with_roles);
    assert_int_equal(tables_owned(dsn, "sluice_owner"), tables);
    pg_exec("DROP DATABASE sluice_privilege_cr");
    pg_exec("DROP ROLE sluice_privilege_admin");
}

/* sluice-ctl status works as the reader, reprocess-errors as the writer;
 * each refused with the other's role says which role it needs, and a
 * refused reprocess-errors leaves the row as it was. */
static void test_ctl_roles(void **state)
{
    (void)state;
    harness_reset();
    pg_exec("INSERT INTO event_ids (msg_id, received_at, is_error) VALUES ('privilege-e', now(), "
            "true)");
    pg_exec(
        "INSERT INTO ingest_errors (msg_id, source, routing_key, reason, detail, raw, received_at)"
        " VALUES ('privilege-e', 'orders', 'src.orders', 'invalid_json', 'was bad',"
        " convert_to('{\"fixed\": 1}', 'UTF8'), now())");
    char reader_dsn[300], writer_dsn[300], err[8192];
    secret_path("reader_dsn", dsn_as("sluice_reader"), reader_dsn, sizeof reader_dsn);
    secret_path("writer_dsn", dsn_as("sluice_writer"), writer_dsn, sizeof writer_dsn);
    const char *status_reader[] = {harness_bin("sluice-ctl"), "status", "--pg-dsn-file", reader_dsn,
                                   NULL};
    const char *status_writer[] = {harness_bin("sluice-ctl"), "status", "--pg-dsn-file", writer_dsn,
                                   NULL};
    const char *reprocess_reader[] = {harness_bin("sluice-ctl"), "reprocess-errors",
                                      "--pg-dsn-file", reader_dsn, NULL};
    const char *reprocess_writer[] = {harness_bin("sluice-ctl"), "reprocess-errors",
                                      "--pg-dsn-file", writer_dsn, NULL};
    if (harness_run(status_reader, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("status as the reader: %s", err);
    assert_int_equal(harness_run(status_writer, err, sizeof err, TIMEOUT_MS), 1);
    if (!strstr(err, "permission denied") || !strstr(err, "status needs SELECT on the warehouse"))
        fail_msg("status as the writer: %s", err);

    assert_int_equal(harness_run(reprocess_reader, err, sizeof err, TIMEOUT_MS), 1);
    if (!strstr(err, "reprocess-errors needs the writer role's rights"))
        fail_msg("reprocess-errors as the reader: %s", err);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = 'invalid_json'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 0);

    if (harness_run(reprocess_writer, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("reprocess-errors as the writer: %s", err);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE msg_id = 'privilege-e'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_user),
        cmocka_unit_test(test_worker_user),
        cmocka_unit_test(test_notifier_user),
        cmocka_unit_test(test_password_rotation),
        cmocka_unit_test(test_roles_exist),
        cmocka_unit_test(test_writer_role),
        cmocka_unit_test(test_reader_role),
        cmocka_unit_test(test_notifier_role),
        cmocka_unit_test(test_pipeline_with_roles),
        cmocka_unit_test(test_ctl_roles),
        cmocka_unit_test(test_existing_warehouse_converted),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
