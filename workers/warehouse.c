/*
 * warehouse: see warehouse.h.
 *
 * The common case costs PostgreSQL two COPYs and a commit. In one
 * transaction the batch's message ids are copied straight into event_ids
 * (its primary key is the idempotency key), then its events straight into
 * the partitioned `events`; a statement-level trigger there fills the
 * declared projections from the COPY's transition table, set-based. A
 * source with a projection has a COPY statement of its own, so the trigger
 * runs only its projection; the events of every other source share one
 * (a batch spread over 200 sources is one statement, not 200). Only
 * when the ids' COPY meets a duplicate (a redelivery, a republished copy)
 * is the transaction begun again the slower way: the ids are staged in a
 * temporary table, INSERT ... ON CONFLICT DO NOTHING claims the new ones
 * and says which they are, and only those events are copied. The events'
 * bodies never pass through a staging table.
 *
 * If the database refuses anything but for a transient reason, the batch
 * is stored again row by row under savepoints: rows refused as bad data
 * (SQLSTATE classes 22 and 23) go to ingest_errors with the database's
 * message; rows failing otherwise (say a projection's trigger raising an
 * error) are marked FAILED for the caller to retry and then dead-letter.
 */
#include "warehouse.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "pgcopy.h"
#include "util.h"

struct warehouse {
    PGconn *db;
    pgcopy copy;
    unsigned char *fresh; /* per delivery of the batch: its id was claimed now */
    size_t fresh_cap;
    /* Sources with a projection, read at connect. A projection declared
     * later is still filled (the trigger picks its rows out of a shared
     * statement); it only costs more until the next connect. */
    strlist projected;
    int projected_known; /* 0: unknown (cannot read them): every source its own COPY */
    unsigned char *own;  /* per source index + 1 of the batch: COPYed alone */
    size_t own_cap;
};

static const char create_stage_sql[] =
    "CREATE TEMP TABLE ids_stage (i integer, msg_id text, received_at timestamptz)"
    " ON COMMIT DELETE ROWS";

/* Claims the staged ids not taken yet; returns the batch index of each
 * (the first, if a batch holds the same id twice). */
static const char claim_staged_sql[] =
    "WITH claimed AS ("
    " INSERT INTO event_ids (msg_id, received_at)"
    " SELECT DISTINCT ON (msg_id) msg_id, received_at FROM ids_stage ORDER BY msg_id, i"
    " ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id)"
    " SELECT min(s.i) FROM ids_stage s JOIN claimed USING (msg_id) GROUP BY s.msg_id";

static const char claim_one_sql[] =
    "INSERT INTO event_ids (msg_id, received_at) VALUES ($1, to_timestamp($2::bigint / 1e6))"
    " ON CONFLICT (msg_id) DO NOTHING";

static const char insert_one_sql[] =
    "INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)"
    " VALUES ($1, $2, $3, $4::jsonb, to_timestamp($5::bigint / 1e6),"
    " to_timestamp($6::bigint / 1e6))";

/* An ingest error is recorded once per msg_id, like an event. */
static const char insert_error_sql[] =
    "WITH claimed AS ("
    " INSERT INTO event_ids (msg_id, received_at, is_error)"
    " VALUES ($1, to_timestamp($7::bigint / 1e6), true)"
    " ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id)"
    " INSERT INTO ingest_errors (msg_id, source, routing_key, reason, detail, raw, received_at)"
    " SELECT msg_id, $2, $3, $4, $5, $6, to_timestamp($7::bigint / 1e6) FROM claimed";

/* How a statement ended, which decides what happens to the batch. */
typedef enum {
    SQL_OK,
    SQL_BAD_DATA,   /* the data was refused: record it in ingest_errors */
    SQL_ROW_FAILED, /* failed otherwise, database fine: retry, then dead-letter */
    SQL_FAILED      /* database unreachable or transient trouble: retry it all later */
} sql_outcome;

static sql_outcome outcome(PGconn *db, PGresult *r, ExecStatusType want, char *err, size_t errlen)
{
    if (PQresultStatus(r) == want)
        return SQL_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, errlen, "%s%s%s", state ? state : "", state ? " " : "",
             msg ? msg : PQerrorMessage(db));
    pg_flatten(err);
    if (PQstatus(db) != CONNECTION_OK || pg_sqlstate_is_transient(state))
        return SQL_FAILED;
    /* No partition for the time: not the row's fault. Reconnecting runs
     * the partition maintenance, which creates it. */
    if (strcmp(state, "23514") == 0 && msg && strstr(msg, "no partition"))
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

warehouse *warehouse_open(const char *dsn, char *err, size_t errlen)
{
    warehouse *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(w->db = pg_connect(dsn, err, errlen)))
        goto fail;
    /* Fail fast on a missing schema, with advice, rather than per batch. */
    PGresult *r = PQexec(w->db, "SELECT to_regclass('events') IS NOT NULL"
                                " AND to_regclass('ingest_errors') IS NOT NULL"
                                " AND to_regclass('event_ids') IS NOT NULL");
    int ready = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ready) {
        snprintf(err, errlen, "warehouse tables missing or out of date: run sluice-setup first");
        goto fail;
    }
    char why[512];
    /* The partitions due exist before the first batch, even where nobody
     * runs sluice-setup every day. */
    r = PQexec(w->db, "SELECT sluice_maintain_partitions()");
    sql_outcome o = outcome(w->db, r, PGRES_TUPLES_OK, why, sizeof why);
    PQclear(r);
    if (o != SQL_OK) {
        snprintf(err, errlen, "maintaining partitions: %s", why);
        goto fail;
    }
    r = PQexec(w->db, "SELECT DISTINCT source FROM projections");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        w->projected_known = 1;
        for (int i = 0; i < PQntuples(r) && w->projected_known; i++) {
            if (strlist_push(&w->projected, PQgetvalue(r, i, 0)) != 0)
                w->projected_known = 0;
        }
    } else {
        log_warn("cannot read the projections' sources, each source gets a COPY of its own: %s",
                 PQresultErrorMessage(r));
    }
    PQclear(r);
    if (run(w->db, create_stage_sql, why, sizeof why) != SQL_OK) {
        snprintf(err, errlen, "creating staging table: %s", why);
        goto fail;
    }
    static const pg_statement statements[] = {{"claim_staged", claim_staged_sql, 0},
                                              {"claim_one", claim_one_sql, 2},
                                              {"insert_one", insert_one_sql, 6},
                                              {"insert_error", insert_error_sql, 7}};
    if (pg_prepare(w->db, statements, sizeof statements / sizeof *statements, err, errlen) != 0)
        goto fail;
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
    free(w->fresh);
    strlist_free(&w->projected);
    free(w->own);
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

/* Sends the COPY stream built in w->copy with `command`. */
static sql_outcome send_copy(warehouse *w, const char *command, char *err, size_t errlen)
{
    pgcopy *c = &w->copy;
    if (c->failed) {
        snprintf(err, errlen, "out of memory building COPY data");
        return SQL_FAILED;
    }
    PGresult *r = PQexec(w->db, command);
    sql_outcome o = outcome(w->db, r, PGRES_COPY_IN, err, errlen);
    PQclear(r);
    if (o != SQL_OK)
        return o;
    if (PQputCopyData(w->db, c->data, (int)c->len) != 1 || PQputCopyEnd(w->db, NULL) != 1) {
        snprintf(err, errlen, "sending COPY data: %s", PQerrorMessage(w->db));
        return SQL_FAILED;
    }
    while ((r = PQgetResult(w->db)) != NULL) {
        if (o == SQL_OK)
            o = outcome(w->db, r, PGRES_COMMAND_OK, err, errlen);
        PQclear(r);
    }
    return o;
}

/* COPYs the valid deliveries' ids into event_ids (staged: into ids_stage,
 * with their batch index). */
static sql_outcome copy_ids(warehouse *w, const batch *b, int staged, char *err, size_t errlen)
{
    pgcopy *c = &w->copy;
    pgcopy_begin(c);
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        if (d->verdict != EVENT_OK)
            continue;
        const char *id = batch_str(b, d->msg_id);
        pgcopy_row(c, staged ? 3 : 2);
        if (staged)
            pgcopy_int4(c, (int32_t)i);
        pgcopy_text(c, id, strlen(id));
        pgcopy_timestamptz(c, d->received_at_us);
    }
    pgcopy_end(c);
    return send_copy(w,
                     staged ? "COPY ids_stage (i, msg_id, received_at) FROM STDIN (FORMAT binary)"
                            : "COPY event_ids (msg_id, received_at) FROM STDIN (FORMAT binary)",
                     err, errlen);
}

/* The slow way: claims the batch's ids that are new and marks them in
 * w->fresh. */
static sql_outcome claim_staged(warehouse *w, const batch *b, char *err, size_t errlen)
{
    memset(w->fresh, 0, b->count);
    sql_outcome o = copy_ids(w, b, 1, err, errlen);
    if (o != SQL_OK)
        return o;
    PGresult *r = PQexecPrepared(w->db, "claim_staged", 0, NULL, NULL, NULL, 0);
    o = outcome(w->db, r, PGRES_TUPLES_OK, err, errlen);
    for (int row = 0; o == SQL_OK && row < PQntuples(r); row++) {
        unsigned long i = strtoul(PQgetvalue(r, row, 0), NULL, 10);
        if (i < b->count)
            w->fresh[i] = 1;
    }
    PQclear(r);
    return o;
}

/* copy_rows' `source` for the events of every source not COPYed alone. */
#define SHARED_STATEMENT (-2)

/* COPYs fresh events straight into events: those of `source` (a source
 * index), or with SHARED_STATEMENT those of every source not COPYed alone;
 * the projections' trigger fills the typed tables from them. */
static sql_outcome copy_rows(warehouse *w, const batch *b, int source, size_t *added, char *err,
                             size_t errlen)
{
    pgcopy *c = &w->copy;
    pgcopy_begin(c);
    size_t rows = 0;
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        int mine =
            source == SHARED_STATEMENT ? !w->own[d->source_index + 1] : d->source_index == source;
        if (!w->fresh[i] || !mine)
            continue;
        rows++;
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
    if (rows == 0)
        return SQL_OK;
    *added += rows;
    return send_copy(w,
                     "COPY events (msg_id, source, routing_key, payload, produced_at, received_at)"
                     " FROM STDIN (FORMAT binary)",
                     err, errlen);
}

static int is_projected(const warehouse *w, const char *source)
{
    for (size_t i = 0; i < w->projected.count; i++) {
        if (strcmp(w->projected.items[i], source) == 0)
            return 1;
    }
    return 0;
}

/* COPYs the events marked fresh: each projected source's in a statement
 * of its own, the rest in one. */
static sql_outcome copy_events(warehouse *w, const batch *b, size_t *added, char *err,
                               size_t errlen)
{
    *added = 0;
    int max_source = -1;
    for (size_t i = 0; i < b->count; i++) {
        if (b->items[i].source_index > max_source)
            max_source = b->items[i].source_index;
    }
    /* own[s + 1]: source index s (-1: a source the worker does not list)
     * is COPYed alone. */
    size_t slots = (size_t)max_source + 2;
    if (slots > w->own_cap) {
        unsigned char *grown = realloc(w->own, slots);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return SQL_FAILED;
        }
        w->own = grown;
        w->own_cap = slots;
    }
    memset(w->own, 0, slots);
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        w->own[d->source_index + 1] =
            !w->projected_known || is_projected(w, batch_str(b, d->source));
    }
    sql_outcome o = SQL_OK;
    for (int s = -1; s <= max_source && o == SQL_OK; s++) {
        if (w->own[s + 1])
            o = copy_rows(w, b, s, added, err, errlen);
    }
    if (o == SQL_OK)
        o = copy_rows(w, b, SHARED_STATEMENT, added, err, errlen);
    return o;
}

static void clear_counts(store_result *res)
{
    res->stored = res->duplicates = res->rejected = res->failed = 0;
    if (res->stored_by_source)
        memset(res->stored_by_source, 0, res->nsources * sizeof *res->stored_by_source);
}

static void count_stored(const delivery *d, store_result *res)
{
    res->stored++;
    if (res->stored_by_source && d->source_index >= 0 && (size_t)d->source_index < res->nsources)
        res->stored_by_source[d->source_index]++;
}

/* The caller's step. Whatever makes it fail, it is not the rows' fault:
 * the batch is rolled back whole and comes again later. */
static sql_outcome run_step(warehouse *w, const warehouse_step *step, const batch *b, char *err,
                            size_t errlen)
{
    if (!step || !step->fn)
        return SQL_OK;
    return step->fn(step->arg, w->db, b, err, errlen) == 0 ? SQL_OK : SQL_FAILED;
}

static sql_outcome store_fast(warehouse *w, batch *b, const warehouse_step *step, store_result *res,
                              char *err, size_t errlen)
{
    size_t valid = b->count - b->invalid, added = 0;
    for (size_t i = 0; i < b->count; i++)
        w->fresh[i] = b->items[i].verdict == EVENT_OK;
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    if (o == SQL_OK && valid > 0) {
        o = copy_ids(w, b, 0, err, errlen);
        if (o == SQL_BAD_DATA && strncmp(err, "23505", 5) == 0) {
            /* A duplicate: start again, claiming the ids one set at a time. */
            log_debug("batch holds duplicates, claiming its ids rows=%zu", valid);
            o = run(w->db, "ROLLBACK", err, errlen);
            if (o == SQL_OK)
                o = run(w->db, "BEGIN", err, errlen);
            if (o == SQL_OK)
                o = claim_staged(w, b, err, errlen);
        }
    }
    if (o == SQL_OK && valid > 0)
        o = copy_events(w, b, &added, err, errlen);
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    for (size_t i = 0; o == SQL_OK && i < b->count; i++) {
        delivery *d = &b->items[i];
        if (d->verdict == EVENT_OK)
            d->outcome = w->fresh[i] ? OUTCOME_STORED : OUTCOME_DUPLICATE;
    }
    if (o == SQL_OK)
        o = run_step(w, step, b, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    if (o == SQL_OK) {
        for (size_t i = 0; i < b->count; i++) {
            const delivery *d = &b->items[i];
            if (d->verdict != EVENT_OK)
                continue;
            if (w->fresh[i])
                count_stored(d, res);
            else
                res->duplicates++;
        }
    }
    return o;
}

/* One valid row under a savepoint: its id claimed, then the event. A
 * row the database refuses as data becomes an ingest error; one failing
 * otherwise is marked FAILED. */
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
    const char *claim[2] = {values[0], received};
    sql_outcome o = run(w->db, "SAVEPOINT row", err, errlen);
    if (o != SQL_OK)
        return o;
    PGresult *r = PQexecPrepared(w->db, "claim_one", 2, claim, NULL, NULL, 0);
    o = outcome(w->db, r, PGRES_COMMAND_OK, why, sizeof why);
    int fresh = o == SQL_OK && strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (o == SQL_OK && fresh) {
        r = PQexecPrepared(w->db, "insert_one", 6, values, NULL, NULL, 0);
        o = outcome(w->db, r, PGRES_COMMAND_OK, why, sizeof why);
        PQclear(r);
    }
    if (o == SQL_OK) {
        b->items[i].outcome = fresh ? OUTCOME_STORED : OUTCOME_DUPLICATE;
        if (fresh)
            count_stored(d, res);
        else
            res->duplicates++;
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

static sql_outcome store_isolated(warehouse *w, batch *b, const warehouse_step *step,
                                  store_result *res, char *err, size_t errlen)
{
    sql_outcome o = run(w->db, "BEGIN", err, errlen);
    for (size_t i = 0; i < b->count && o == SQL_OK; i++) {
        if (b->items[i].verdict == EVENT_OK)
            o = store_row(w, b, i, res, err, errlen);
    }
    if (o == SQL_OK)
        o = insert_invalid(w, b, res, err, errlen);
    if (o == SQL_OK)
        o = run_step(w, step, b, err, errlen);
    if (o == SQL_OK)
        o = run(w->db, "COMMIT", err, errlen);
    return o;
}

int warehouse_store(warehouse *w, batch *b, const warehouse_step *step, store_result *res,
                    char *err, size_t errlen)
{
    char ignored[256];
    clear_counts(res);
    if (b->count > w->fresh_cap) {
        unsigned char *grown = realloc(w->fresh, b->count);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->fresh = grown;
        w->fresh_cap = b->count;
    }
    sql_outcome o = store_fast(w, b, step, res, err, errlen);
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
    o = store_isolated(w, b, step, res, err, errlen);
    if (o == SQL_OK)
        return 0;
    run(w->db, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}
