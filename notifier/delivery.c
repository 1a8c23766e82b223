/*
 * delivery: see delivery.h. The destinations live in a growing array (a
 * handful: one per chat, webhook and log the routes name); the array is
 * guarded by `lock` because /metrics reads it from the HTTP thread.
 */
#include "delivery.h"

#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "log.h"
#include "util.h"

struct deliverer {
    const delivery_config *cfg;
    dest_shared shared;
    pthread_mutex_t lock; /* guards dests and ndests */
    destination **dests;
    size_t ndests, cap;
    delivery_stats stats; /* written by the consuming thread only */
    ledger_plans plans;   /* alerts taken and not planned yet (consuming thread only) */
};

deliverer *deliverer_new(const delivery_config *cfg, const strlist *urls, int heartbeat_s)
{
    deliverer *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = cfg;
    d->shared.cfg = &cfg->dest;
    d->shared.group = cfg->group;
    pthread_mutex_init(&d->shared.lock, NULL);
    pthread_mutex_init(&d->lock, NULL);
    bucket_init(&d->shared.total, (double)cfg->rate_total, 1, mono_us());
    if (!(d->shared.dead = deadletter_new(urls, heartbeat_s))) {
        deliverer_free(d);
        return NULL;
    }
    return d;
}

void deliverer_stop(deliverer *d)
{
    if (!d)
        return;
    __atomic_store_n(&d->shared.stopping, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->ndests; i++)
        destination_stop(d->dests[i]);
    pthread_mutex_unlock(&d->lock);
}

void deliverer_free(deliverer *d)
{
    if (!d)
        return;
    deliverer_stop(d);
    for (size_t i = 0; i < d->ndests; i++)
        destination_free(d->dests[i]);
    free(d->dests);
    ledger_plans_free(&d->plans);
    deadletter_free(d->shared.dead);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->shared.lock);
    free(d);
}

/* The destination called name, started if it is not yet. Consuming thread
 * only (the one that adds). Returns 0, or -1 with err. */
static int serve(deliverer *d, const char *name, const channel_class *cls, const char *target,
                 char *err, size_t errlen)
{
    for (size_t i = 0; i < d->ndests; i++) {
        if (strcmp(destination_name(d->dests[i]), name) == 0)
            return 0;
    }
    if (d->ndests == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        destination **grown = realloc(d->dests, cap * sizeof *grown);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        pthread_mutex_lock(&d->lock);
        d->dests = grown;
        d->cap = cap;
        pthread_mutex_unlock(&d->lock);
    }
    destination *t = destination_start(&d->shared, name, cls, target, err, errlen);
    if (!t)
        return -1;
    pthread_mutex_lock(&d->lock);
    d->dests[d->ndests++] = t;
    pthread_mutex_unlock(&d->lock);
    log_info("destination started channel=%s", name);
    return 0;
}

int deliverer_resume(deliverer *d, ledger *l, char *err, size_t errlen)
{
    strlist open;
    if (ledger_open_channels(l, &open, err, errlen) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < open.count && rc == 0; i++) {
        char cls_name[64];
        const char *name = open.items[i], *colon = strchr(name, ':');
        size_t n = colon ? (size_t)(colon - name) : strlen(name);
        snprintf(cls_name, sizeof cls_name, "%.*s", (int)n, name);
        const channel_class *cls = channel_find(cls_name);
        char why[512];
        if (!cls || (cls->check && cls->check(d->cfg->dest.channels, colon ? colon + 1 : NULL, why,
                                              sizeof why) != 0)) {
            log_warn("alerts wait for a destination this notifier cannot serve channel=%s "
                     "reason=\"%s\"",
                     name, cls ? why : "no such channel");
            continue;
        }
        rc = serve(d, name, cls, colon ? colon + 1 : NULL, err, errlen);
    }
    strlist_free(&open);
    return rc;
}

void deliverer_wake_all(deliverer *d)
{
    for (size_t i = 0; i < d->ndests; i++)
        destination_wake(d->dests[i]);
}

void deliverer_set_grouping(deliverer *d, const grouping *g)
{
    pthread_mutex_lock(&d->shared.lock);
    d->shared.group = *g;
    pthread_mutex_unlock(&d->shared.lock);
    deliverer_wake_all(d);
}

static void bump(uint64_t *field)
{
    __atomic_add_fetch(field, 1, __ATOMIC_RELAXED);
}

/* Dead-letters a message that is no alert sluice can take, with the
 * reason: what the database would refuse must not come back forever.
 * DELIVERY_DONE once sluice.dead has it, else DELIVERY_HELD (err). */
static delivery_result refuse(deliverer *d, const char *rk, const char *body, size_t len,
                              const char *reason, char *err, size_t errlen)
{
    dead_letter dl = {
        .routing_key = rk, .message_id = "-", .body = body, .len = len, .reason = reason};
    pthread_mutex_lock(&d->shared.lock);
    int rc = deadletter_publish(d->shared.dead, &dl, err, errlen);
    pthread_mutex_unlock(&d->shared.lock);
    if (rc != 0)
        return DELIVERY_HELD;
    bump(&d->stats.dead_lettered);
    log_warn("message dead-lettered to sluice.dead reason=\"%s\" bytes=%zu", reason, len);
    return DELIVERY_DONE;
}

delivery_result deliver(deliverer *d, const routes *rt, const char *rk, const char *body,
                        size_t len, char *err, size_t errlen)
{
    delivery_result res = DELIVERY_DONE;
    alert a;
    alert_doc *doc = NULL;
    bump(&d->stats.alerts);
    /* Not decoded: json-c's tree of a large text is several times its size. */
    if (d->cfg->max_alert_bytes && len > d->cfg->max_alert_bytes)
        return refuse(d, rk, body, len, ALERT_TOO_LARGE, err, errlen);
    if (alert_decode(body, len, &a, &doc) != 0) {
        alert_doc_free(doc);
        return refuse(d, rk, body, len, ALERT_DECODE_ERROR, err, errlen);
    }
    /* A foreign alert's long message is cut as a worker cuts its own. */
    char *cut = NULL;
    if (strlen(a.message) > ALERT_MESSAGE_MAX) {
        /* One byte over the bound, so alert_cut_text sees it is too long. */
        if (!(cut = strndup(a.message, ALERT_MESSAGE_MAX + 1))) {
            alert_doc_free(doc);
            snprintf(err, errlen, "out of memory");
            return DELIVERY_ERROR;
        }
        alert_cut_text(cut, ALERT_MESSAGE_MAX);
        a.message = cut;
    }
    const route *r = routes_match(rt, a.severity, a.rule);
    static const route log_only = {
        .severity = "*", .rule = "*", .channels = {{.cls = &log_channel}}, .nchannels = 1};
    if (!r)
        r = &log_only;
    pthread_mutex_lock(&d->shared.lock);
    grouping g = d->shared.group;
    pthread_mutex_unlock(&d->shared.lock);
    char names[ROUTES_MAX_CHANNELS * 160] = "", grouped[ROUTES_MAX_CHANNELS * 2 + 1] = "";
    char name[160], key[256];
    grouping_key(&g, &a, key, sizeof key);
    for (size_t i = 0; i < r->nchannels && res == DELIVERY_DONE; i++) {
        const channel *c = &r->channels[i];
        channel_name(c, d->cfg->dest.channels, name, sizeof name);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "," : "", name);
        snprintf(grouped + strlen(grouped), sizeof grouped - strlen(grouped), "%s%c", i ? "," : "",
                 c->cls->send_text && grouping_on(&g) ? '1' : '0');
        if (serve(d, name, c->cls, channel_target(c, d->cfg->dest.channels), err, errlen) != 0)
            res = DELIVERY_ERROR;
    }
    if (res == DELIVERY_DONE && ledger_plans_add(&d->plans, &a, names, grouped, key) != 0) {
        snprintf(err, errlen, "out of memory");
        res = DELIVERY_ERROR;
    } else if (res == DELIVERY_DONE) {
        log_debug("alert taken alert_id=%s channels=%s group=\"%s\"", a.alert_id, names, key);
    }
    free(cut);
    alert_doc_free(doc);
    return res;
}

void deliverer_forget(deliverer *d)
{
    ledger_plans_clear(&d->plans);
}

int deliverer_plan(deliverer *d, ledger *l, char *err, size_t errlen)
{
    const ledger_plans *p = &d->plans;
    int rc = ledger_plan_batch(l, &d->plans, err, errlen);
    for (size_t i = 0; rc == 0 && i < p->ids.count; i++) {
        if (p->fresh[i] == 0) {
            bump(&d->stats.copies);
            log_info("alert already delivered or under way, not sent again alert_id=%s",
                     p->ids.items[i]);
        } else {
            bump(&d->stats.planned);
        }
    }
    deliverer_forget(d);
    return rc;
}

const delivery_stats *deliverer_stats(const deliverer *d)
{
    return &d->stats;
}

/* Prometheus label values escape \ " and newlines. */
static void label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out);
        if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

void deliverer_render_metrics(deliverer *d, FILE *out)
{
    static const struct {
        const char *name, *type, *help;
    } per_dest[] = {
        {"sluice_notifier_alerts_delivered_total", "counter",
         "Alerts delivered, by channel and destination (a grouped message counts each alert)"},
        {"sluice_notifier_alerts_failed_total", "counter",
         "Alerts not delivered (refused, attempts exhausted or interrupted), by destination"},
        {"sluice_notifier_messages_sent_total", "counter",
         "Messages sent (one per group, or per alert where not grouped), by destination"},
        {"sluice_notifier_requests_total", "counter",
         "Requests that succeeded (a long message is split into several), by destination"},
        {"sluice_notifier_retries_total", "counter",
         "Attempts that failed and are retried (429, 5xx, network), by destination"},
        {"sluice_notifier_backlog", "gauge",
         "Deliveries waiting in the outbox (pending, sending or retrying), by destination"},
    };
    uint64_t alerts = __atomic_load_n(&d->stats.alerts, __ATOMIC_RELAXED);
    uint64_t copies = __atomic_load_n(&d->stats.copies, __ATOMIC_RELAXED);
    uint64_t dead = __atomic_load_n(&d->stats.dead_lettered, __ATOMIC_RELAXED);
    fprintf(out,
            "# HELP sluice_notifier_alerts_received_total Messages taken from sluice.q.notifier\n"
            "# TYPE sluice_notifier_alerts_received_total counter\n"
            "sluice_notifier_alerts_received_total %llu\n"
            "# HELP sluice_notifier_alerts_copies_total Alerts received again that were already "
            "planned (not sent again)\n"
            "# TYPE sluice_notifier_alerts_copies_total counter\n"
            "sluice_notifier_alerts_copies_total %llu\n"
            "# HELP sluice_notifier_undecodable_total Messages that were no alert, dead-lettered\n"
            "# TYPE sluice_notifier_undecodable_total counter\n"
            "sluice_notifier_undecodable_total %llu\n",
            (unsigned long long)alerts, (unsigned long long)copies, (unsigned long long)dead);
    pthread_mutex_lock(&d->lock);
    size_t n = d->ndests;
    dest_counts *counts = calloc(n ? n : 1, sizeof *counts);
    for (size_t i = 0; counts && i < n; i++)
        destination_counts(d->dests[i], &counts[i]);
    for (size_t m = 0; counts && m < sizeof per_dest / sizeof *per_dest; m++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", per_dest[m].name, per_dest[m].help,
                per_dest[m].name, per_dest[m].type);
        for (size_t i = 0; i < n; i++) {
            const dest_counts *c = &counts[i];
            long long v = m == 0   ? (long long)c->delivered
                          : m == 1 ? (long long)c->failed
                          : m == 2 ? (long long)c->messages
                          : m == 3 ? (long long)c->parts
                          : m == 4 ? (long long)c->retries
                                   : c->backlog;
            if (m == 5 && v < 0)
                continue;
            fprintf(out, "%s{channel=\"", per_dest[m].name);
            label(out, destination_class(d->dests[i])->name);
            fputs("\",destination=\"", out);
            label(out, destination_name(d->dests[i]));
            fprintf(out, "\"} %lld\n", v);
        }
    }
    pthread_mutex_unlock(&d->lock);
    free(counts);
}
