/*
 * warehouse: see warehouse.h.
 *
 * The fast path copies the valid events of a batch into a temporary staging
 * table with binary COPY, moves them into `events` with one INSERT ... ON
 * CONFLICT (msg_id) DO NOTHING (duplicates cost nothing extra), and runs
 * the sources' normalisers on the staged rows. If the database refuses
 * anything but for a transient reason, the batch is stored again row by row
 * under savepoints: rows refused as bad data (SQLSTATE classes 22 and 23)
 * go to ingest_errors with the database's message; rows failing otherwise
 * (say a normaliser raising an exception) are marked FAILED for the caller
 * to retry and then dead-letter.
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
    int has_normalizers; /* migration 002 or later is applied */
};

static const char create_stage_sql[] =
    "CREATE TEMP TABLE events_stage ("
    " msg_id text, source text, routing_key text, payload jsonb,"
    " produced_at timestamptz, received_at timestamptz) ON COMMIT DELETE ROWS";

/* Returns the number of new rows per source, a few rows at most. */
static const char move_stage_sql[] =
    "WITH added AS ("
    " INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)"
    " SELECT msg_id, source, routing_key, payload, produced_at, received_at FROM events_stage"
    " ON CONFLICT (msg_id) DO NOTHING RETURNING source)"
    " SELECT source, count(*) FROM added GROUP BY source";

static const char stage_one_sql[] =
    "INSERT INTO events_stage (msg_id, source, routing_key, payload, produced_at, received_at)"
    " VALUES ($1, $2, $3, $4::jsonb, to_timestamp($5::bigint / 1e6),"
    " to_timestamp($6::bigint / 1e6))";

static const char insert_error_sql[] =
    "INSERT INTO ingest_errors (msg_id, source, routing_key, reason, detail, raw, received_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::bigint / 1e6))"
    " ON CONFLICT (msg_id) DO NOTHING";

/* How a statement ended, which decides what happens to the batch. */
typedef enum {
    SQL_OK,
    SQL_BAD_DATA,   /* the data was refused: record it in ingest_errors */
    SQL_ROW_FAILED, /* failed otherwise, database fine: retry, then dead-letter */
    SQL_FAILED      /* database unreachable or transient trouble: retry it all later */
} sql_outcome;

/* SQLSTATE classes that say "try again later", not "this row is bad":
 * connection exception, transaction rollback (serialisation, deadlock),
 * insufficient resources, operator intervention, system error. */
static int transient_class(const char *state)
{
    static const char *const classes[] = {"08", "40", "53", "57", "58"};
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++) {
        if (strncmp(state, classes[i], 2) == 0)
            return 1;
    }
    return 0;
}

static sql_outcome outcome(PGconn *db, PGresult *r, ExecStatusType want, char *err, size_t errlen)
{
    if (PQresultStatus(r) == want)
        return SQL_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, errlen, "%s%s%s", state ? state : "", state ? " " : "",
             msg ? msg : PQerrorMessage(db));
    if (PQstatus(db) != CONNECTION_OK || !state || transient_class(state))
        return SQL_FAILED;
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        return SQL_BAD_DATA;
    return SQL_ROW_FAILED;
}

static sql_outcome run(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    sql_outcome o = outcome(db, r, PGRES_COMMAND_OK, err, errlen);
    PQclear(r);
    return o;
}

static sql_outcome run_prepared(PGconn *db, const char *name, ExecStatusType want, char *err,
                                size_t errlen)
{
    PGresult *r = PQexecPrepared(db, name, 0, NULL, NULL, NULL, 0);
    sql_outcome o = outcome(db, r, want, err, errlen);
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
                                " AND to_regclass('ingest_errors') IS NOT NULL,"
                                " to_regproc('sluice_apply_normalizers') IS NOT NULL");
    int ready = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    w->has_normalizers = ready && PQgetvalue(r, 0, 1)[0] == 't';
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
                    {"stage_one", stage_one_sql, 6},
                    {"clear_stage", "DELETE FROM events_stage", 0},
                    {"insert_error", insert_error_sql, 7},
                    {"normalize", "SELECT sluice_apply_normalizers()", 0}};
    size_t n = sizeof prepared / sizeof *prepared - (w->has_normalizers ? 0 : 1);
    for (size_t i = 0; i < n; i++) {
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

static sql_outcome insert_error(warehouse *w, const batch *b, const delivery *d, const char *reason,
                                const char *detail, char *err, size_t errlen)
{
    char received[32];
    format_us(received, sizeof received, d->received_at_us);
    const char *values[7] = {batch_str(b, d->msg_id),
                             batch_str(b, d->source),
                             batch_str(b, d->routing_key),
                             reason,
                             detail,
                             batch_str(b, d->body),
                             received};
    int lengths[7] = {0, 0, 0, 0, 0, (int)d->body_len, 0};
    int formats[7] = {0, 0, 0, 0, 0, 1, 0}; /* raw goes in binary: any bytes at all */
    PGresult *r = PQexecPrepared(w->db, "insert_error", 7, values, lengths, formats, 0);
    sql_outcome o = outcome(w->db, r, PGRES_COMMAND_OK, err, errlen);
    PQclear(r);
    return o;
}

/* Records every delivery that failed validation. */
static sql_outcome insert_invalid(warehouse *w, batch *b, store_result *res, char *err,
                                  size_t errlen)
{
    for (size_t i = 0; i < b->count && b->invalid; i++) {
        delivery *d = &b->items[i];
        if (d->verdict == EVENT_OK)
            continue;
        sql_outcome o = insert_error(w, b, d, event_verdict_reason(d->verdict), NULL, err, errlen);
        if (o != SQL_OK)
            return o;
        d->outcome = OUTCOME_REJECTED;
        res->rejected++;
    }
    return SQL_OK;
}

static sql_outcome copy_valid(warehouse *w, const batch *b, size_t *valid, char *err, size_t errlen)
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

/* Index of the first delivery from `source` (to map names to indexes). */
static int source_index_of(const batch *b, const char *source)
{
    for (size_t i = 0; i < b->count; i++) {
        if (strcmp(batch_str(b, b->items[i].source), source) == 0)
            return b->items[i].source_index;
    }
    return -1;
}

/* Runs the normalisers on the staged rows, then moves them into events and
 * counts the new ones. Normalising first means the counts are only taken
 * once nothing else can fail for these rows. */
static sql_outcome move_stage(warehouse *w, const batch *b, store_result *res, size_t *added,
                              char *err, size_t errlen)
{
    *added = 0;
    if (w->has_normalizers) {
        sql_outcome o = run_prepared(w->db, "normalize", PGRES_TUPLES_OK, err, errlen);
        if (o != SQL_OK)
            return o;
    }
    PGresult *r = PQexecPrepared(w->db, "move_stage", 0, NULL, NULL, NULL, 0);
    sql_outcome o = outcome(w->db, r, PGRES_TUPLES_OK, err, errlen);
    for (int row = 0; o == SQL_OK && row < PQntuples(r); row++) {
        size_t n = strtoul(PQgetvalue(r, row, 1), NULL, 10);
        *added += n;
        int idx = source_index_of(b, PQgetvalue(r, row, 0));
        if (res->stored_by_source && idx >= 0 && (size_t)idx < res->nsources)
            res->stored_by_source[idx] += n;
    }
    PQclear(r);
    return o;
}

static void clear_counts(store_result *res)
{
    res->stored = res->duplicates = res->rejected = res->failed = 0;
    if (res->stored_by_source)
        memset(res->stored_by_source, 0, res->nsources * sizeof *res->stored_by_source);
}

static sql_outcome store_fast(warehouse *w, batch *b, store_result *res, char *err, size_t errlen)
{
    size_t valid = 0, added = 0;
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    if (o == SQL_OK)
        o = copy_valid(w, b, &valid, err, errlen);
    if (o == SQL_OK && valid > 0)
        o = move_stage(w, b, res, &added, err, errlen);
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    if (o == SQL_OK) {
        res->stored = added;
        res->duplicates = valid - added;
        /* Which of the valid ones were duplicates is not known row by row
         * here, and does not matter: both are acknowledged. */
        for (size_t i = 0; i < b->count; i++) {
            if (b->items[i].verdict == EVENT_OK)
                b->items[i].outcome = OUTCOME_STORED;
        }
    }
    return o;
}

/* One valid row under a savepoint. A row the database refuses as data
 * becomes an ingest error; one failing otherwise is marked FAILED. */
static sql_outcome store_row(warehouse *w, batch *b, size_t i, store_result *res, char *err,
                             size_t errlen)
{
    const delivery *d = &b->items[i];
    char produced[32], received[32], why[512];
    format_us(produced, sizeof produced, d->produced_at_us);
    format_us(received, sizeof received, d->received_at_us);
    const char *values[6] = {batch_str(b, d->msg_id),
                             batch_str(b, d->source),
                             batch_str(b, d->routing_key),
                             batch_str(b, d->body),
                             d->produced_at_us ? produced : NULL,
                             received};
    sql_outcome o = run(w->db, "SAVEPOINT row", err, errlen);
    if (o != SQL_OK)
        return o;
    PGresult *r = PQexecPrepared(w->db, "stage_one", 6, values, NULL, NULL, 0);
    o = outcome(w->db, r, PGRES_COMMAND_OK, why, sizeof why);
    PQclear(r);
    size_t added = 0;
    if (o == SQL_OK)
        o = move_stage(w, b, res, &added, why, sizeof why);
    if (o == SQL_OK)
        o = run_prepared(w->db, "clear_stage", PGRES_COMMAND_OK, why, sizeof why);
    if (o == SQL_OK) {
        b->items[i].outcome = added ? OUTCOME_STORED : OUTCOME_DUPLICATE;
        *(added ? &res->stored : &res->duplicates) += 1;
        return run(w->db, "RELEASE SAVEPOINT row", err, errlen);
    }
    if (o == SQL_FAILED) {
        snprintf(err, errlen, "%s", why);
        return o;
    }
    log_warn("event not stored msg_id=%s source=%s error=\"%s\"", batch_str(b, d->msg_id),
             batch_str(b, d->source), why);
    sql_outcome undo = run(w->db, "ROLLBACK TO SAVEPOINT row", err, errlen);
    if (undo != SQL_OK)
        return undo;
    if (o == SQL_ROW_FAILED) {
        res->failed++;
        return batch_set_failure(b, i, why) == 0 ? SQL_OK : SQL_FAILED;
    }
    o = insert_error(w, b, &b->items[i], "rejected_by_database", why, err, errlen);
    if (o == SQL_OK) {
        b->items[i].outcome = OUTCOME_REJECTED;
        res->rejected++;
    }
    return o;
}

static sql_outcome store_isolated(warehouse *w, batch *b, store_result *res, char *err,
                                  size_t errlen)
{
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    for (size_t i = 0; i < b->count && o == SQL_OK; i++) {
        if (b->items[i].verdict == EVENT_OK)
            o = store_row(w, b, i, res, err, errlen);
    }
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    return o;
}

int warehouse_store(warehouse *w, batch *b, store_result *res, char *err, size_t errlen)
{
    char ignored[256];
    clear_counts(res);
    sql_outcome o = store_fast(w, b, res, err, errlen);
    if (o == SQL_OK)
        return 0;
    run(w->db, "ROLLBACK", ignored, sizeof ignored);
    if (o == SQL_FAILED)
        return -1;

    log_warn("batch refused by the database, storing it row by row rows=%zu error=\"%s\"", b->count,
             err);
    clear_counts(res);
    for (size_t i = 0; i < b->count; i++)
        b->items[i].outcome = OUTCOME_PENDING;
    o = store_isolated(w, b, res, err, errlen);
    if (o == SQL_OK)
        return 0;
    run(w->db, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}
