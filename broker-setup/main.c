/*
 * sluice-setup: sets up both servers sluice runs on, despite the folder's
 * name (broker-setup/, fixed by the project's layout):
 *   RabbitMQ    the exchanges, queues and bindings (topology.h), and the
 *               policy that upgrades an older sluice.ingest (policy.h);
 *   PostgreSQL  the warehouse schema: numbered migrations, then the function
 *               files (migrate.h), the time partitions and their retention,
 *               and the typed tables a deployment declares (projections.h).
 * RabbitMQ first, then PostgreSQL. Safe to run any number of times: what
 * exists is left as it is; a queue or exchange that exists with other
 * arguments is reported as a configuration conflict (exit 2) rather than
 * silently changed.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "event.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "policy.h"
#include "projections.h"
#include "roles.h"
#include "settings.h"
#include "topology.h"
#include "users.h"

#ifndef SLUICE_SQL_DIR
#define SLUICE_SQL_DIR "sql"
#endif

typedef struct setup_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    char *sources;
    char *mgmt_url;
    mq_tls mgmt_tls;
    int queue_type; /* topology_queue_type */
    long delivery_limit;
    char *sql_dir;
    char *projections;
    long retention_days;
    /* Indexed by users_kind. */
    char *amqp_user[USERS_COUNT], *amqp_password[USERS_COUNT];
    int pg_roles;
    /* Indexed by role_kind. */
    char *pg_role[ROLE_COUNT], *pg_password[ROLE_COUNT];
    int log_level; /* log_level (log.h) */
} setup_settings;

/* The name and the password of one component's RabbitMQ user (users.h). */
#define SETTING_AMQP_USER(kind, index, user)                                                       \
    {                                                                                              \
        "amqp_" kind "_user", CFG_STRING, offsetof(setup_settings, amqp_user[index]), user, 0, 0,  \
            "RabbitMQ user setup creates for sluice-" kind ", with the least rights it needs",     \
            NULL                                                                                   \
    }
#define SETTING_AMQP_PASSWORD(kind, index)                                                         \
    {                                                                                              \
        "amqp_" kind "_password", CFG_SECRET, offsetof(setup_settings, amqp_password[index]), "",  \
            0, 0,                                                                                  \
            "amqp_" kind                                                                           \
            "_user's password, set again on every run; empty: that user is left alone",            \
            NULL                                                                                   \
    }

/* The name and the password of one PostgreSQL role (roles.h). */
#define SETTING_PG_ROLE(word, index, help)                                                         \
    {                                                                                              \
        "pg_" word "_role", CFG_STRING, offsetof(setup_settings, pg_role[index]), "sluice_" word,  \
            0, 0, help, NULL                                                                       \
    }
#define SETTING_PG_PASSWORD(word, index)                                                           \
    {                                                                                              \
        "pg_" word "_password", CFG_SECRET, offsetof(setup_settings, pg_password[index]), "", 0,   \
            0, "pg_" word "_role's password, set again on every run; empty: left as it is", NULL   \
    }

static const cfg_option setup_options[] = {
    SETTING_AMQP_URL(setup_settings),
    SETTING_AMQP_TLS(setup_settings),
    SETTING_PG_DSN(setup_settings),
    SETTING_SOURCES(setup_settings),
    {"mgmt_url", CFG_SECRET, offsetof(setup_settings, mgmt_url), "", 0, 0,
     "RabbitMQ management API (http://host:15672/), used only to give an sluice.ingest declared "
     "by an older setup its alternate exchange by a policy; empty: amqp_url's host and login",
     NULL},
    SETTING_MGMT_TLS(setup_settings),
    {"queue_type", CFG_ENUM, offsetof(setup_settings, queue_type), "classic", 0, 0,
     "classic, or quorum for a RabbitMQ cluster (replicated on every node)", topology_queue_types},
    {"delivery_limit", CFG_INT, offsetof(setup_settings, delivery_limit), "20", 0, 1000000,
     "quorum queues: deliveries of one message before it goes to sluice.dead "
     "(x-delivery-limit; every connection lost with the message unacknowledged counts); "
     "0 = no limit (on RabbitMQ 4 too, where it is declared as -1)",
     NULL},
    {"sql_dir", CFG_STRING, offsetof(setup_settings, sql_dir), SLUICE_SQL_DIR, 0, 0,
     "folder of numbered migrations (NNN_name.sql), applied once each, and of functions/, the "
     "function files applied on every run",
     NULL},
    {"projections", CFG_STRING, offsetof(setup_settings, projections), "", 0, 0,
     "file of [projection NAME] sections: the typed tables to create and fill (the file is the "
     "whole set; unset: the warehouse's declarations are left as they are)",
     NULL},
    {"retention_days", CFG_INT, offsetof(setup_settings, retention_days), "0", 0, 1000000,
     "drop partitions of events, ingest_errors and alerts once entirely older than this many "
     "days (0 = keep for ever)",
     NULL},
    SETTING_AMQP_USER("producer", USERS_PRODUCER, "sluice-producer"),
    SETTING_AMQP_PASSWORD("producer", USERS_PRODUCER),
    SETTING_AMQP_USER("worker", USERS_WORKER, "sluice-worker"),
    SETTING_AMQP_PASSWORD("worker", USERS_WORKER),
    SETTING_AMQP_USER("notifier", USERS_NOTIFIER, "sluice-notifier"),
    SETTING_AMQP_PASSWORD("notifier", USERS_NOTIFIER),
    {"pg_roles", CFG_BOOL, offsetof(setup_settings, pg_roles), "true", 0, 0,
     "create the owner, writer, notifier and reader roles, hand the schema to the owner and "
     "grant each its rights (needs a superuser or CREATEROLE); false: setup's login keeps "
     "everything",
     NULL},
    SETTING_PG_ROLE("owner", ROLE_OWNER, "role that owns the schema (the only one with DDL)"),
    SETTING_PG_PASSWORD("owner", ROLE_OWNER),
    SETTING_PG_ROLE("writer", ROLE_WRITER,
                    "role of sluice-worker and sluice-ctl reprocess-errors: stores events, ingest "
                    "errors and alerts"),
    SETTING_PG_PASSWORD("writer", ROLE_WRITER),
    SETTING_PG_ROLE("notifier", ROLE_NOTIFIER,
                    "role of sluice-notifier: the alert and delivery tables"),
    SETTING_PG_PASSWORD("notifier", ROLE_NOTIFIER),
    SETTING_PG_ROLE("reader", ROLE_READER,
                    "role of people, dashboards and sluice-ctl status: SELECT on every table"),
    SETTING_PG_PASSWORD("reader", ROLE_READER),
    SETTING_LOG_LEVEL(setup_settings),
    CFG_END,
};

static const char program[] = "sluice-setup";

/* declare_once() could not connect: told apart from a failed declaration. */
#define UNREACHABLE (-100)

/* One pass of topology_declare on a fresh connection. */
static int declare_once(const setup_settings *s, const strlist *urls, const strlist *sources,
                        int ingest_without_alternate, char *err, size_t errlen)
{
    size_t next = 0;
    mq_conn *c = mq_connect_any(urls, &next, 0, 10000, err, errlen);
    if (!c)
        return UNREACHABLE;
    topology_options opt = {.queue_type = (topology_queue_type)s->queue_type,
                            .delivery_limit = s->delivery_limit,
                            .ingest_without_alternate = ingest_without_alternate};
    int rc = topology_declare(c, sources, &opt, err, errlen);
    mq_close(c);
    return rc;
}

/* api_tls: the management API's TLS settings (cli_mgmt_tls). */
static int setup_topology(const setup_settings *s, const mq_tls *api_tls, const strlist *urls,
                          const strlist *sources)
{
    char err[1024];
    int rc = declare_once(s, urls, sources, 0, err, sizeof err);
    if (rc == TOPOLOGY_NO_ALTERNATE) {
        /* Declared by an older setup: upgrade it in place by a policy. */
        log_info("exchange " SLUICE_EXCHANGE_INGEST " has no alternate exchange argument; "
                 "setting it by policy " POLICY_NAME);
        int prc = policy_ensure_alternate(s->mgmt_url, urls->items[0], api_tls, err, sizeof err);
        if (prc == POLICY_CONFLICT) {
            fprintf(stderr, "%s: %s\n", program, err);
            return EXIT_USAGE;
        }
        if (prc != POLICY_OK) {
            log_error("cannot give " SLUICE_EXCHANGE_INGEST " its alternate exchange: %s", err);
            return EXIT_RUNTIME;
        }
        rc = declare_once(s, urls, sources, 1, err, sizeof err);
    }
    if (rc == UNREACHABLE) {
        log_error("cannot reach RabbitMQ: %s", err);
        return EXIT_RUNTIME;
    }
    if (rc == TOPOLOGY_CONFLICT) {
        fprintf(stderr, "%s: %s\n", program, err);
        return EXIT_USAGE;
    }
    if (rc != TOPOLOGY_OK) {
        log_error("declaring topology failed: %s", err);
        return EXIT_RUNTIME;
    }
    return 0;
}

/* Each component's RabbitMQ user (users.h), for those given a password. */
static int setup_users(const setup_settings *s, const mq_tls *api_tls, const strlist *urls)
{
    char err[1024];
    users_account accounts[USERS_COUNT];
    for (int k = 0; k < USERS_COUNT; k++)
        accounts[k] = (users_account){s->amqp_user[k], s->amqp_password[k]};
    int done = 0;
    int rc = users_ensure(s->mgmt_url, urls->items[0], api_tls, accounts, &done, err, sizeof err);
    if (rc == USERS_CONFLICT) {
        fprintf(stderr, "%s: %s\n", program, err);
        return EXIT_USAGE;
    }
    if (rc != USERS_OK) {
        log_error("cannot set up the RabbitMQ users: %s", err);
        return EXIT_RUNTIME;
    }
    if (done == 0)
        log_info("rabbitmq users left as they are (no amqp_*_password set): every component "
                 "logs in with what its amqp_url says");
    return 0;
}

/* Records the retention and runs the partition maintenance: the
 * partitions due are created, those past the retention dropped. */
static int setup_partitions(PGconn *db, const setup_settings *s)
{
    char days[32];
    snprintf(days, sizeof days, "%ld", s->retention_days);
    const char *params[] = {days};
    PGresult *r = PQexec(db, "SELECT to_regclass('sluice_partitioning') IS NULL");
    int unpartitioned = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (unpartitioned)
        return 0; /* a --sql-dir without migration 005: nothing to maintain */
    r = PQexecParams(db,
                     "UPDATE sluice_partitioning SET retention ="
                     " CASE WHEN $1::integer > 0 THEN make_interval(days => $1::integer) END",
                     1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
        r = PQexec(db, "SELECT sluice_maintain_partitions()");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (ok)
            log_info("partitions maintained retention_days=%ld dropped=%s", s->retention_days,
                     PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (!ok) {
        log_error("partition maintenance failed: %s", PQerrorMessage(db));
        return EXIT_RUNTIME;
    }
    return 0;
}

/* Creates or extends the declared projections (projections.h). A bad
 * declaration, or a table at odds with one, is bad configuration. */
static int setup_projections(PGconn *db, const char *path)
{
    char err[2048];
    cfg_sections sections;
    if (projections_read(path, &sections, err, sizeof err) != 0 ||
        projections_check(&sections, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        cfg_sections_free(&sections);
        return EXIT_USAGE;
    }
    int count = 0;
    projections_status st = projections_apply(db, &sections, &count, err, sizeof err);
    cfg_sections_free(&sections);
    if (st == PROJECTIONS_CONFLICT) {
        fprintf(stderr, "%s: %s: %s\n", program, path, err);
        return EXIT_USAGE;
    }
    if (st != PROJECTIONS_OK) {
        log_error("creating projections failed: %s", err);
        return EXIT_RUNTIME;
    }
    log_info("projections up to date file=%s count=%d", path, count);
    return 0;
}

static int setup_schema(const setup_settings *s)
{
    char err[2048];
    PGconn *db = pg_connect(s->pg_dsn, err, sizeof err);
    if (!db) {
        log_error("%s", err);
        return EXIT_RUNTIME;
    }
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    role_account accounts[ROLE_COUNT];
    for (int k = 0; k < ROLE_COUNT; k++)
        accounts[k] = (role_account){s->pg_role[k], s->pg_password[k]};
    if (s->pg_roles) {
        int rrc = roles_prepare(db, accounts, err, sizeof err);
        if (rrc != ROLES_OK) {
            if (rrc == ROLES_CONFLICT)
                fprintf(stderr, "%s: %s\n", program, err);
            else
                log_error("%s", err);
            PQfinish(db);
            return rrc == ROLES_CONFLICT ? EXIT_USAGE : EXIT_RUNTIME;
        }
    }
    int applied = migrate_apply(db, s->sql_dir, err, sizeof err);
    if (applied == MIGRATE_MISMATCH) {
        fprintf(stderr, "%s: %s\n", program, err);
        PQfinish(db);
        return EXIT_USAGE;
    }
    if (applied < 0) {
        log_error("migrations failed: %s", err);
        PQfinish(db);
        return EXIT_RUNTIME;
    }
    log_info("schema up to date applied_now=%d", applied);
    int rc = setup_partitions(db, s);
    if (rc == 0 && s->projections && *s->projections)
        rc = setup_projections(db, s->projections);
    if (rc == 0 && s->pg_roles && roles_grant(db, accounts, err, sizeof err) != ROLES_OK) {
        log_error("%s", err);
        rc = EXIT_RUNTIME;
    }
    PQfinish(db);
    return rc;
}

int main(int argc, char **argv)
{
    setup_settings s = {0};
    mq_tls api_tls = {0};
    strlist sources = {0}, urls = {0};
    int rc = cli_parse(setup_options, &s, argc, argv, program,
                       "Sets up both servers: declares sluice's RabbitMQ topology, then brings the "
                       "PostgreSQL warehouse to the current schema (migrations, partitions, "
                       "projections); idempotent.");
    if (rc == CLI_CONTINUE)
        log_init("setup", (log_level)s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &urls);
    if (rc == CLI_CONTINUE)
        rc = cli_mgmt_tls(program, &s.mgmt_tls, &s.amqp_tls, &api_tls);
    if (rc == CLI_CONTINUE)
        rc = cli_sources(program, argc, argv, s.sources, &sources);
    if (rc == CLI_CONTINUE) {
        rc = setup_topology(&s, &api_tls, &urls, &sources);
        if (rc == 0)
            rc = setup_users(&s, &api_tls, &urls);
        if (rc == 0)
            rc = setup_schema(&s);
    }
    strlist_free(&sources);
    strlist_free(&urls);
    cfg_free(setup_options, &s);
    return rc;
}
