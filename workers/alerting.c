/*
 * alerting: see alerting.h.
 */
#include "alerting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "buf.h"
#include "event.h"
#include "log.h"
#include "mq.h"
#include "pg.h"
#include "publisher.h"

#define ALERT_WINDOW 1024        /* unconfirmed alerts in flight: a whole batch, usually */
#define CONFIRM_TIMEOUT_MS 30000 /* waiting for the broker's confirms */

/* What the record step returned for an alert. */
typedef enum {
    KEPT_PENDING = 0, /* not recorded (yet, or its event was not stored) */
    KEPT_RAISED,      /* recorded now, or before and not yet in the notifier's hands: publish */
    KEPT_SUPPRESSED,  /* inside its dedup window */
    KEPT_HANDLED      /* raised before and already in the notifier's hands */
} kept_state;

/* One alert raised by the rules on the batch in hand; strings owned. */
typedef struct kept {
    size_t delivery; /* index in the batch */
    int source_index;
    char *alert_id, *rule, *source, *msg_id, *message, *dedup_key;
    const char *severity; /* statically allocated (alert.h) */
    long window_s;
    char routing_key[128];
    kept_state state;
} kept;

struct alerting {
    const rule_set *rules;
    const prefilter *pf; /* NULL: parse every event of a watched source */
    const strlist *urls;
    size_t next_url;
    int heartbeat_s;
    mq_conn *conn; /* NULL until needed or after a failure; the publisher is attached to it */
    publisher *pub;
    json_tokener *tok;
    kept *alerts; /* the batch in hand's */
    size_t count, cap;
    buf arrays[9]; /* the record statement's parameters (array literals) */
    alerting_stats stats;
    alerting_count_fn count_fn; /* NULL: nobody to tell */
    void *count_arg;
};

/* What the rules callback needs about the event being evaluated. */
typedef struct current {
    alerting *a;
    const batch *b;
    size_t delivery;
} current;

static const char record_sql[] =
    "SELECT n, state FROM sluice_raise_alerts($1::text[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::text[], $7::text[], $8::integer[], $9::text[])";

alerting *alerting_new(const rule_set *rules, const strlist *amqp_urls, int heartbeat_s)
{
    alerting *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->rules = rules;
    a->urls = amqp_urls;
    a->heartbeat_s = heartbeat_s;
    a->pub = publisher_new(SLUICE_EXCHANGE_ALERTS, "sluice-worker", ALERT_WINDOW);
    a->tok = json_tokener_new_ex(EVENT_MAX_DEPTH + 1); /* every event that passed validation */
    if (!a->pub || !a->tok) {
        alerting_free(a);
        return NULL;
    }
    return a;
}

static void disconnect(alerting *a)
{
    publisher_detach(a->pub);
    mq_close(a->conn);
    a->conn = NULL;
}

static void forget(alerting *a)
{
    for (size_t i = 0; i < a->count; i++) {
        kept *k = &a->alerts[i];
        free(k->alert_id);
        free(k->rule);
        free(k->source);
        free(k->msg_id);
        free(k->message);
        free(k->dedup_key);
    }
    a->count = 0;
}

void alerting_free(alerting *a)
{
    if (!a)
        return;
    disconnect(a);
    publisher_free(a->pub);
    if (a->tok)
        json_tokener_free(a->tok);
    forget(a);
    free(a->alerts);
    for (size_t i = 0; i < sizeof a->arrays / sizeof *a->arrays; i++)
        buf_free(&a->arrays[i]);
    free(a);
}

void alerting_set_rules(alerting *a, const rule_set *rules)
{
    a->rules = rules;
}

void alerting_set_prefilter(alerting *a, const prefilter *pf)
{
    a->pf = pf;
}

void alerting_on_count(alerting *a, alerting_count_fn fn, void *arg)
{
    a->count_fn = fn;
    a->count_arg = arg;
}

const alerting_stats *alerting_get_stats(const alerting *a)
{
    return &a->stats;
}

/* Keeps one match (its strings move into the kept alert). */
static int on_fired(rule_match *m, void *arg)
{
    current *cur = arg;
    alerting *a = cur->a;
    const delivery *d = &cur->b->items[cur->delivery];
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        kept *grown = realloc(a->alerts, cap * sizeof *grown);
        if (!grown) {
            rules_match_clear(m);
            return -1;
        }
        a->alerts = grown;
        a->cap = cap;
    }
    kept *k = &a->alerts[a->count];
    memset(k, 0, sizeof *k);
    k->delivery = cur->delivery;
    k->source_index = d->source_index;
    k->severity = m->severity;
    k->window_s = m->window_s;
    k->message = m->message;
    k->dedup_key = m->dedup_key;
    m->message = m->dedup_key = NULL;
    const char *msg_id = batch_str(cur->b, d->msg_id);
    k->alert_id = alert_make_id(m->rule, msg_id);
    k->rule = strdup(m->rule);
    k->source = strdup(batch_str(cur->b, d->source));
    k->msg_id = strdup(msg_id);
    a->count++; /* counted before the check, so forget() frees what was made */
    if (!k->alert_id || !k->rule || !k->source || !k->msg_id)
        return -1;
    alert al = {.rule = k->rule, .severity = k->severity};
    /* Rule names are at most 64 characters and severities short: it fits. */
    alert_routing_key(&al, k->routing_key, sizeof k->routing_key);
    return 0;
}

int alerting_evaluate(alerting *a, const batch *b, char *err, size_t errlen)
{
    forget(a);
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        if (d->verdict != EVENT_OK)
            continue;
        const char *source = batch_str(b, d->source);
        if (!rules_watch(a->rules, source))
            continue;
        if (a->pf && !prefilter_maybe(a->pf, source, batch_str(b, d->body), d->body_len)) {
            a->stats.skipped++;
            continue;
        }
        json_tokener_reset(a->tok);
        json_object *event = json_tokener_parse_ex(a->tok, batch_str(b, d->body), (int)d->body_len);
        if (!event)
            continue; /* cannot happen: the body passed validation */
        a->stats.parsed++;
        current cur = {.a = a, .b = b, .delivery = i};
        int rc = rules_evaluate(a->rules, source, event, on_fired, &cur);
        json_object_put(event);
        if (rc < 0) {
            snprintf(err, errlen, "out of memory evaluating rules");
            forget(a);
            return -1;
        }
    }
    return (int)a->count;
}

/* Appends n bytes; a failure is kept in t->failed and checked once the
 * literal is complete. */
static void put(buf *t, const char *s, size_t n)
{
    (void)buf_append(t, s, n);
}

/* Appends one element to an array literal being built ("{" already in):
 * double-quoted, with its quotes and backslashes escaped, so any text is
 * one element. */
static void put_element(buf *t, const char *s)
{
    put(t, t->len > 1 ? ",\"" : "\"", t->len > 1 ? 2 : 1);
    for (const char *p = s; *p; p++) {
        size_t run = strcspn(p, "\"\\");
        put(t, p, run);
        p += run;
        if (!*p)
            break;
        put(t, "\\", 1);
        put(t, p, 1);
    }
    put(t, "\"", 1);
}

int alerting_record(alerting *a, PGconn *db, const batch *b, char *err, size_t errlen)
{
    size_t nb = sizeof a->arrays / sizeof *a->arrays, n = 0;
    for (size_t j = 0; j < nb; j++) {
        buf_clear(&a->arrays[j]);
        put(&a->arrays[j], "{", 1);
    }
    for (size_t i = 0; i < a->count; i++) {
        kept *k = &a->alerts[i];
        delivery_outcome o = b->items[k->delivery].outcome;
        k->state = KEPT_PENDING;
        if (o != OUTCOME_STORED && o != OUTCOME_DUPLICATE)
            continue; /* its event was refused: no alert */
        char window[32];
        snprintf(window, sizeof window, "%ld", k->window_s);
        const char *values[9] = {k->alert_id, k->rule,      k->severity, k->source,     k->msg_id,
                                 k->message,  k->dedup_key, window,      k->routing_key};
        for (size_t j = 0; j < nb; j++)
            put_element(&a->arrays[j], values[j]);
        n++;
    }
    if (n == 0)
        return 0;
    const char *params[9];
    for (size_t j = 0; j < nb; j++) {
        put(&a->arrays[j], "}", 1);
        if (a->arrays[j].failed) {
            snprintf(err, errlen, "out of memory recording alerts");
            return -1;
        }
        params[j] = a->arrays[j].data;
    }
    PGresult *r = PQexecParams(db, record_sql, 9, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* The hint only where it helps: a function or table missing. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int missing = state && (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0);
        pg_error(db, r, err, errlen,
                 missing ? "recording alerts (has sluice-setup run on this database?)"
                         : "recording alerts");
        PQclear(r);
        return -1;
    }
    /* Row n (1-based) is the n-th alert sent, in the order kept. */
    size_t sent = 0, row = 0;
    int rows = PQntuples(r);
    for (size_t i = 0; i < a->count && row < (size_t)rows; i++) {
        kept *k = &a->alerts[i];
        delivery_outcome o = b->items[k->delivery].outcome;
        if (o != OUTCOME_STORED && o != OUTCOME_DUPLICATE)
            continue;
        sent++;
        if (strtoul(PQgetvalue(r, (int)row, 0), NULL, 10) != sent)
            break;
        const char *state = PQgetvalue(r, (int)row, 1);
        row++;
        k->state = strcmp(state, "raised") == 0       ? KEPT_RAISED
                   : strcmp(state, "suppressed") == 0 ? KEPT_SUPPRESSED
                                                      : KEPT_HANDLED;
    }
    PQclear(r);
    if (row != n) {
        snprintf(err, errlen, "recording alerts: %zu states for %zu alerts", row, n);
        return -1;
    }
    return 0;
}

static int connect_broker(alerting *a, char *err, size_t errlen)
{
    if (a->conn)
        return 0;
    a->conn = mq_connect_any(a->urls, &a->next_url, a->heartbeat_s, 5000, err, errlen);
    if (!a->conn || publisher_attach(a->pub, a->conn, err, errlen) != 0)
        return -1;
    return 0;
}

static int publish(alerting *a, const kept *k, char *err, size_t errlen)
{
    alert al = {.alert_id = k->alert_id,
                .rule = k->rule,
                .severity = k->severity,
                .source = k->source,
                .msg_id = k->msg_id,
                .message = k->message,
                .dedup_key = k->dedup_key,
                .raised_at_us = now_us()};
    size_t len = 0;
    char *text = alert_encode(&al, &len);
    if (!text)
        return snprintf(err, errlen, "out of memory"), -1;
    pub_message msg = {.routing_key = k->routing_key,
                       .message_id = k->alert_id,
                       .source = k->source,
                       .body = text,
                       .body_len = len,
                       .produced_at_us = al.raised_at_us};
    int rc = publisher_publish(a->pub, &msg, err, errlen);
    free(text);
    return rc;
}

int alerting_publish(alerting *a, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < a->count && rc == 0; i++) {
        const kept *k = &a->alerts[i];
        if (k->state == KEPT_SUPPRESSED) {
            a->stats.suppressed++;
            if (a->count_fn)
                a->count_fn(a->count_arg, k->source_index, 1);
            log_debug("alert suppressed by its dedup window rule=%s dedup_key=\"%s\" msg_id=%s",
                      k->rule, k->dedup_key, k->msg_id);
            continue;
        }
        if (k->state != KEPT_RAISED)
            continue;
        rc = connect_broker(a, err, errlen);
        if (rc == 0)
            rc = publish(a, k, err, errlen);
        if (rc != 0)
            break;
        /* Counted once taken by the publisher, as close to the commit
         * that made the alert visible as can be (the confirms follow). */
        log_info("alert raised rule=%s severity=%s source=%s msg_id=%s", k->rule, k->severity,
                 k->source, k->msg_id);
        a->stats.raised++;
        if (a->count_fn)
            a->count_fn(a->count_arg, k->source_index, 0);
    }
    if (rc == 0 && publisher_outstanding(a->pub) > 0) {
        int drained = publisher_drain(a->pub, CONFIRM_TIMEOUT_MS, err, errlen);
        if (drained == 1)
            snprintf(err, errlen, "alerts: no confirm from the broker within %d ms",
                     CONFIRM_TIMEOUT_MS);
        rc = drained == 0 ? 0 : -1;
    }
    if (rc != 0)
        disconnect(a);
    forget(a);
    return rc;
}
