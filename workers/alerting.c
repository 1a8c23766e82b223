/*
 * alerting: see alerting.h.
 */
#include "alerting.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"
#include "mq.h"
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
};

static const char raise_sql[] = "SELECT sluice_raise_alert($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/* What the rules callback needs about the event being evaluated. */
typedef struct current {
    alerting *a;
    const char *source, *msg_id;
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

const alerting_stats *alerting_get_stats(const alerting *a)
{
    return &a->stats;
}

static int connect_all(alerting *a, char *err, size_t errlen)
{
    if (!a->db) {
        a->db = PQconnectdb(a->pg_dsn);
        PGresult *r = NULL;
        if (PQstatus(a->db) == CONNECTION_OK)
            r = PQprepare(a->db, "raise_alert", raise_sql, 9, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "alerts: PostgreSQL: %s (has sluice-setup applied sql/003?)",
                     PQerrorMessage(a->db));
            err[strcspn(err, "\n")] = '\0'; /* one log line */
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    if (!a->conn) {
        a->conn = mq_connect_any(a->urls, &a->next_url, a->heartbeat_s, 5000, err, errlen);
        if (!a->conn || publisher_attach(a->pub, a->conn, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int publish(alerting *a, const rule_match *m, const char *alert_id, const char *rk,
                   const current *cur)
{
    int64_t now = now_us();
    json_object *body = json_object_new_object();
    if (!body)
        return snprintf(cur->err, cur->errlen, "out of memory"), -1;
    json_object_object_add(body, "alert_id", json_object_new_string(alert_id));
    json_object_object_add(body, "rule", json_object_new_string(m->rule));
    json_object_object_add(body, "severity", json_object_new_string(m->severity));
    json_object_object_add(body, "source", json_object_new_string(cur->source));
    json_object_object_add(body, "msg_id", json_object_new_string(cur->msg_id));
    json_object_object_add(body, "message", json_object_new_string(m->message));
    json_object_object_add(body, "dedup_key", json_object_new_string(m->dedup_key));
    json_object_object_add(body, "raised_at_us", json_object_new_int64(now));
    size_t len = 0;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    pub_message msg = {.routing_key = rk,
                       .message_id = alert_id,
                       .source = cur->source,
                       .body = text,
                       .body_len = len,
                       .produced_at_us = now};
    int rc = publisher_publish(a->pub, &msg, cur->err, cur->errlen);
    json_object_put(body);
    return rc;
}

static int on_fired(rule_match *m, void *arg)
{
    current *cur = arg;
    alerting *a = cur->a;
    int rc = -1;
    char *alert_id = NULL, rk[128], window[32];
    size_t id_len = strlen(m->rule) + 1 + strlen(cur->msg_id) + 1;
    if (!(alert_id = malloc(id_len))) {
        snprintf(cur->err, cur->errlen, "out of memory");
        goto done;
    }
    snprintf(alert_id, id_len, "%s:%s", m->rule, cur->msg_id);
    snprintf(rk, sizeof rk, "alert.%s.%s", m->severity, m->rule);
    snprintf(window, sizeof window, "%ld", m->window_s);
    const char *params[9] = {alert_id,   m->rule,      m->severity, cur->source, cur->msg_id,
                             m->message, m->dedup_key, window,      rk};
    PGresult *r = PQexecPrepared(a->db, "raise_alert", 9, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(cur->err, cur->errlen, "recording alert %s: %s", alert_id,
                 PQresultErrorMessage(r));
        cur->err[strcspn(cur->err, "\n")] = '\0';
        PQclear(r);
        goto done;
    }
    char state[32];
    snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (strcmp(state, "suppressed") == 0) {
        a->stats.suppressed++;
        log_debug("alert suppressed by its dedup window rule=%s dedup_key=\"%s\" msg_id=%s",
                  m->rule, m->dedup_key, cur->msg_id);
        rc = 0;
    } else if (strcmp(state, "raised") == 0) {
        rc = publish(a, m, alert_id, rk, cur);
        if (rc == 0)
            log_info("alert raised rule=%s severity=%s source=%s msg_id=%s", m->rule, m->severity,
                     cur->source, cur->msg_id);
        a->stats.raised++;
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
    if (!ok) {
        snprintf(err, errlen, "alerts: %s: %s", command, PQerrorMessage(a->db));
        err[strcspn(err, "\n")] = '\0';
    }
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
