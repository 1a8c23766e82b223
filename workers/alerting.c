/*
 * alerting: see alerting.h.
 */
#include "alerting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "event.h"
#include "log.h"
#include "mq.h"
#include "pg.h"
#include "publisher.h"

#define ALERT_WINDOW 1024        /* unconfirmed alerts in flight: a whole batch, usually */
#define CONFIRM_TIMEOUT_MS 30000 /* waiting for the broker's confirms */

struct alerting {
    const rule_set *rules;
    const strlist *urls;
    size_t next_url;
    char *pg_dsn;
    int heartbeat_s;
    PGconn *db;    /* NULL until needed or after a failure */
    mq_conn *conn; /* likewise; the publisher is attached to it */
    publisher *pub;
    json_tokener *tok;
    alerting_stats stats;
    alerting_count_fn count_fn; /* NULL: nobody to tell */
    void *count_arg;
};

static const pg_statement statements[] = {
    {"raise_alert", "SELECT sluice_raise_alert($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9},
};

/* What the rules callback needs about the event being evaluated. */
typedef struct current {
    alerting *a;
    const char *source, *msg_id;
    int source_index;
    char *err;
    size_t errlen;
} current;

alerting *alerting_new(const rule_set *rules, const strlist *amqp_urls, const char *pg_dsn,
                       int heartbeat_s)
{
    alerting *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->rules = rules;
    a->urls = amqp_urls;
    a->heartbeat_s = heartbeat_s;
    a->pg_dsn = strdup(pg_dsn);
    a->pub = publisher_new(SLUICE_EXCHANGE_ALERTS, "sluice-worker", ALERT_WINDOW);
    a->tok = json_tokener_new_ex(EVENT_MAX_DEPTH + 1); /* every event that passed validation */
    if (!a->pg_dsn || !a->pub || !a->tok) {
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
    PQfinish(a->db);
    a->db = NULL;
}

void alerting_free(alerting *a)
{
    if (!a)
        return;
    disconnect(a);
    publisher_free(a->pub);
    if (a->tok)
        json_tokener_free(a->tok);
    free(a->pg_dsn);
    free(a);
}

void alerting_set_rules(alerting *a, const rule_set *rules)
{
    a->rules = rules;
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

static int connect_all(alerting *a, char *err, size_t errlen)
{
    if (!a->db) {
        char why[900];
        if (!(a->db = pg_connect(a->pg_dsn, why, sizeof why))) {
            snprintf(err, errlen, "alerts: %s", why);
            return -1;
        }
        if (pg_prepare(a->db, statements, sizeof statements / sizeof *statements, why,
                       sizeof why) != 0) {
            snprintf(err, errlen, "alerts: %s (has sluice-setup applied sql/003?)", why);
            return -1;
        }
    }
    if (!a->conn) {
        a->conn = mq_connect_any(a->urls, &a->next_url, a->heartbeat_s, 5000, err, errlen);
        if (!a->conn || publisher_attach(a->pub, a->conn, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int publish(alerting *a, alert *al, const char *rk, const current *cur)
{
    al->raised_at_us = now_us();
    size_t len = 0;
    char *text = alert_encode(al, &len);
    if (!text)
        return snprintf(cur->err, cur->errlen, "out of memory"), -1;
    pub_message msg = {.routing_key = rk,
                       .message_id = al->alert_id,
                       .source = cur->source,
                       .body = text,
                       .body_len = len,
                       .produced_at_us = al->raised_at_us};
    int rc = publisher_publish(a->pub, &msg, cur->err, cur->errlen);
    free(text);
    return rc;
}

static int on_fired(rule_match *m, void *arg)
{
    current *cur = arg;
    alerting *a = cur->a;
    int rc = -1;
    char *alert_id = NULL, rk[128], window[32];
    if (!(alert_id = alert_make_id(m->rule, cur->msg_id))) {
        snprintf(cur->err, cur->errlen, "out of memory");
        goto done;
    }
    alert al = {.alert_id = alert_id,
                .rule = m->rule,
                .severity = m->severity,
                .source = cur->source,
                .msg_id = cur->msg_id,
                .message = m->message,
                .dedup_key = m->dedup_key};
    /* Rule names are at most 64 characters and severities short: it fits. */
    alert_routing_key(&al, rk, sizeof rk);
    snprintf(window, sizeof window, "%ld", m->window_s);
    const char *params[9] = {alert_id,   m->rule,      m->severity, cur->source, cur->msg_id,
                             m->message, m->dedup_key, window,      rk};
    PGresult *r = PQexecPrepared(a->db, "raise_alert", 9, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_error(a->db, r, cur->err, cur->errlen, "recording alert %s", alert_id);
        PQclear(r);
        goto done;
    }
    char state[32];
    snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (strcmp(state, "suppressed") == 0) {
        a->stats.suppressed++;
        if (a->count_fn)
            a->count_fn(a->count_arg, cur->source_index, 1);
        log_debug("alert suppressed by its dedup window rule=%s dedup_key=\"%s\" msg_id=%s",
                  m->rule, m->dedup_key, cur->msg_id);
        rc = 0;
    } else if (strcmp(state, "raised") == 0) {
        rc = publish(a, &al, rk, cur);
        if (rc == 0)
            log_info("alert raised rule=%s severity=%s source=%s msg_id=%s", m->rule, m->severity,
                     cur->source, cur->msg_id);
        a->stats.raised++;
        if (rc == 0 && a->count_fn)
            a->count_fn(a->count_arg, cur->source_index, 0);
    } else {
        rc = 0; /* raised before and already in the notifier's hands */
    }
done:
    free(alert_id);
    rules_match_clear(m);
    return rc;
}

/* Runs BEGIN, COMMIT or ROLLBACK on the alerts connection. */
static int transaction(alerting *a, const char *command, char *err, size_t errlen)
{
    PGresult *r = PQexec(a->db, command);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pg_error(a->db, r, err, errlen, "alerts: %s", command);
    PQclear(r);
    return ok ? 0 : -1;
}

int alerting_process(alerting *a, const batch *b, char *err, size_t errlen)
{
    int rc = connect_all(a, err, errlen);
    /* One transaction for the batch's alerts: one commit (and one WAL flush)
     * per batch instead of one per alert. A notifier that sees an alert
     * before the commit waits on its row; a rollback leaves the events
     * unacknowledged, so they are redelivered and raise the same alerts. */
    if (rc == 0)
        rc = transaction(a, "BEGIN", err, errlen);
    for (size_t i = 0; rc == 0 && i < b->count; i++) {
        const delivery *d = &b->items[i];
        if (d->verdict != EVENT_OK ||
            (d->outcome != OUTCOME_STORED && d->outcome != OUTCOME_DUPLICATE))
            continue;
        const char *source = batch_str(b, d->source);
        if (!rules_watch(a->rules, source))
            continue;
        json_tokener_reset(a->tok);
        json_object *event = json_tokener_parse_ex(a->tok, batch_str(b, d->body), (int)d->body_len);
        if (!event)
            continue; /* cannot happen: the body passed validation */
        current cur = {.a = a,
                       .source = source,
                       .msg_id = batch_str(b, d->msg_id),
                       .source_index = d->source_index,
                       .err = err,
                       .errlen = errlen};
        err[0] = '\0';
        if (rules_evaluate(a->rules, source, event, on_fired, &cur) < 0) {
            if (!err[0])
                snprintf(err, errlen, "out of memory evaluating rules");
            rc = -1;
        }
        json_object_put(event);
    }
    if (rc == 0)
        rc = transaction(a, "COMMIT", err, errlen);
    if (rc == 0 && publisher_outstanding(a->pub) > 0) {
        int drained = publisher_drain(a->pub, CONFIRM_TIMEOUT_MS, err, errlen);
        if (drained == 1)
            snprintf(err, errlen, "alerts: no confirm from the broker within %d ms",
                     CONFIRM_TIMEOUT_MS);
        rc = drained == 0 ? 0 : -1;
    }
    if (rc != 0)
        disconnect(a);
    return rc;
}
