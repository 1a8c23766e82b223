/*
 * status: the pipeline on one screen, or as one JSON object (--json).
 *
 * Per source: its queue (ready messages and consumers from AMQP, exact;
 * publish and deliver rates from the management API, which samples them), the last event stored
 * (how long ago, and its end-to-end lag: stored_at - produced_at) and the events stored in the last
 * hour; then ingest_errors by source and reason, the dead letters by source and reason and the
 * alerts by state.
 *
 * Dead letters carry their reason in a header, which neither the
 * management API nor a queue declaration shows: status reads up to
 * dead_scan_max of them with basic.get and hands them all back
 * unacknowledged (requeued in place: sluice.dead keeps its order).
 *
 * Each part that cannot be read is reported on stderr and left out; the
 * exit code is then 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ctl.h"
#include "db.h"
#include "deadmsg.h"
#include "event.h"
#include "log.h"
#include "mgmt.h"

typedef struct source_row {
    const char *name;
    mgmt_queue q;
    int have_q;
    char last_stored[40]; /* "" if none */
    double age_s, lag_s;  /* < 0: unknown */
    long long stored_1h;
} source_row;

typedef struct tally {
    char source[65], reason[256];
    long long count;
} tally;

typedef struct status {
    source_row *rows;
    size_t nrows;
    int have_db;
    tally *errors; /* ingest_errors by source and reason */
    size_t nerrors;
    tally *alerts; /* by state, in .reason */
    size_t nalerts;
    int have_dead;
    long dead_total, dead_scanned;
    tally *dead;
    size_t ndead;
    int failures;
} status;

static int tally_add(tally **t, size_t *n, const char *source, const char *reason, long long count)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*t)[i].source, source) == 0 && strcmp((*t)[i].reason, reason) == 0) {
            (*t)[i].count += count;
            return 0;
        }
    }
    tally *grown = realloc(*t, (*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *t = grown;
    tally *e = &grown[(*n)++];
    snprintf(e->source, sizeof e->source, "%s", source);
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    e->count = count;
    return 0;
}

static void part_failed(status *st, const char *what, const char *err)
{
    fprintf(stderr, "sluice-ctl: status: %s: %s\n", what, err);
    st->failures++;
}

/* The vhost of the first AMQP URL ("/" unless it names another). */
static void amqp_vhost(const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "/");
    char *copy = strdup(url);
    struct amqp_connection_info info;
    if (copy && amqp_parse_url(copy, &info) == AMQP_STATUS_OK && info.vhost)
        snprintf(out, cap, "%s", info.vhost);
    free(copy);
}

static void read_queues(const ctl_env *env, status *st)
{
    const ctl_settings *s = env->s;
    char vhost[256], err[1024];
    amqp_vhost(env->urls.items[0], vhost, sizeof vhost);
    mgmt *m = mgmt_new(s->mgmt_url, s->mgmt_user, s->mgmt_password, vhost, &env->mgmt_tls, err,
                       sizeof err);
    if (!m) {
        part_failed(st, "queues", err);
        return;
    }
    for (size_t i = 0; i < st->nrows; i++) {
        char queue[128];
        snprintf(queue, sizeof queue, SLUICE_QUEUE_PREFIX "%s", st->rows[i].name);
        if (mgmt_queue_get(m, queue, &st->rows[i].q, err, sizeof err) != 0) {
            part_failed(st, "queues", err);
            break;
        }
        st->rows[i].have_q = 1;
    }
    mgmt_free(m);
}

static const char per_source_sql[] =
    "SELECT s.source, to_char(e.stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " extract(epoch FROM now() - e.stored_at), extract(epoch FROM e.stored_at - e.produced_at),"
    " (SELECT count(*) FROM events x WHERE x.source = s.source"
    "  AND x.stored_at >= now() - interval '1 hour')"
    " FROM unnest($1::text[]) WITH ORDINALITY AS s(source, n)"
    " LEFT JOIN LATERAL (SELECT stored_at, produced_at FROM events"
    "  WHERE source = s.source AND produced_at IS NOT NULL"
    "  ORDER BY produced_at DESC LIMIT 1) e ON true"
    " ORDER BY s.n";

static void read_warehouse(const ctl_env *env, status *st)
{
    char err[1024];
    PGconn *db = pg_connect(env->s->pg_dsn, err, sizeof err);
    if (!db) {
        part_failed(st, "warehouse", err);
        return;
    }
    /* The source list as a text[] literal: names are [a-z0-9_-], nothing
     * to quote. */
    size_t cap = 3;
    for (size_t i = 0; i < st->nrows; i++)
        cap += strlen(st->rows[i].name) + 1;
    char *list = malloc(cap);
    PGresult *r = NULL;
    if (!list) {
        part_failed(st, "warehouse", "out of memory");
        goto done;
    }
    strcpy(list, "{");
    for (size_t i = 0; i < st->nrows; i++) {
        strcat(list, st->rows[i].name);
        strcat(list, i + 1 < st->nrows ? "," : "");
    }
    strcat(list, "}");
    const char *params[1] = {list};
    r = db_query(db, PGRES_TUPLES_OK, "reading events", per_source_sql, 1, params, err, sizeof err);
    if (!r) {
        part_failed(st, "warehouse", err);
        goto done;
    }
    for (int i = 0; i < PQntuples(r) && (size_t)i < st->nrows; i++) {
        source_row *row = &st->rows[i];
        snprintf(row->last_stored, sizeof row->last_stored, "%s", PQgetvalue(r, i, 1));
        row->age_s = PQgetisnull(r, i, 2) ? -1 : atof(PQgetvalue(r, i, 2));
        row->lag_s = PQgetisnull(r, i, 3) ? -1 : atof(PQgetvalue(r, i, 3));
        row->stored_1h = atoll(PQgetvalue(r, i, 4));
    }
    PQclear(r);
    r = db_query(db, PGRES_TUPLES_OK, "reading ingest_errors",
                 "SELECT source, reason, count(*) FROM ingest_errors GROUP BY 1, 2 ORDER BY 1, 2",
                 0, NULL, err, sizeof err);
    if (!r) {
        part_failed(st, "warehouse", err);
        goto done;
    }
    for (int i = 0; i < PQntuples(r); i++)
        tally_add(&st->errors, &st->nerrors, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                  atoll(PQgetvalue(r, i, 2)));
    PQclear(r);
    r = db_query(db, PGRES_TUPLES_OK, "reading alerts",
                 "SELECT state, count(*) FROM alerts GROUP BY 1 ORDER BY 1", 0, NULL, err,
                 sizeof err);
    if (!r) {
        part_failed(st, "warehouse", err);
        goto done;
    }
    for (int i = 0; i < PQntuples(r); i++)
        tally_add(&st->alerts, &st->nalerts, "", PQgetvalue(r, i, 0), atoll(PQgetvalue(r, i, 1)));
    st->have_db = 1;
done:
    PQclear(r);
    free(list);
    PQfinish(db);
}

/* Ready messages and consumers of the source queues as the broker sees
 * them now (the management API's figures are samples, seconds old), then
 * up to dead_scan_max dead letters, read without acknowledging any and all
 * handed back. */
static void read_broker(const ctl_env *env, status *st)
{
    char err[1024];
    size_t next = 0;
    mq_conn *c = mq_connect_any(&env->urls, &next, (int)env->s->heartbeat, 5000, err, sizeof err);
    if (!c) {
        part_failed(st, "RabbitMQ", err);
        return;
    }
    amqp_connection_state_t a = mq_amqp(c);
    for (size_t i = 0; i < st->nrows; i++) {
        mgmt_queue *q = &st->rows[i].q;
        if (!st->rows[i].have_q || !q->found)
            continue; /* a passive declare of a missing queue closes the channel */
        char name[128];
        snprintf(name, sizeof name, SLUICE_QUEUE_PREFIX "%s", st->rows[i].name);
        amqp_queue_declare_ok_t *ok = amqp_queue_declare(a, MQ_CHANNEL, amqp_cstring_bytes(name), 1,
                                                         0, 0, 0, amqp_empty_table);
        if (mq_check(c, amqp_get_rpc_reply(a), name, err, sizeof err) != 0) {
            part_failed(st, "RabbitMQ", err);
            mq_close(c);
            return;
        }
        long unacked = q->messages - q->ready; /* only the API knows; sampled */
        q->ready = (long)ok->message_count;
        q->consumers = (long)ok->consumer_count;
        q->messages = q->ready + (unacked > 0 ? unacked : 0);
    }
    amqp_bytes_t queue = amqp_cstring_bytes(SLUICE_QUEUE_DEAD);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(a, MQ_CHANNEL, queue, 1, 0, 0, 0, amqp_empty_table);
    if (mq_check(c, amqp_get_rpc_reply(a), "looking up " SLUICE_QUEUE_DEAD, err, sizeof err) != 0)
        goto fail;
    st->dead_total = (long)ok->message_count;
    uint64_t last_tag = 0;
    while (st->dead_scanned < env->s->dead_scan_max && st->dead_scanned < st->dead_total) {
        amqp_basic_get(a, MQ_CHANNEL, queue, 0);
        amqp_rpc_reply_t reply = amqp_get_rpc_reply(a);
        if (mq_check(c, reply, "basic.get from " SLUICE_QUEUE_DEAD, err, sizeof err) != 0)
            goto fail;
        if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break;
        amqp_basic_get_ok_t *got = reply.reply.decoded;
        last_tag = got->delivery_tag;
        char rk[300];
        snprintf(rk, sizeof rk, "%.*s", (int)got->routing_key.len,
                 (const char *)got->routing_key.bytes);
        amqp_message_t msg;
        reply = amqp_read_message(a, MQ_CHANNEL, &msg, 0);
        if (mq_check(c, reply, "reading a dead letter", err, sizeof err) != 0)
            goto fail;
        dead_info info;
        dead_info_read(amqp_cstring_bytes(rk), &msg.properties, &info);
        amqp_destroy_message(&msg);
        tally_add(&st->dead, &st->ndead, info.source[0] ? info.source : "-", info.reason, 1);
        st->dead_scanned++;
    }
    if (last_tag && amqp_basic_nack(a, MQ_CHANNEL, last_tag, 1, 1) != AMQP_STATUS_OK) {
        snprintf(err, sizeof err, "handing the dead letters back");
        goto fail;
    }
    st->have_dead = 1;
    mq_close(c);
    return;
fail:
    part_failed(st, "dead letters", err); /* the broker takes back what was read */
    mq_close(c);
}

static void fmt_seconds(double s, char *out, size_t cap)
{
    if (s < 0)
        snprintf(out, cap, "-");
    else if (s < 1)
        snprintf(out, cap, "%.0fms", s * 1000);
    else if (s < 120)
        snprintf(out, cap, "%.1fs", s);
    else if (s < 7200)
        snprintf(out, cap, "%.0fm", s / 60);
    else if (s < 172800)
        snprintf(out, cap, "%.0fh", s / 3600);
    else
        snprintf(out, cap, "%.0fd", s / 86400);
}

static void print_table(const ctl_env *env, const status *st)
{
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    printf("sluice status at %s\n\n", when);
    printf("%-16s %9s %5s %9s %9s  %-19s %8s %8s %10s\n", "SOURCE", "READY", "CONS", "IN/s",
           "OUT/s", "LAST STORED (UTC)", "AGO", "E2E LAG", "STORED 1h");
    for (size_t i = 0; i < st->nrows; i++) {
        const source_row *r = &st->rows[i];
        char queued[16] = "?", cons[16] = "?", in[16] = "?", out[16] = "?", ago[16] = "?",
             lag[16] = "?", stored[24] = "?";
        if (r->have_q && !r->q.found)
            snprintf(queued, sizeof queued, "no queue");
        else if (r->have_q) {
            snprintf(queued, sizeof queued, "%ld", r->q.ready);
            snprintf(cons, sizeof cons, "%ld", r->q.consumers);
            snprintf(in, sizeof in, "%.1f", r->q.publish_rate);
            snprintf(out, sizeof out, "%.1f", r->q.deliver_rate);
        }
        if (st->have_db) {
            fmt_seconds(r->age_s, ago, sizeof ago);
            fmt_seconds(r->lag_s, lag, sizeof lag);
            snprintf(stored, sizeof stored, "%lld", r->stored_1h);
        }
        printf("%-16s %9s %5s %9s %9s  %-19s %8s %8s %10s\n", r->name, queued, cons, in, out,
               st->have_db ? (r->last_stored[0] ? r->last_stored : "never") : "?", ago, lag,
               stored);
    }
    printf("\ningest_errors:");
    if (!st->have_db)
        printf(" ?");
    else if (!st->nerrors)
        printf(" none");
    for (size_t i = 0; i < st->nerrors; i++)
        printf("%s %s/%s %lld", i ? "," : "", st->errors[i].source, st->errors[i].reason,
               st->errors[i].count);
    printf("\ndead letters:");
    if (!st->have_dead)
        printf(" ?");
    else {
        printf(" %ld in " SLUICE_QUEUE_DEAD, st->dead_total);
        if (st->dead_scanned < st->dead_total)
            printf(" (first %ld read)", st->dead_scanned);
        for (size_t i = 0; i < st->ndead; i++)
            printf("%s %s/%s %lld", i ? "," : ":", st->dead[i].source, st->dead[i].reason,
                   st->dead[i].count);
    }
    printf("\nalerts:");
    if (!st->have_db)
        printf(" ?");
    else if (!st->nalerts)
        printf(" none");
    for (size_t i = 0; i < st->nalerts; i++)
        printf("%s %s %lld", i ? "," : "", st->alerts[i].reason, st->alerts[i].count);
    printf("\n");
    (void)env;
}

static json_object *tally_json(const tally *t, size_t n, const char *source_key,
                               const char *reason_key)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        if (source_key)
            json_object_object_add(o, source_key, json_object_new_string(t[i].source));
        json_object_object_add(o, reason_key, json_object_new_string(t[i].reason));
        json_object_object_add(o, "count", json_object_new_int64(t[i].count));
        json_object_array_add(a, o);
    }
    return a;
}

/* Seconds, or null when unknown. */
static json_object *seconds_json(double s)
{
    return s < 0 ? NULL : json_object_new_double(s);
}

static void print_json(const status *st)
{
    json_object *doc = json_object_new_object();
    json_object *sources = json_object_new_array();
    for (size_t i = 0; i < st->nrows; i++) {
        const source_row *r = &st->rows[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "source", json_object_new_string(r->name));
        if (r->have_q) {
            json_object *q = json_object_new_object();
            json_object_object_add(q, "exists", json_object_new_boolean(r->q.found));
            json_object_object_add(q, "messages", json_object_new_int64(r->q.messages));
            json_object_object_add(q, "ready", json_object_new_int64(r->q.ready));
            json_object_object_add(q, "consumers", json_object_new_int64(r->q.consumers));
            json_object_object_add(q, "publish_rate", json_object_new_double(r->q.publish_rate));
            json_object_object_add(q, "deliver_rate", json_object_new_double(r->q.deliver_rate));
            json_object_object_add(o, "queue", q);
        }
        if (st->have_db) {
            json_object_object_add(o, "last_stored_at",
                                   r->last_stored[0] ? json_object_new_string(r->last_stored)
                                                     : NULL);
            json_object_object_add(o, "last_stored_age_s", seconds_json(r->age_s));
            json_object_object_add(o, "end_to_end_lag_s", seconds_json(r->lag_s));
            json_object_object_add(o, "stored_last_hour", json_object_new_int64(r->stored_1h));
        }
        json_object_array_add(sources, o);
    }
    json_object_object_add(doc, "sources", sources);
    if (st->have_db) {
        json_object_object_add(doc, "ingest_errors",
                               tally_json(st->errors, st->nerrors, "source", "reason"));
        json_object_object_add(doc, "alerts", tally_json(st->alerts, st->nalerts, NULL, "state"));
    }
    if (st->have_dead) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "messages", json_object_new_int64(st->dead_total));
        json_object_object_add(d, "read", json_object_new_int64(st->dead_scanned));
        json_object_object_add(d, "by_reason", tally_json(st->dead, st->ndead, "source", "reason"));
        json_object_object_add(doc, "dead_letters", d);
    }
    printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(doc);
}

int ctl_status(const ctl_env *env)
{
    status st = {0};
    st.nrows = env->sources.count;
    st.rows = calloc(st.nrows, sizeof *st.rows);
    if (!st.rows) {
        log_error("out of memory");
        return 1;
    }
    for (size_t i = 0; i < st.nrows; i++) {
        st.rows[i].name = env->sources.items[i];
        st.rows[i].age_s = st.rows[i].lag_s = -1;
    }
    read_queues(env, &st);
    read_warehouse(env, &st);
    read_broker(env, &st);
    if (env->s->json)
        print_json(&st);
    else
        print_table(env, &st);
    int rc = st.failures ? 1 : 0;
    free(st.rows);
    free(st.errors);
    free(st.alerts);
    free(st.dead);
    return rc;
}
