/*
 * warehouse: see warehouse.h.
 *
 * The fast path copies the valid events of a batch into a temporary staging
 * table with binary COPY and moves them into `events` with one INSERT ...
 * ON CONFLICT (msg_id) DO NOTHING, so duplicates cost nothing extra. If the
 * database refuses the data (SQLSTATE classes 22 and 23: say a string jsonb
 * will not take), the batch is stored again row by row under savepoints
 * and each refused row goes to ingest_errors with the database's message.
 */
#include "warehouse.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgcopy.h"

struct warehouse {
    PGconn *db;
    pgcopy copy;
};

static const char create_stage_sql[] =
    "CREATE TEMP TABLE events_stage ("
    " msg_id text, source text, routing_key text, payload jsonb,"
    " produced_at timestamptz, received_at timestamptz) ON COMMIT DELETE ROWS";

static const char move_stage_sql[] =
    "INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)"
    " SELECT msg_id, source, routing_key, payload, produced_at, received_at FROM events_stage"
    " ON CONFLICT (msg_id) DO NOTHING";

static const char insert_one_sql[] =
    "INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)"
    " VALUES ($1, $2, $3, $4::jsonb, to_timestamp($5::bigint / 1e6),"
    " to_timestamp($6::bigint / 1e6)) ON CONFLICT (msg_id) DO NOTHING";

static const char insert_error_sql[] =
    "INSERT INTO ingest_errors (msg_id, source, routing_key, reason, detail, raw, received_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::bigint / 1e6))"
    " ON CONFLICT (msg_id) DO NOTHING";

/* Outcome of one statement, so callers can tell bad data from failures. */
typedef enum { SQL_OK, SQL_BAD_DATA, SQL_FAILED } sql_outcome;

static sql_outcome outcome(PGconn *db, PGresult *r, ExecStatusType want, char *err,
                           size_t errlen)
{
    if (PQresultStatus(r) == want)
        return SQL_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, errlen, "%s%s%s", state ? state : "", state ? " " : "",
             msg ? msg : PQerrorMessage(db));
    if (PQstatus(db) == CONNECTION_OK && state && (strncmp(state, "22", 2) == 0 ||
                                                   strncmp(state, "23", 2) == 0))
        return SQL_BAD_DATA;
    return SQL_FAILED;
}

static sql_outcome run(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    sql_outcome o = outcome(db, r, PGRES_COMMAND_OK, err, errlen);
    PQclear(r);
    return o;
}

warehouse *warehouse_open(const char *dsn, char *err, size_t errlen)
{
    warehouse *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->db = PQconnectdb(dsn);
    if (PQstatus(w->db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(w->db));
        goto fail;
    }
    /* Fail fast on a missing schema, with advice, rather than per batch. */
    PGresult *r = PQexec(w->db, "SELECT to_regclass('events') IS NOT NULL"
                                " AND to_regclass('ingest_errors') IS NOT NULL");
    int ready = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ready) {
        snprintf(err, errlen, "warehouse tables missing: run sluice-setup first");
        goto fail;
    }
    char why[512];
    if (run(w->db, create_stage_sql, why, sizeof why) != SQL_OK) {
        snprintf(err, errlen, "creating staging table: %s", why);
        goto fail;
    }
    struct {
        const char *name, *sql;
        int nparams;
    } prepared[] = {{"move_stage", move_stage_sql, 0},
                    {"insert_one", insert_one_sql, 6},
                    {"insert_error", insert_error_sql, 7}};
    for (size_t i = 0; i < sizeof prepared / sizeof *prepared; i++) {
        r = PQprepare(w->db, prepared[i].name, prepared[i].sql, prepared[i].nparams, NULL);
        sql_outcome o = outcome(w->db, r, PGRES_COMMAND_OK, why, sizeof why);
        PQclear(r);
        if (o != SQL_OK) {
            snprintf(err, errlen, "preparing %s: %s", prepared[i].name, why);
            goto fail;
        }
    }
    return w;
fail:
    warehouse_close(w);
    return NULL;
}

void warehouse_close(warehouse *w)
{
    if (!w)
        return;
    PQfinish(w->db);
    pgcopy_free(&w->copy);
    free(w);
}

static void format_us(char *out, size_t outlen, int64_t us)
{
    snprintf(out, outlen, "%lld", (long long)us);
}

static sql_outcome insert_error(warehouse *w, const batch *b, const delivery *d,
                                const char *reason, const char *detail, char *err, size_t errlen)
{
    char received[32];
    format_us(received, sizeof received, d->received_at_us);
    const char *values[7] = {batch_str(b, d->msg_id), batch_str(b, d->source),
                             batch_str(b, d->routing_key), reason, detail,
                             batch_str(b, d->body), received};
    int lengths[7] = {0, 0, 0, 0, 0, (int)d->body_len, 0};
    int formats[7] = {0, 0, 0, 0, 0, 1, 0}; /* raw goes in binary: any bytes at all */
    PGresult *r = PQexecPrepared(w->db, "insert_error", 7, values, lengths, formats, 0);
    sql_outcome o = outcome(w->db, r, PGRES_COMMAND_OK, err, errlen);
    PQclear(r);
    return o;
}

/* Records every delivery that failed validation. */
static sql_outcome insert_invalid(warehouse *w, const batch *b, store_result *res, char *err,
                                  size_t errlen)
{
    for (size_t i = 0; i < b->count && b->invalid; i++) {
        const delivery *d = &b->items[i];
        if (d->verdict == EVENT_OK)
            continue;
        sql_outcome o = insert_error(w, b, d, event_verdict_reason(d->verdict), NULL, err, errlen);
        if (o != SQL_OK)
            return o;
        res->rejected++;
    }
    return SQL_OK;
}

static sql_outcome copy_valid(warehouse *w, const batch *b, size_t *valid, char *err,
                              size_t errlen)
{
    pgcopy *c = &w->copy;
    pgcopy_begin(c);
    *valid = 0;
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        if (d->verdict != EVENT_OK)
            continue;
        (*valid)++;
        pgcopy_row(c, 6);
        const char *id = batch_str(b, d->msg_id), *src = batch_str(b, d->source);
        const char *rk = batch_str(b, d->routing_key);
        pgcopy_text(c, id, strlen(id));
        pgcopy_text(c, src, strlen(src));
        pgcopy_text(c, rk, strlen(rk));
        pgcopy_jsonb(c, batch_str(b, d->body), d->body_len);
        if (d->produced_at_us)
            pgcopy_timestamptz(c, d->produced_at_us);
        else
            pgcopy_null(c);
        pgcopy_timestamptz(c, d->received_at_us);
    }
    pgcopy_end(c);
    if (c->failed) {
        snprintf(err, errlen, "out of memory building COPY data");
        return SQL_FAILED;
    }
    if (*valid == 0)
        return SQL_OK;

    PGresult *r = PQexec(w->db, "COPY events_stage FROM STDIN (FORMAT binary)");
    sql_outcome o = outcome(w->db, r, PGRES_COPY_IN, err, errlen);
    PQclear(r);
    if (o != SQL_OK)
        return o;
    if (PQputCopyData(w->db, c->data, (int)c->len) != 1 || PQputCopyEnd(w->db, NULL) != 1) {
        snprintf(err, errlen, "sending COPY data: %s", PQerrorMessage(w->db));
        return SQL_FAILED;
    }
    o = SQL_OK;
    while ((r = PQgetResult(w->db)) != NULL) {
        if (o == SQL_OK)
            o = outcome(w->db, r, PGRES_COMMAND_OK, err, errlen);
        PQclear(r);
    }
    return o;
}

static sql_outcome store_fast(warehouse *w, const batch *b, store_result *res, char *err,
                              size_t errlen)
{
    size_t valid;
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    if (o == SQL_OK)
        o = copy_valid(w, b, &valid, err, errlen);
    if (o == SQL_OK && valid > 0) {
        PGresult *r = PQexecPrepared(w->db, "move_stage", 0, NULL, NULL, NULL, 0);
        o = outcome(w->db, r, PGRES_COMMAND_OK, err, errlen);
        if (o == SQL_OK) {
            res->stored = strtoul(PQcmdTuples(r), NULL, 10);
            res->duplicates = valid - res->stored;
        }
        PQclear(r);
    }
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    return o;
}

/* One valid row under a savepoint; a refused row becomes an ingest error. */
static sql_outcome store_row(warehouse *w, const batch *b, const delivery *d, store_result *res,
                             char *err, size_t errlen)
{
    char produced[32], received[32], why[512];
    format_us(produced, sizeof produced, d->produced_at_us);
    format_us(received, sizeof received, d->received_at_us);
    const char *values[6] = {batch_str(b, d->msg_id), batch_str(b, d->source),
                             batch_str(b, d->routing_key), batch_str(b, d->body),
                             d->produced_at_us ? produced : NULL, received};
    sql_outcome o = run(w->db, "SAVEPOINT row", err, errlen);
    if (o != SQL_OK)
        return o;
    PGresult *r = PQexecPrepared(w->db, "insert_one", 6, values, NULL, NULL, 0);
    o = outcome(w->db, r, PGRES_COMMAND_OK, why, sizeof why);
    if (o == SQL_OK) {
        if (strcmp(PQcmdTuples(r), "1") == 0)
            res->stored++;
        else
            res->duplicates++;
    }
    PQclear(r);
    if (o == SQL_OK)
        return run(w->db, "RELEASE SAVEPOINT row", err, errlen);
    if (o == SQL_FAILED) {
        snprintf(err, errlen, "%s", why);
        return o;
    }
    log_warn("event refused by the database msg_id=%s source=%s error=\"%s\"",
             batch_str(b, d->msg_id), batch_str(b, d->source), why);
    o = run(w->db, "ROLLBACK TO SAVEPOINT row", err, errlen);
    if (o == SQL_OK)
        o = insert_error(w, b, d, "rejected_by_database", why, err, errlen);
    if (o == SQL_OK)
        res->rejected++;
    return o;
}

static sql_outcome store_isolated(warehouse *w, const batch *b, store_result *res, char *err,
                                  size_t errlen)
{
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    for (size_t i = 0; i < b->count && o == SQL_OK; i++) {
        if (b->items[i].verdict == EVENT_OK)
            o = store_row(w, b, &b->items[i], res, err, errlen);
    }
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    return o;
}

int warehouse_store(warehouse *w, const batch *b, store_result *res, char *err, size_t errlen)
{
    char ignored[256];
    memset(res, 0, sizeof *res);
    sql_outcome o = store_fast(w, b, res, err, errlen);
    if (o == SQL_OK)
        return 0;
    run(w->db, "ROLLBACK", ignored, sizeof ignored);
    if (o == SQL_FAILED)
        return -1;

    log_warn("batch refused by the database, storing it row by row rows=%zu error=\"%s\"",
             b->count, err);
    memset(res, 0, sizeof *res);
    o = store_isolated(w, b, res, err, errlen);
    if (o == SQL_OK)
        return 0;
    run(w->db, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}
