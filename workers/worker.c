/*
 * worker: see worker.h.
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting.h"
#include "batch.h"
#include "consumer.h"
#include "deadletter.h"
#include "event.h"
#include "log.h"
#include "outage.h"
#include "retries.h"
#include "warehouse.h"

typedef struct worker_stats {
    uint64_t consumed, stored, duplicates, rejected, dead_lettered, batches;
} worker_stats;

typedef struct worker {
    const worker_config *cfg;
    const strlist *sources;
    metrics *m;
    size_t child;
    int *metric_index; /* source i of this worker -> its index in m */
    size_t *stored_by_source;
    size_t next_url;
    event_validator *validator;
    retries *failures;
    deadletter *dead;
    alerting *alerts;   /* NULL without rules */
    rule_set *reloaded; /* rules read again (at start, on SIGHUP), in force instead of
                           cfg->rules; owned */
    prefilter *pf;      /* built from the same text as the rules in force; owned */
    batch pending;
    int unrouted_index;     /* of sluice.q.unrouted in `sources`; -1 if not consumed */
    int dead_letter_failed; /* the session ended as an event could not be dead-lettered */
    worker_stats stats;
    int64_t started_us, next_stats_us;
} worker;

/* What a worker holds while connected; all NULL between connections. */
typedef struct session {
    warehouse *wh;
    mq_conn *conn;
    consumer *c;
    unsigned consumer_changes; /* as last shown in the metrics */
} session;

/* Shows in the metrics (/healthz, /metrics) which queues are consumed. */
static void show_consuming(worker *w, session *s)
{
    for (size_t i = 0; i < w->sources->count; i++)
        metrics_set_consuming(w->m, w->child, w->metric_index[i], consumer_active(s->c, i));
    s->consumer_changes = consumer_changes(s->c);
}

static void log_stats(worker *w, const char *what)
{
    double elapsed = (double)(mono_us() - w->started_us) / 1e6;
    log_info("%s consumed=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64
             " dead_lettered=%" PRIu64 " batches=%" PRIu64 " elapsed_s=%.1f rate=%.0f/s",
             what, w->stats.consumed, w->stats.stored, w->stats.duplicates, w->stats.rejected,
             w->stats.dead_lettered, w->stats.batches, elapsed,
             elapsed > 0 ? (double)w->stats.consumed / elapsed : 0.0);
}

static void count(worker *w, int source, count_kind kind, uint64_t n)
{
    if (n && source >= 0)
        metrics_count(w->m, w->child, w->metric_index[source], kind, n);
}

/* A delivery from sluice.q.unrouted was meant for a source that has no
 * queue: it is recorded (not stored) under the source its routing key
 * names, src.<source>, so that it can be found and replayed once the
 * queue exists; a key that names no source gives "unknown". */
static void mark_unrouted(incoming *in, event_verdict *v, char *source, size_t cap)
{
    size_t plen = strlen(SLUICE_ROUTING_PREFIX), n = in->routing_key_len;
    snprintf(source, cap, "unknown");
    if (n > plen && n - plen < cap && memcmp(in->routing_key, SLUICE_ROUTING_PREFIX, plen) == 0) {
        char name[80];
        if (n - plen < sizeof name) {
            memcpy(name, in->routing_key + plen, n - plen);
            name[n - plen] = '\0';
            if (source_name_valid(name))
                snprintf(source, cap, "%s", name);
        }
    }
    in->source = source;
    *v = EVENT_UNKNOWN_SOURCE;
}

static void count_alert(void *arg, int source, int suppressed)
{
    count(arg, source, suppressed ? COUNT_ALERTS_SUPPRESSED : COUNT_ALERTS_RAISED, 1);
}

/* Reads the rules file once and builds from that one text both the rules
 * and their prefilter, which must agree. Returns 0, or -1 with err. */
static int load_rules(const char *path, rule_set **rs, prefilter **pf, char *err, size_t errlen)
{
    *rs = NULL;
    *pf = NULL;
    char *text = rules_read_file(path, err, errlen);
    if (text && (*rs = rules_parse(text, path, err, errlen)) && !(*pf = prefilter_new(text)))
        snprintf(err, errlen, "out of memory loading rules");
    free(text);
    if (*rs && *pf)
        return 0;
    rules_free(*rs);
    *rs = NULL;
    return -1;
}

/* Puts rules and prefilter in force (both taken). */
static void use_rules(worker *w, rule_set *rs, prefilter *pf)
{
    alerting_set_rules(w->alerts, rs);
    alerting_set_prefilter(w->alerts, pf);
    rules_free(w->reloaded);
    prefilter_free(w->pf);
    w->reloaded = rs;
    w->pf = pf;
}

/* Re-reads the rules file after SIGHUP; called between batches, so every
 * batch is evaluated under one set of rules. */
static void reload_rules(worker *w)
{
    reload_requested = 0;
    if (!w->cfg->rules_path || !w->alerts) {
        log_info("SIGHUP: no rules file to re-read");
        return;
    }
    char err[1024];
    rule_set *rs;
    prefilter *pf;
    if (load_rules(w->cfg->rules_path, &rs, &pf, err, sizeof err) != 0) {
        log_error("rules reload refused, the rules in force stay: %s", err);
        return;
    }
    use_rules(w, rs, pf);
    log_info("rules reloaded file=%s rules=%zu", w->cfg->rules_path, rules_count(rs));
}

/* Per-source counters of a committed batch. */
static void count_batch(worker *w, const store_result *res)
{
    const batch *b = &w->pending;
    for (size_t s = 0; s < w->sources->count; s++) {
        size_t valid = 0, rejected = 0;
        for (size_t i = 0; i < b->count; i++) {
            const delivery *d = &b->items[i];
            if (d->source_index != (int)s)
                continue;
            valid += d->outcome == OUTCOME_STORED || d->outcome == OUTCOME_DUPLICATE;
            rejected += d->outcome == OUTCOME_REJECTED;
        }
        size_t stored = res->stored_by_source[s];
        count(w, (int)s, COUNT_STORED, stored);
        count(w, (int)s, COUNT_DUPLICATES, valid > stored ? valid - stored : 0);
        count(w, (int)s, COUNT_REJECTED, rejected);
    }
    w->stats.stored += res->stored;
    w->stats.duplicates += res->duplicates;
    w->stats.rejected += res->rejected;
    w->stats.batches++;
}

/* Settles a batch that had failures one delivery at a time: acknowledges
 * what was stored or recorded, requeues a failed one for another attempt,
 * and dead-letters it once it has failed max_retries times. */
static int settle_each(worker *w, session *s, char *err, size_t errlen)
{
    batch *b = &w->pending;
    for (size_t i = 0; i < b->count; i++) {
        const delivery *d = &b->items[i];
        const char *id = batch_str(b, d->msg_id);
        int rc;
        if (d->outcome != OUTCOME_FAILED) {
            rc = consumer_ack(s->c, d->delivery_tag, err, errlen);
        } else {
            unsigned attempts = retries_bump(w->failures, id);
            const char *why = batch_str(b, d->failure);
            if (attempts < (unsigned)w->cfg->max_retries) {
                log_warn("event failed, requeued msg_id=%s attempt=%u of=%ld error=\"%s\"", id,
                         attempts, w->cfg->max_retries, why);
                rc = consumer_requeue(s->c, d->delivery_tag, err, errlen);
            } else {
                dead_letter dl = {.routing_key = batch_str(b, d->routing_key),
                                  .message_id = id,
                                  .source = batch_str(b, d->source),
                                  .body = batch_str(b, d->body),
                                  .len = d->body_len,
                                  .reason = why,
                                  .attempts = attempts,
                                  .produced_at_us = d->produced_at_us};
                /* Not acknowledged unless dead-lettered: the caller
                 * reconnects (backing off while this keeps failing) and the
                 * broker hands the event back. */
                char why_not[700];
                if (deadletter_publish(w->dead, &dl, why_not, sizeof why_not) != 0) {
                    snprintf(err, errlen,
                             "event not dead-lettered, left in its queue msg_id=%s: %s", id,
                             why_not);
                    w->dead_letter_failed = 1;
                    return -1;
                }
                log_error("event dead-lettered to " SLUICE_QUEUE_DEAD
                          " msg_id=%s attempts=%u reason=\"%s\"",
                          id, attempts, why);
                retries_forget(w->failures, id);
                w->stats.dead_lettered++;
                count(w, d->source_index, COUNT_DEAD_LETTERED, 1);
                rc = consumer_ack(s->c, d->delivery_tag, err, errlen);
            }
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int record_alerts(void *arg, PGconn *db, const batch *b, char *err, size_t errlen)
{
    return alerting_record(arg, db, b, err, errlen);
}

/* Commits the pending batch, then acknowledges it. */
static int flush(worker *w, session *s, char *err, size_t errlen)
{
    batch *b = &w->pending;
    if (b->count == 0)
        return 0;
    store_result res = {.stored_by_source = w->stored_by_source, .nsources = w->sources->count};
    int64_t t0 = mono_us();
    /* The rules run before the transaction; their alerts are recorded in
     * it, so the batch's events and alerts commit together, once. */
    warehouse_step step = {.fn = record_alerts, .arg = w->alerts};
    if (w->alerts && alerting_evaluate(w->alerts, b, err, errlen) < 0)
        return -1;
    if (warehouse_store(s->wh, b, w->alerts ? &step : NULL, &res, err, errlen) != 0)
        return -1;
    int64_t commit_us = mono_us() - t0;
    /* Counted as soon as committed: the rows exist even if the ack below
     * is lost (the redelivered copies then count as duplicates). */
    count_batch(w, &res);
    metrics_observe_batch(w->m, w->child, b->count, commit_us);
    /* Alerts are published before the ack, so a crash in between
     * redelivers the events, which (as duplicates) raise the same alerts,
     * same ids, still 'raised', and they are published then. */
    if (w->alerts && alerting_publish(w->alerts, err, errlen) != 0)
        return -1;
    /* If an ack is lost now, the redelivered copies are no-ops. */
    int rc = res.failed == 0 ? consumer_ack_through(s->c, b->last_tag, err, errlen)
                             : settle_each(w, s, err, errlen);
    if (rc != 0)
        return -1;
    log_debug("batch committed rows=%zu stored=%zu duplicates=%zu rejected=%zu failed=%zu "
              "commit_ms=%.1f",
              b->count, res.stored, res.duplicates, res.rejected, res.failed,
              (double)commit_us / 1000.0);
    if (res.rejected)
        log_warn("events recorded in ingest_errors count=%zu", res.rejected);
    batch_reset(b);
    return 0;
}

/* Consumes and stores until shutdown or idleness (returns 0) or a failure
 * (-1). */
static int serve(worker *w, session *s, char *err, size_t errlen)
{
    const worker_config *cfg = w->cfg;
    batch *b = &w->pending;
    int64_t last_delivery_us = mono_us();
    for (;;) {
        if (shutdown_requested)
            return flush(w, s, err, errlen);
        if (reload_requested && b->count == 0)
            reload_rules(w);
        if (cfg->idle_exit_ms && b->count == 0 &&
            mono_us() - last_delivery_us >= cfg->idle_exit_ms * 1000) {
            log_info("no events for idle_exit_ms=%ld, stopping", cfg->idle_exit_ms);
            return 0;
        }
        long timeout_ms = 500;
        if (b->count > 0) {
            int64_t due = b->opened_us + cfg->flush_interval_ms * 1000;
            timeout_ms = (long)((due - mono_us()) / 1000);
            if (timeout_ms < 0)
                timeout_ms = 0;
        }
        incoming in;
        int got = consumer_next(s->c, &in, timeout_ms, err, errlen);
        if (got < 0)
            return -1;
        if (consumer_changes(s->c) != s->consumer_changes)
            show_consuming(w, s);
        if (got > 0) {
            char intended[80];
            event_verdict v = event_validate(w->validator, in.body, in.body_len);
            if (in.source_index == w->unrouted_index)
                mark_unrouted(&in, &v, intended, sizeof intended);
            if (batch_add(b, &in, v) != 0) {
                snprintf(err, errlen, "out of memory holding a batch");
                return -1;
            }
            w->stats.consumed++;
            count(w, in.source_index, COUNT_CONSUMED, 1);
            last_delivery_us = mono_us();
        }
        /* The arena holds the batch's bodies and ids: its length is what the
         * batch costs in memory (and again in the COPY stream). */
        int full =
            b->count >= (size_t)cfg->batch_size || b->arena.len >= (size_t)cfg->batch_max_bytes;
        int due = b->count > 0 && mono_us() >= b->opened_us + cfg->flush_interval_ms * 1000;
        if ((full || due) && flush(w, s, err, errlen) != 0)
            return -1;
        if (cfg->stats_interval_ms && mono_us() >= w->next_stats_us) {
            log_stats(w, "progress");
            w->next_stats_us = mono_us() + cfg->stats_interval_ms * 1000;
        }
    }
}

static void disconnect(worker *w, session *s)
{
    consumer_free(s->c);
    mq_close(s->conn);
    warehouse_close(s->wh);
    memset(s, 0, sizeof *s);
    metrics_set_connected(w->m, w->child, 0, 0);
}

static int connect_both(worker *w, session *s, char *err, size_t errlen)
{
    const worker_config *cfg = w->cfg;
    s->wh = warehouse_open(cfg->pg_dsn, err, errlen);
    if (!s->wh)
        return -1;
    metrics_set_connected(w->m, w->child, 0, 1);
    s->conn = mq_connect_any(cfg->amqp_urls, &w->next_url, (int)cfg->heartbeat, 5000, err, errlen);
    if (!s->conn)
        return -1;
    s->c = consumer_open(s->conn, "sluice-worker", w->sources, cfg->prefetch, err, errlen);
    if (!s->c)
        return -1;
    metrics_set_connected(w->m, w->child, 1, 1);
    show_consuming(w, s);
    log_info("consuming queues=%zu url=%s prefetch=%ld batch_size=%ld batch_max_bytes=%ld",
             w->sources->count, mq_url(s->conn), cfg->prefetch, cfg->batch_size,
             cfg->batch_max_bytes);
    return 0;
}

int worker_run(const worker_config *cfg, const strlist *sources, metrics *m, size_t child)
{
    worker w = {.cfg = cfg, .sources = sources, .m = m, .child = child, .unrouted_index = -1};
    int rc = 1;
    batch_init(&w.pending);
    w.validator = event_validator_new((size_t)cfg->max_message_bytes);
    w.failures = retries_new(4096);
    w.dead = deadletter_new(cfg->amqp_urls, (int)cfg->heartbeat);
    if (cfg->rules && !(w.alerts = alerting_new(cfg->rules, cfg->amqp_urls, (int)cfg->heartbeat))) {
        log_error("out of memory starting the worker");
        goto done;
    }
    if (w.alerts)
        alerting_on_count(w.alerts, count_alert, &w);
    if (w.alerts && cfg->rules_path) {
        /* The prefilter must come from the same text as the rules: read
         * the file again for both. Should it have changed into something
         * that does not load since, the rules read first stay, and every
         * event of a watched source is parsed. */
        char err[1024];
        rule_set *rs;
        prefilter *pf;
        if (load_rules(cfg->rules_path, &rs, &pf, err, sizeof err) == 0)
            use_rules(&w, rs, pf);
        else
            log_warn("rules file changed since start, no prefilter: %s", err);
    }
    w.metric_index = calloc(sources->count, sizeof *w.metric_index);
    w.stored_by_source = calloc(sources->count, sizeof *w.stored_by_source);
    if (!w.validator || !w.failures || !w.dead || !w.metric_index || !w.stored_by_source) {
        log_error("out of memory starting the worker");
        goto done;
    }
    for (size_t i = 0; i < sources->count; i++) {
        w.metric_index[i] = m ? metrics_source_index(m, sources->items[i]) : -1;
        if (strcmp(sources->items[i], SLUICE_UNROUTED_NAME) == 0)
            w.unrouted_index = (int)i;
    }
    w.started_us = mono_us();
    w.next_stats_us = w.started_us + cfg->stats_interval_ms * 1000;

    char err[1024];
    unsigned attempt = 0;
    outage down = {0};
    while (!shutdown_requested) {
        session s = {0};
        w.dead_letter_failed = 0;
        if (connect_both(&w, &s, err, sizeof err) == 0) {
            outage_log_recovery(&down, "connected again");
            if (deadletter_failures(w.dead) == 0)
                attempt = 0;
            if (serve(&w, &s, err, sizeof err) == 0) {
                disconnect(&w, &s);
                break;
            }
        }
        /* Whatever was not acknowledged will be redelivered: forget it. */
        batch_reset(&w.pending);
        disconnect(&w, &s);
        long delay = backoff_ms(attempt++, 200, 10000);
        /* A broker or database outage (a PostgreSQL failover among them)
         * is logged when it starts and when it ends, not per attempt. */
        if (w.dead_letter_failed)
            log_error("%s retry_in_ms=%ld", err, delay);
        else
            outage_log_failure(&down, "not ready, retrying", err, delay);
        sleep_interruptible_ms(delay);
    }
    log_stats(&w, "stopped");
    if (w.alerts)
        log_info("alerts raised=%" PRIu64 " suppressed=%" PRIu64 " events_parsed=%" PRIu64
                 " events_skipped_by_prefilter=%" PRIu64,
                 alerting_get_stats(w.alerts)->raised, alerting_get_stats(w.alerts)->suppressed,
                 alerting_get_stats(w.alerts)->parsed, alerting_get_stats(w.alerts)->skipped);
    rc = 0;
done:
    event_validator_free(w.validator);
    retries_free(w.failures);
    deadletter_free(w.dead);
    alerting_free(w.alerts);
    rules_free(w.reloaded);
    prefilter_free(w.pf);
    free(w.metric_index);
    free(w.stored_by_source);
    batch_free(&w.pending);
    return rc;
}
