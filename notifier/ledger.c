/*
 * ledger: see ledger.h. Every query is a prepared statement with
 * parameters; the set-based work (planning a batch of alerts, claiming a
 * group or a run of alerts, recording a message's outcome for each of its
 * alerts) is in the SQL functions of sql/004 and sql/009, one round trip
 * each.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

struct ledger {
    PGconn *db;
};

static const pg_statement statements[] = {
    {"plan",
     "SELECT n, fresh FROM sluice_plan_alerts($1::text[], $2::text[], $3::text[], $4::text[],"
     " $5::text[], $6::text[], $7::text[], $8::text[])",
     8},
    {"open_channels",
     "SELECT DISTINCT channel FROM alert_deliveries WHERE state IN ('pending', 'sending', "
     "'retrying')",
     0},
    /* Lock space 0x51c3 ("sluice"), key: the destination's name. */
    {"lease", "SELECT pg_try_advisory_lock(20931, hashtext($1))", 1},
    {"recover", "SELECT sluice_recover_channel($1, $2)", 2},
    {"retrying",
     "SELECT id FROM alert_messages WHERE channel = $1 AND state = 'retrying' ORDER BY id LIMIT 1",
     1},
    {"claim_many", "SELECT sluice_claim_many($1, $2)", 2},
    {"next_group",
     "SELECT group_key, due_ms FROM ("
     " SELECT d.group_key, max(d.severity_rank) AS rank,"
     "  1000 * extract(epoch FROM greatest("
     "   min(d.planned_at) + make_interval(secs => $2::float8 / 1000),"
     "   COALESCE(max(g.last_message_at) + make_interval(secs => $3::float8 / 1000),"
     "            '-infinity')) - clock_timestamp()) AS due_ms"
     " FROM alert_deliveries d"
     " LEFT JOIN alert_groups g ON g.channel = d.channel AND g.group_key = d.group_key"
     " WHERE d.channel = $1 AND d.state = 'pending' GROUP BY d.group_key) s"
     " ORDER BY due_ms <= 0 DESC, rank DESC, due_ms LIMIT 1",
     3},
    {"claim", "SELECT sluice_claim_group($1, $2, $3, $4)", 4},
    {"reclaim", "SELECT sluice_reclaim_message($1)", 1},
    /* The message and its alerts in one round trip: the window functions
     * see every alert of the message before LIMIT picks the page. */
    {"message",
     "SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key,"
     " (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent,"
     " extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ())"
     " FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id"
     " JOIN alerts a USING (alert_id) WHERE m.id = $1"
     " ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT $2 OFFSET $3",
     3},
    {"record", "SELECT sluice_record_message($1, $2, $3, $4, $5)", 5},
    {"backlog",
     "SELECT count(*) FROM alert_deliveries WHERE channel = $1 AND state IN ('pending', "
     "'sending', 'retrying')",
     1},
};

ledger *ledger_open(const char *dsn, char *err, size_t errlen)
{
    ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(l->db = pg_connect(dsn, err, errlen)))
        goto fail;
    if (pg_prepare(l->db, statements, sizeof statements / sizeof *statements, err, errlen) != 0) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (has sluice-setup applied sql/004?)");
        goto fail;
    }
    return l;
fail:
    ledger_close(l);
    return NULL;
}

void ledger_close(ledger *l)
{
    if (!l)
        return;
    PQfinish(l->db);
    free(l);
}

/* Runs a prepared statement; the result (tuples) or NULL with err. */
static PGresult *exec(ledger *l, const char *name, int n, const char *const *values, char *err,
                      size_t errlen)
{
    PGresult *r = PQexecPrepared(l->db, name, n, values, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    pg_error(l->db, r, err, errlen, "%s", name);
    PQclear(r);
    return NULL;
}

static int command(ledger *l, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(l->db, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pg_error(l->db, r, err, errlen, "%s", sql);
    PQclear(r);
    return ok ? 0 : -1;
}

int ledger_begin(ledger *l, char *err, size_t errlen)
{
    return command(l, "BEGIN", err, errlen);
}

int ledger_commit(ledger *l, char *err, size_t errlen)
{
    return command(l, "COMMIT", err, errlen);
}

/* Appends one element to an array literal being built ("{" already in):
 * double-quoted, with its quotes and backslashes escaped, so any text is
 * one element. A failure is sticky in t->failed. */
static void put_element(buf *t, const char *s)
{
    (void)buf_append(t, t->len > 1 ? ",\"" : "\"", t->len > 1 ? 2 : 1);
    for (const char *p = s; *p; p++) {
        size_t run = strcspn(p, "\"\\");
        (void)buf_append(t, p, run);
        p += run;
        if (!*p)
            break;
        (void)buf_append(t, "\\", 1);
        (void)buf_append(t, p, 1);
    }
    (void)buf_append(t, "\"", 1);
}

#define NPLAN (sizeof((ledger_plans *)0)->arrays / sizeof *((ledger_plans *)0)->arrays)

int ledger_plans_add(ledger_plans *p, const alert *a, const char *channels, const char *grouped,
                     const char *group_key)
{
    const char *values[NPLAN] = {a->alert_id, a->rule,  a->severity, a->source,
                                 a->message,  channels, grouped,     group_key};
    for (size_t j = 0; j < NPLAN; j++) {
        if (p->ids.count == 0) {
            buf_clear(&p->arrays[j]);
            (void)buf_append(&p->arrays[j], "{", 1);
        }
        put_element(&p->arrays[j], values[j]);
    }
    for (size_t j = 0; j < NPLAN; j++) {
        if (p->arrays[j].failed) {
            ledger_plans_clear(p);
            return -1;
        }
    }
    if (strlist_push(&p->ids, a->alert_id) != 0) {
        ledger_plans_clear(p);
        return -1;
    }
    return 0;
}

void ledger_plans_clear(ledger_plans *p)
{
    for (size_t j = 0; j < NPLAN; j++)
        buf_clear(&p->arrays[j]);
    strlist_free(&p->ids);
}

void ledger_plans_free(ledger_plans *p)
{
    for (size_t j = 0; j < NPLAN; j++)
        buf_free(&p->arrays[j]);
    strlist_free(&p->ids);
    free(p->fresh);
    p->fresh = NULL;
    p->fresh_cap = 0;
}

int ledger_plan_batch(ledger *l, ledger_plans *p, char *err, size_t errlen)
{
    size_t n = p->ids.count;
    if (n == 0)
        return 0;
    if (n > p->fresh_cap) {
        int *grown = realloc(p->fresh, n * sizeof *grown);
        if (!grown) {
            snprintf(err, errlen, "out of memory planning alerts");
            return -1;
        }
        p->fresh = grown;
        p->fresh_cap = n;
    }
    const char *values[NPLAN];
    for (size_t j = 0; j < NPLAN; j++) {
        (void)buf_append(&p->arrays[j], "}", 1);
        if (p->arrays[j].failed) {
            snprintf(err, errlen, "out of memory planning alerts");
            return -1;
        }
        values[j] = p->arrays[j].data;
    }
    PGresult *r = exec(l, "plan", (int)NPLAN, values, err, errlen);
    if (!r)
        return -1;
    /* Row k is alert n = k + 1, in the order added. */
    int rows = PQntuples(r), ok = rows == (int)n;
    for (int k = 0; ok && k < rows; k++) {
        ok = atoi(PQgetvalue(r, k, 0)) == k + 1;
        p->fresh[k] = atoi(PQgetvalue(r, k, 1));
    }
    PQclear(r);
    if (!ok) {
        snprintf(err, errlen, "planning alerts: %d rows for %zu alerts", rows, n);
        return -1;
    }
    return 0;
}

int ledger_open_channels(ledger *l, strlist *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    PGresult *r = exec(l, "open_channels", 0, NULL, err, errlen);
    if (!r)
        return -1;
    int n = PQntuples(r);
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    for (int i = 0; out->items && i < n; i++) {
        if (!(out->items[out->count] = strdup(PQgetvalue(r, i, 0))))
            break;
        out->count++;
    }
    PQclear(r);
    if (!out->items || out->count < (size_t)n) {
        strlist_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* A statement with one text parameter returning one value, copied into
 * out (NULL: not wanted); *rows gets the number of rows (0 or 1). */
static int one_value(ledger *l, const char *name, const char *param, char *out, size_t outlen,
                     int *rows, char *err, size_t errlen)
{
    const char *values[1] = {param};
    PGresult *r = exec(l, name, 1, values, err, errlen);
    if (!r)
        return -1;
    *rows = PQntuples(r);
    if (out && outlen)
        snprintf(out, outlen, "%s", *rows ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return 0;
}

int ledger_lease(ledger *l, const char *channel, int *got, char *err, size_t errlen)
{
    char v[8];
    int rows;
    if (one_value(l, "lease", channel, v, sizeof v, &rows, err, errlen) != 0)
        return -1;
    *got = rows && v[0] == 't';
    return 0;
}

int ledger_recover(ledger *l, const char *channel, int resend, long *interrupted, char *err,
                   size_t errlen)
{
    const char *values[2] = {channel, resend ? "true" : "false"};
    PGresult *r = exec(l, "recover", 2, values, err, errlen);
    if (!r)
        return -1;
    *interrupted = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int ledger_retrying_message(ledger *l, const char *channel, int64_t *id, char *err, size_t errlen)
{
    char v[32];
    int rows;
    if (one_value(l, "retrying", channel, v, sizeof v, &rows, err, errlen) != 0)
        return -1;
    *id = rows ? strtoll(v, NULL, 10) : 0;
    return 0;
}

int ledger_next_group(ledger *l, const char *channel, long group_wait_ms, long group_interval_ms,
                      char *key, size_t keylen, long *due_in_ms, int *found, char *err,
                      size_t errlen)
{
    char wait[32], interval[32];
    snprintf(wait, sizeof wait, "%ld", group_wait_ms);
    snprintf(interval, sizeof interval, "%ld", group_interval_ms);
    const char *values[3] = {channel, wait, interval};
    PGresult *r = exec(l, "next_group", 3, values, err, errlen);
    if (!r)
        return -1;
    *found = PQntuples(r) > 0;
    if (*found) {
        snprintf(key, keylen, "%s", PQgetvalue(r, 0, 0));
        *due_in_ms = (long)strtod(PQgetvalue(r, 0, 1), NULL);
    }
    PQclear(r);
    return 0;
}

int ledger_claim_many(ledger *l, const char *channel, long max, int64_t *id, char *err,
                      size_t errlen)
{
    char maxs[32];
    snprintf(maxs, sizeof maxs, "%ld", max > 0 ? max : 1);
    const char *values[2] = {channel, maxs};
    PGresult *r = exec(l, "claim_many", 2, values, err, errlen);
    if (!r)
        return -1;
    *id = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int ledger_claim_group(ledger *l, const char *channel, const char *key, long max, int remember,
                       int64_t *id, char *err, size_t errlen)
{
    char maxs[32];
    snprintf(maxs, sizeof maxs, "%ld", max);
    const char *values[4] = {channel, key, maxs, remember ? "true" : "false"};
    PGresult *r = exec(l, "claim", 4, values, err, errlen);
    if (!r)
        return -1;
    *id = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int ledger_reclaim(ledger *l, int64_t id, char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *values[1] = {ids};
    PGresult *r = exec(l, "reclaim", 1, values, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

int ledger_message(ledger *l, int64_t id, long show, long offset, message_info *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->id = id;
    char ids[32], shows[32], offsets[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(shows, sizeof shows, "%ld", show);
    snprintf(offsets, sizeof offsets, "%ld", offset);
    const char *values[3] = {ids, shows, offsets};
    if (!(out->rows = exec(l, "message", 3, values, err, errlen)))
        return -1;
    int n = PQntuples(out->rows);
    if (n > 0 && !(out->shown = calloc((size_t)n, sizeof *out->shown))) {
        message_info_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        alert *a = &out->shown[i];
        a->alert_id = PQgetvalue(out->rows, i, 0);
        a->rule = PQgetvalue(out->rows, i, 1);
        a->severity = PQgetvalue(out->rows, i, 2);
        a->source = PQgetvalue(out->rows, i, 3);
        a->msg_id = PQgetisnull(out->rows, i, 4) ? NULL : PQgetvalue(out->rows, i, 4);
        a->message = PQgetvalue(out->rows, i, 5);
        a->dedup_key = PQgetvalue(out->rows, i, 6);
        a->raised_at_us = strtoll(PQgetvalue(out->rows, i, 7), NULL, 10);
    }
    if (n > 0) {
        snprintf(out->group_key, sizeof out->group_key, "%s", PQgetvalue(out->rows, 0, 8));
        out->alerts = atol(PQgetvalue(out->rows, 0, 9));
        out->parts_sent = atol(PQgetvalue(out->rows, 0, 10));
        out->span_s = strtod(PQgetvalue(out->rows, 0, 11), NULL);
    }
    out->nshown = (size_t)n;
    return 0;
}

void message_info_free(message_info *m)
{
    if (!m)
        return;
    free(m->shown);
    PQclear(m->rows);
    m->shown = NULL;
    m->rows = NULL;
    m->nshown = 0;
}

int ledger_record_message(ledger *l, int64_t id, const char *state, const char *error, long parts,
                          long parts_sent, char *err, size_t errlen)
{
    char ids[32], partss[32], sents[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(partss, sizeof partss, "%ld", parts);
    snprintf(sents, sizeof sents, "%ld", parts_sent);
    const char *values[5] = {ids, state, error, partss, sents};
    PGresult *r = exec(l, "record", 5, values, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

int ledger_backlog(ledger *l, const char *channel, long long *n, char *err, size_t errlen)
{
    char v[32];
    int rows;
    if (one_value(l, "backlog", channel, v, sizeof v, &rows, err, errlen) != 0)
        return -1;
    *n = atoll(v);
    return 0;
}
