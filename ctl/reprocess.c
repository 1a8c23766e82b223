/*
 * reprocess-errors: stores ingest_errors rows as events once their cause is
 * fixed (a projection or a column changed, max_message_bytes raised).
 *
 * Each row is tried in a transaction of its own, on the warehouse's own
 * terms rather than the worker's code: the body is checked against the
 * message contract (event.h, with this run's max_message_bytes), staged in
 * the session's events_stage table, moved into events if its msg_id can be
 * claimed in event_ids (a msg_id already stored is a no-op; the declared
 * projections are filled by the trigger on events, as for the worker's
 * batches), and the ingest_errors row is deleted, all in one commit: a row
 * leaves ingest_errors only once its event is stored. A row that fails
 * again stays, with the new reason and detail. What this relies on in the
 * schema is listed in the README (sluice-ctl reprocess-errors).
 *
 * Only the current schema is served: sluice-setup brings a warehouse to
 * the latest migrations before anything else runs against it, so there is
 * no path here for a warehouse that setup has not upgraded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "db.h"
#include "event.h"
#include "log.h"
#include "progress.h"

#define CHUNK_ROWS "200" /* rows read per query: bounds memory, not work */

static const char create_stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS events_stage ("
    " msg_id text, source text, routing_key text, payload jsonb,"
    " produced_at timestamptz, received_at timestamptz) ON COMMIT DELETE ROWS";

static const char select_sql[] =
    "SELECT id, msg_id, source, routing_key, raw, received_at FROM ingest_errors"
    " WHERE id > $1 AND ($2 = '' OR reason = $2) AND ($3 = '' OR source = $3)"
    " AND ($4::bigint = 0 OR id <= $4::bigint)"
    " ORDER BY id LIMIT " CHUNK_ROWS;

static const char stage_sql[] =
    "INSERT INTO events_stage (msg_id, source, routing_key, payload, produced_at, received_at)"
    " VALUES ($1, $2, $3, $4::jsonb, NULL, $5::timestamptz)";

/* The msg_id is taken in event_ids (sql/005) unless an event holds it
 * already: an event stored since is not stored twice. */
static const char move_sql[] =
    "INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)"
    " SELECT msg_id, source, routing_key, payload, produced_at, received_at FROM events_stage"
    " WHERE sluice_claim_event_id(msg_id, received_at)";

static const char still_failing_sql[] =
    "UPDATE ingest_errors SET reason = $2, detail = $3 WHERE id = $1";

typedef struct counts {
    uint64_t tried, stored, failed;
} counts;

/* Records that row `id` failed again. Returns 0, or -1 with err. */
static int still_failing(PGconn *db, const char *id, const char *reason, const char *detail,
                         char *err, size_t errlen)
{
    const char *params[3] = {id, reason, detail};
    PGresult *r = db_query(db, PGRES_COMMAND_OK, "recording the new reason", still_failing_sql, 3,
                           params, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

/* Stores one row's event and deletes the row, in one transaction. Returns
 * 1 if stored, 0 if it failed again (recorded), -1 on a failure of the
 * connection or the server (nothing changed; err says why). */
static int store_one(PGconn *db, event_validator *v, PGresult *rows, int i, char *err,
                     size_t errlen)
{
    const char *id = PQgetvalue(rows, i, 0);
    size_t raw_len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, i, 4), &raw_len);
    if (!raw) {
        snprintf(err, errlen, "out of memory reading row %s", id);
        return -1;
    }
    int rc = -1;
    event_verdict verdict = event_validate(v, raw, raw_len);
    if (verdict != EVENT_OK) {
        char detail[128];
        snprintf(detail, sizeof detail, "reprocessed: the body is still %s",
                 event_verdict_reason(verdict));
        rc =
            still_failing(db, id, event_verdict_reason(verdict), detail, err, errlen) == 0 ? 0 : -1;
        goto done;
    }
    char *body = malloc(raw_len + 1);
    if (!body) {
        snprintf(err, errlen, "out of memory reading row %s", id);
        goto done;
    }
    memcpy(body, raw, raw_len);
    body[raw_len] = '\0';
    const char *stage[5] = {PQgetvalue(rows, i, 1), PQgetvalue(rows, i, 2), PQgetvalue(rows, i, 3),
                            body, PQgetvalue(rows, i, 5)};
    const char *del[1] = {id};
    char why[1024] = "";
    if (db_command(db, "BEGIN", err, errlen) != 0)
        goto free_body;
    struct {
        const char *what, *sql;
        int n;
        const char *const *params;
        ExecStatusType want;
    } steps[] = {
        {"staging", stage_sql, 5, stage, PGRES_COMMAND_OK},
        {"storing", move_sql, 0, NULL, PGRES_COMMAND_OK},
        {"deleting the ingest error", "DELETE FROM ingest_errors WHERE id = $1", 1, del,
         PGRES_COMMAND_OK},
    };
    int failed = 0, record = 0; /* record: the failure is the row's, not the server's */
    for (size_t k = 0; k < sizeof steps / sizeof *steps && !failed; k++) {
        PGresult *r =
            PQexecParams(db, steps[k].sql, steps[k].n, NULL, steps[k].params, NULL, NULL, 0);
        if (PQresultStatus(r) != steps[k].want) {
            failed = 1;
            const char *sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
            snprintf(why, sizeof why, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(db));
            pg_flatten(why);
            /* A refusal for lack of rights is the role's, not the row's. */
            record = PQstatus(db) == CONNECTION_OK && !pg_sqlstate_is_transient(sqlstate) &&
                     strcmp(sqlstate ? sqlstate : "", "42501") != 0;
            if (!record) {
                snprintf(err, errlen, "row %s: %s: %s", id, steps[k].what, why);
                db_refused(sqlstate, err, errlen);
            }
        }
        PQclear(r);
    }
    if (!failed)
        rc = db_command(db, "COMMIT", err, errlen) == 0 ? 1 : -1;
    else if (PQstatus(db) == CONNECTION_OK && db_command(db, "ROLLBACK", err, errlen) == 0 &&
             record)
        rc = still_failing(db, id, "rejected_by_database", why, err, errlen) == 0 ? 0 : -1;
free_body:
    free(body);
done:
    PQfreemem(raw);
    return rc;
}

int ctl_reprocess_errors(const ctl_env *env)
{
    const ctl_settings *s = env->s;
    if (*s->source && !source_name_valid(s->source)) {
        fprintf(stderr, "sluice-ctl: --source: bad source name '%s' (allowed: [a-z0-9_-]{1,64})\n",
                s->source);
        return 2;
    }
    char err[1024] = "", last_id[32], max_id[32];
    snprintf(last_id, sizeof last_id, "%ld", s->min_id > 0 ? s->min_id - 1 : 0);
    snprintf(max_id, sizeof max_id, "%ld", s->max_id);
    counts n = {0};
    int rc = 1;
    event_validator *v = event_validator_new((size_t)s->max_message_bytes);
    PGconn *db = pg_connect(s->pg_dsn, err, sizeof err);
    PGresult *r = NULL;
    if (!v || !db)
        goto done;
    if (db_command(db, create_stage_sql, err, sizeof err) != 0)
        goto done;
    r = db_query(db, PGRES_TUPLES_OK, "counting ingest_errors",
                 "SELECT count(*) FROM ingest_errors WHERE id > $1 AND ($2 = '' OR reason = $2)"
                 " AND ($3 = '' OR source = $3) AND ($4::bigint = 0 OR id <= $4::bigint)",
                 4, (const char *const[]){last_id, s->reason, s->source, max_id}, err, sizeof err);
    if (!r)
        goto done;
    uint64_t total = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    progress bar;
    progress_start(&bar, "reprocessing ingest_errors", total);
    for (;;) {
        const char *params[4] = {last_id, s->reason, s->source, max_id};
        r = db_query(db, PGRES_TUPLES_OK, "reading ingest_errors", select_sql, 4, params, err,
                     sizeof err);
        if (!r)
            goto done;
        int rows = PQntuples(r);
        if (rows == 0)
            break;
        for (int i = 0; i < rows; i++) {
            if (shutdown_requested)
                break;
            int stored = store_one(db, v, r, i, err, sizeof err);
            if (stored < 0)
                goto done;
            n.tried++;
            *(stored ? &n.stored : &n.failed) += 1;
            snprintf(last_id, sizeof last_id, "%s", PQgetvalue(r, i, 0));
            char note[64];
            snprintf(note, sizeof note, "stored %" PRIu64 " failed %" PRIu64, n.stored, n.failed);
            progress_update(&bar, n.tried, note);
        }
        PQclear(r);
        r = NULL;
        if (shutdown_requested) {
            log_warn("reprocessing interrupted by a signal after %" PRIu64 " rows", n.tried);
            break;
        }
    }
    progress_end(&bar);
    rc = 0;
done:
    if (rc != 0)
        log_error("reprocess-errors failed: %s", err[0] ? err : "out of memory");
    printf("reprocessed %" PRIu64 " ingest_errors rows: %" PRIu64 " stored as events, %" PRIu64
           " failed again (kept with the new reason)\n",
           n.tried, n.stored, n.failed);
    PQclear(r);
    PQfinish(db);
    event_validator_free(v);
    return rc;
}
