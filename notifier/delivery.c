/*
 * delivery: see delivery.h.
 */
#include "delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "event.h"
#include "log.h"
#include "util.h"

struct deliverer {
    const delivery_config *cfg;
    http_client *http;
    channel_env env; /* what each send gets */
    deadletter *dead;
    bucket_map chats;
    token_bucket total;
    delivery_stats stats;
};

deliverer *deliverer_new(const delivery_config *cfg, const strlist *urls, int heartbeat_s)
{
    deliverer *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = cfg;
    d->http = http_client_new(cfg->http_timeout_ms);
    d->env = (channel_env){.http = d->http, .settings = &cfg->channels};
    d->dead = deadletter_new(urls, heartbeat_s);
    /* Bursts of 1: messages are spaced evenly, so no second ever holds
     * more than the rate (a full bucket of 30 would allow 60 in the first). */
    int ok = bucket_map_init(&d->chats, 1024, (double)cfg->rate_per_chat, 1) == 0;
    bucket_init(&d->total, (double)cfg->rate_total, 1, mono_us());
    if (!ok || !d->http || !d->dead) {
        deliverer_free(d);
        return NULL;
    }
    return d;
}

void deliverer_free(deliverer *d)
{
    if (!d)
        return;
    http_client_free(d->http);
    deadletter_free(d->dead);
    bucket_map_free(&d->chats);
    free(d);
}

const delivery_stats *deliverer_stats(const deliverer *d)
{
    return &d->stats;
}

/* Waits for a token in the target's (chat's) bucket and the overall one.
 * Returns 0, or -1 if shutdown came first. */
static int wait_for_rate(deliverer *d, const char *target)
{
    for (;;) {
        int64_t now = mono_us();
        token_bucket *b = bucket_map_get(&d->chats, target, now);
        int64_t wait = bucket_wait_us(b, now), wait_total = bucket_wait_us(&d->total, now);
        if (wait_total > wait)
            wait = wait_total;
        if (wait == 0) {
            bucket_take(b, now);
            bucket_take(&d->total, now);
            return 0;
        }
        if (sleep_interruptible_ms((long)((wait + 999) / 1000)) != 0)
            return -1;
    }
}

/* One channel, until its outcome is final or shutdown. *failed gets the
 * reason if it failed in this call. */
static delivery_result deliver_channel(deliverer *d, ledger *l, const channel *c, const alert *a,
                                       char *failed, size_t failed_len, char *err, size_t errlen)
{
    char name[160];
    const char *target = channel_target(c, &d->cfg->channels);
    channel_name(c, &d->cfg->channels, name, sizeof name);
    unsigned attempt = 0;
    for (;;) {
        if (c->cls->paced && wait_for_rate(d, target) != 0)
            return DELIVERY_STOPPED;
        claim_result claim;
        for (;;) {
            if (ledger_claim(l, a, name, &claim, err, errlen) != 0)
                return DELIVERY_ERROR;
            if (claim != CLAIM_BUSY)
                break;
            /* Another live notifier is in the middle of a request for it
             * (a republished copy): wait for its outcome rather than guess. */
            log_debug("alert is being sent by another notifier, waiting alert_id=%s channel=%s",
                      a->alert_id, name);
            if (sleep_interruptible_ms(200) != 0)
                return DELIVERY_STOPPED;
        }
        if (claim == CLAIM_DONE) {
            d->stats.skipped++;
            log_info("alert already delivered, not sent again alert_id=%s channel=%s", a->alert_id,
                     name);
            return DELIVERY_DONE;
        }
        if (claim == CLAIM_INTERRUPTED) {
            d->stats.failed++;
            log_warn("alert was being sent when a notifier stopped; not sent again "
                     "alert_id=%s channel=%s",
                     a->alert_id, name);
            return DELIVERY_DONE;
        }
        send_result r;
        c->cls->send(&d->env, target, a, &r);
        const char *state = "sent";
        long wait_ms = 0;
        if (r.status == SEND_RETRY && r.retry_after_ms >= 0) {
            state = "retrying";
            wait_ms = r.retry_after_ms;
        } else if (r.status == SEND_RETRY && ++attempt < (unsigned)d->cfg->max_attempts) {
            state = "retrying";
            wait_ms = backoff_ms(attempt - 1, d->cfg->backoff_base_ms, d->cfg->backoff_max_ms);
        } else if (r.status != SEND_OK) {
            state = "failed";
            if (r.status == SEND_RETRY) {
                char why[sizeof r.reason];
                snprintf(why, sizeof why, "%s", r.reason);
                snprintf(r.reason, sizeof r.reason, "gave up after %u attempts: %.400s", attempt,
                         why);
            }
        }
        if (ledger_record(l, a->alert_id, name, state, r.status == SEND_OK ? NULL : r.reason, err,
                          errlen) != 0)
            return DELIVERY_ERROR;
        if (r.status == SEND_OK) {
            d->stats.sent++;
            if (!c->cls->logs_itself)
                log_info("alert sent alert_id=%s channel=%s", a->alert_id, name);
            return DELIVERY_DONE;
        }
        if (strcmp(state, "failed") == 0) {
            d->stats.failed++;
            log_error("alert not delivered alert_id=%s channel=%s reason=\"%s\"", a->alert_id, name,
                      r.reason);
            snprintf(failed, failed_len, "%.100s: %.400s", name, r.reason);
            return DELIVERY_DONE;
        }
        d->stats.retried++;
        log_warn("alert delivery failed, retrying alert_id=%s channel=%s reason=\"%s\" "
                 "retry_in_ms=%ld",
                 a->alert_id, name, r.reason, wait_ms);
        if (sleep_interruptible_ms(wait_ms) != 0)
            return DELIVERY_STOPPED;
    }
}

delivery_result deliver(deliverer *d, ledger *l, const char *rk, const char *body, size_t len,
                        char *err, size_t errlen)
{
    delivery_result res = DELIVERY_DONE;
    char failed[1024] = "";
    alert a;
    alert_doc *doc = NULL;
    d->stats.alerts++;
    /* What the database would refuse must not come back forever: such a
     * message is dead-lettered, not retried. */
    if (alert_decode(body, len, &a, &doc) != 0) {
        snprintf(failed, sizeof failed, "%s", ALERT_DECODE_ERROR);
        a.alert_id = "-";
    } else {
        const route *r = routes_match(d->cfg->routes, a.severity, a.rule);
        static const route log_only = {
            .severity = "*", .rule = "*", .channels = {{.cls = &log_channel}}, .nchannels = 1};
        if (!r)
            r = &log_only;
        char names[ROUTES_MAX_CHANNELS * 160] = "", name[160];
        for (size_t i = 0; i < r->nchannels; i++) {
            channel_name(&r->channels[i], &d->cfg->channels, name, sizeof name);
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "," : "",
                     name);
        }
        if (ledger_plan(l, &a, names, err, errlen) != 0)
            res = DELIVERY_ERROR;
        for (size_t i = 0; i < r->nchannels && res == DELIVERY_DONE; i++) {
            char why[600] = "";
            res = deliver_channel(d, l, &r->channels[i], &a, why, sizeof why, err, errlen);
            size_t used = strlen(failed);
            if (why[0])
                snprintf(failed + used, sizeof failed - used, "%s%s", used ? "; " : "", why);
        }
    }
    if (res == DELIVERY_DONE && failed[0]) {
        dead_letter dl = {.routing_key = rk,
                          .message_id = a.alert_id,
                          .body = body,
                          .len = len,
                          .reason = failed};
        if (deadletter_publish(d->dead, &dl, err, errlen) != 0) {
            res = DELIVERY_ERROR;
        } else {
            d->stats.dead_lettered++;
            log_warn("alert dead-lettered to sluice.dead alert_id=%s reason=\"%s\"", a.alert_id,
                     failed);
        }
    }
    alert_doc_free(doc);
    return res;
}
