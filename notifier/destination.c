/*
 * destination: see destination.h. The thread's loop:
 *
 *   take the destination's lease (one notifier serves a destination), and
 *   once taken record what a dead notifier left 'sending' as interrupted;
 *   while blocked (429, backoff) wait, waking only for shutdown;
 *   resume a message left 'retrying', else claim the next due group;
 *   send its text part by part (within the rates), then record the outcome.
 *
 * A failure of PostgreSQL drops the connection (and so the lease) and
 * starts over after a backoff; the outbox keeps every alert meanwhile.
 */
#include "destination.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grouptext.h"
#include "ledger.h"
#include "log.h"
#include "outage.h"
#include "util.h"

struct destination {
    dest_shared *sh;
    char name[160];
    char target[128];
    const channel_class *cls;
    channel_env env;
    http_client *http;
    token_bucket bucket; /* this destination's own rate (paced classes) */
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards woken and counts */
    pthread_cond_t cond;
    int woken;
    dest_counts counts;
    int64_t blocked_until; /* mono_us: waiting out a 429 or a backoff */
    int64_t failing_id;    /* the message the failures below belong to */
    unsigned failures;     /* its 5xx / network errors in a row */
    int64_t backlog_read;  /* mono_us of the last backlog count */
    int64_t claim_after;   /* mono_us: a one-by-one claim of several waits till then */
    long last_alerts;      /* alerts of the last message sent */
};

/* A destination that claims several alerts at once (claim_max) and took
 * fewer than that last time claims again this long after, so that what
 * arrives meanwhile goes in one claim: its PostgreSQL work is per claim
 * more than per alert. A critical alert waits this long at most. */
#define CLAIM_GATHER_MS 50

static int stopping(const destination *t)
{
    return __atomic_load_n(&t->sh->stopping, __ATOMIC_ACQUIRE);
}

/* Waits up to ms, or until woken or stopping. */
static void wait_ms(destination *t, long ms)
{
    if (ms <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    while (!t->woken && !stopping(t)) {
        if (pthread_cond_timedwait(&t->cond, &t->lock, &until) == ETIMEDOUT)
            break;
    }
    t->woken = 0;
    pthread_mutex_unlock(&t->lock);
}

static void count(destination *t, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&t->lock);
    *field += n;
    pthread_mutex_unlock(&t->lock);
}

/* Waits for a token of this destination's bucket and of the overall one.
 * Returns 0, or -1 if stopping came first. */
static int pace(destination *t)
{
    for (;;) {
        if (stopping(t))
            return -1;
        int64_t now = mono_us();
        pthread_mutex_lock(&t->sh->lock);
        int64_t wait = bucket_wait_us(&t->bucket, now), total = bucket_wait_us(&t->sh->total, now);
        if (wait == 0 && total == 0) {
            bucket_take(&t->bucket, now);
            bucket_take(&t->sh->total, now);
        }
        pthread_mutex_unlock(&t->sh->lock);
        if (total > wait)
            wait = total;
        if (wait == 0)
            return 0;
        /* A wake (new alerts) must not end the wait early for good: loop. */
        wait_ms(t, (long)((wait + 999) / 1000));
    }
}

/* Dead-letters every alert of a message that failed for good, page by
 * page (a group may be large). Returns 0, -1 with err (ledger: reconnect),
 * or 1 if the broker refused (err; try again later). */
static int dead_letter_all(destination *t, ledger *l, const message_info *m, const char *reason,
                           char *err, size_t errlen)
{
    char why[700];
    snprintf(why, sizeof why, "%.100s: %.500s", t->name, reason);
    for (long offset = 0; offset < m->alerts; offset += 100) {
        message_info page;
        if (ledger_message(l, m->id, 100, offset, &page, err, errlen) != 0)
            return -1;
        for (size_t i = 0; i < page.nshown; i++) {
            const alert *a = &page.shown[i];
            size_t len;
            char *body = alert_encode(a, &len), rk[256];
            alert_routing_key(a, rk, sizeof rk);
            dead_letter dl = {.routing_key = rk,
                              .message_id = a->alert_id,
                              .source = a->source,
                              .body = body ? body : "",
                              .len = body ? len : 0,
                              .reason = why};
            pthread_mutex_lock(&t->sh->lock);
            int rc = body ? deadletter_publish(t->sh->dead, &dl, err, errlen) : -1;
            pthread_mutex_unlock(&t->sh->lock);
            if (!body)
                snprintf(err, errlen, "out of memory");
            free(body);
            if (rc != 0) {
                message_info_free(&page);
                return 1;
            }
            log_warn("alert dead-lettered to sluice.dead alert_id=%s reason=\"%s\"", a->alert_id,
                     why);
        }
        message_info_free(&page);
    }
    return 0;
}

/* What one attempt at a message came to, for record_outcome(). */
typedef struct send_attempt {
    send_result r;
    size_t nparts, sent; /* parts (or alerts) in all, and sent by now */
    int stopped;         /* stopping before a request: nothing under way */
} send_attempt;

/* Sends what is left of message m: the parts of its text, or its alerts
 * one by one, from the first not sent yet, until one fails. Returns 0, or
 * -1 with err if the ledger failed. */
static int send_parts(destination *t, ledger *l, int64_t id, const message_info *m,
                      const grouping *g, send_attempt *a, char *err, size_t errlen)
{
    char **parts = NULL;
    if (m->nshown == 0)
        return 0; /* nothing to send (its alerts were deleted meanwhile) */
    if (!t->cls->send_text) {
        a->nparts = m->nshown;
        for (size_t k = a->sent; k < m->nshown; k++) {
            if (t->cls->paced && pace(t) != 0) {
                a->stopped = 1;
                break;
            }
            t->cls->send(&t->env, t->target, &m->shown[k], &a->r);
            if (a->r.status != SEND_OK)
                break;
            a->sent = k + 1;
            count(t, &t->counts.parts, 1);
        }
        return 0;
    }
    char *text = group_text(m->shown, m->nshown, m->alerts, m->span_s, m->group_key, !g->by_rule);
    a->nparts = text ? group_split(text, t->cls->text_limit, &parts) : 0;
    free(text);
    if (a->nparts == 0)
        send_out_of_memory(&a->r);
    for (size_t p = a->sent; p < a->nparts; p++) {
        if (t->cls->paced && pace(t) != 0) {
            a->stopped = 1;
            break;
        }
        t->cls->send_text(&t->env, t->target, parts[p], &a->r);
        if (a->r.status != SEND_OK)
            break;
        a->sent = p + 1;
        count(t, &t->counts.parts, 1);
        /* Progress, so a retry resumes with the next part. */
        if (a->sent < a->nparts && ledger_record_message(l, id, "sending", NULL, (long)a->nparts,
                                                         (long)a->sent, err, errlen) != 0) {
            group_parts_free(parts, a->nparts);
            return -1;
        }
    }
    if (a->nparts > 1 && a->sent == a->nparts)
        log_info("message split into parts channel=%s parts=%zu", t->name, a->nparts);
    group_parts_free(parts, a->nparts);
    return 0;
}

/* A message that failed for good: kept 'retrying' until its alerts are in
 * sluice.dead, so a crash in between tries again rather than losing them;
 * then 'failed'. Returns 0, or -1 with err if the ledger failed. */
static int record_failure(destination *t, ledger *l, int64_t id, const message_info *m,
                          const send_attempt *a, const char *error, char *err, size_t errlen)
{
    int rc = ledger_record_message(l, id, "retrying", error, (long)a->nparts, (long)a->sent, err,
                                   errlen);
    int dl = rc == 0 ? dead_letter_all(t, l, m, a->r.reason, err, errlen) : -1;
    if (dl == 1) {
        log_error("cannot dead-letter, retrying later channel=%s error=\"%s\"", t->name, err);
        t->blocked_until = mono_us() + 5000000;
        return 0;
    }
    if (dl != 0)
        return -1;
    rc = ledger_record_message(l, id, "failed", error, (long)a->nparts, (long)a->sent, err, errlen);
    if (rc == 0) {
        count(t, &t->counts.failed, (uint64_t)m->alerts);
        log_error("alerts not delivered channel=%s alerts=%ld first_alert_id=%s "
                  "reason=\"%s\"",
                  t->name, m->alerts, m->nshown ? m->shown[0].alert_id : "-", a->r.reason);
    }
    return rc;
}

/* Records what the attempt came to: sent, retrying after a wait, or
 * failed (then dead-lettered). Returns 0, or -1 with err if the ledger
 * failed. */
static int record_outcome(destination *t, ledger *l, int64_t id, const message_info *m,
                          send_attempt *a, char *err, size_t errlen)
{
    const dest_config *cfg = t->sh->cfg;
    send_result *r = &a->r;
    const char *state = "sent";
    long wait_ms_ = 0;
    if (a->stopped) {
        state = "retrying"; /* no request was under way: the next notifier resumes */
    } else if (r->status == SEND_RETRY && r->retry_after_ms >= 0) {
        state = "retrying";
        wait_ms_ = r->retry_after_ms;
    } else if (r->status == SEND_RETRY && ++t->failures < (unsigned)cfg->max_attempts) {
        state = "retrying";
        wait_ms_ = backoff_ms(t->failures - 1, cfg->backoff_base_ms, cfg->backoff_max_ms);
    } else if (r->status != SEND_OK) {
        state = "failed";
        if (r->status == SEND_RETRY) {
            char why[sizeof r->reason];
            snprintf(why, sizeof why, "%s", r->reason);
            snprintf(r->reason, sizeof r->reason, "gave up after %u attempts: %.400s", t->failures,
                     why);
        }
    }
    const char *error = r->status == SEND_OK ? NULL : r->reason;
    if (strcmp(state, "failed") == 0)
        return record_failure(t, l, id, m, a, error, err, errlen);
    int rc =
        ledger_record_message(l, id, state, error, (long)a->nparts, (long)a->sent, err, errlen);
    if (rc == 0 && strcmp(state, "sent") == 0) {
        t->failures = 0;
        count(t, &t->counts.delivered, (uint64_t)m->alerts);
        /* One-by-one channels send each alert as a message of its own,
         * however many one claim took. */
        count(t, &t->counts.messages,
              t->cls->send_text ? 1 : (uint64_t)(a->sent - (size_t)m->parts_sent));
        if (!t->cls->send_text && t->cls->logs_itself) {
            log_debug("alerts sent channel=%s alerts=%ld", t->name, m->alerts);
        } else if (!t->cls->send_text) {
            for (size_t k = (size_t)m->parts_sent; k < m->nshown; k++)
                log_info("alert sent alert_id=%s channel=%s", m->shown[k].alert_id, t->name);
        } else if (m->alerts == 1 && m->nshown == 1) {
            if (!t->cls->logs_itself)
                log_info("alert sent alert_id=%s channel=%s", m->shown[0].alert_id, t->name);
        } else {
            log_info("alerts sent as one message channel=%s group=\"%s\" alerts=%ld parts=%zu",
                     t->name, m->group_key, m->alerts, a->nparts);
        }
    } else if (rc == 0 && strcmp(state, "retrying") == 0 && !a->stopped) {
        count(t, &t->counts.retries, 1);
        t->blocked_until = mono_us() + (int64_t)wait_ms_ * 1000;
        log_warn("delivery failed, destination waits channel=%s alerts=%ld first_alert_id=%s "
                 "reason=\"%s\" retry_in_ms=%ld",
                 t->name, m->alerts, m->nshown ? m->shown[0].alert_id : "-", r->reason, wait_ms_);
    }
    return rc;
}

/* Sends message id (claimed: 'sending') and records the outcome. Returns 0,
 * or -1 with err if the ledger failed. */
static int send_message(destination *t, ledger *l, int64_t id, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->sh->lock);
    grouping g = t->sh->group;
    pthread_mutex_unlock(&t->sh->lock);
    message_info m;
    /* A one-by-one destination's message holds at most CHANNEL_CLAIM_MAX
     * alerts: every one is loaded. */
    long show = t->cls->send_text ? (g.show > 0 ? g.show : 1) : CHANNEL_CLAIM_MAX;
    if (ledger_message(l, id, show, 0, &m, err, errlen) != 0)
        return -1;
    if (t->failing_id != id) {
        t->failing_id = id;
        t->failures = 0;
    }
    send_attempt a = {.r = {.status = SEND_OK, .retry_after_ms = -1}, .sent = (size_t)m.parts_sent};
    int rc = send_parts(t, l, id, &m, &g, &a, err, errlen);
    if (rc == 0)
        rc = record_outcome(t, l, id, &m, &a, err, errlen);
    t->last_alerts = m.alerts;
    message_info_free(&m);
    return rc;
}

/* Re-reads the backlog for /metrics, at most once a second. */
static int refresh_backlog(destination *t, ledger *l, char *err, size_t errlen)
{
    int64_t now = mono_us();
    if (now - t->backlog_read < 1000000)
        return 0;
    long long n;
    if (ledger_backlog(l, t->name, &n, err, errlen) != 0)
        return -1;
    t->backlog_read = now;
    pthread_mutex_lock(&t->lock);
    t->counts.backlog = n;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* One step of the loop; -1 with err if PostgreSQL failed. */
static int step(destination *t, ledger *l, char *err, size_t errlen)
{
    int64_t now = mono_us();
    if (t->blocked_until > now) {
        /* Blocked: a wake for new alerts changes nothing; wait it out. */
        wait_ms(t, (long)((t->blocked_until - now + 999) / 1000));
        return refresh_backlog(t, l, err, errlen);
    }
    int64_t id;
    if (ledger_retrying_message(l, t->name, &id, err, errlen) != 0)
        return -1;
    if (id) {
        if (ledger_reclaim(l, id, err, errlen) != 0)
            return -1;
        return send_message(t, l, id, err, errlen);
    }
    pthread_mutex_lock(&t->sh->lock);
    grouping g = t->sh->group;
    pthread_mutex_unlock(&t->sh->lock);
    if (refresh_backlog(t, l, err, errlen) != 0)
        return -1;
    if (!t->cls->send_text || !grouping_on(&g)) {
        /* Alert by alert: claim the next one (or the next claim_max) outright. */
        long max = t->cls->send_text || t->cls->claim_max < 1 ? 1 : t->cls->claim_max;
        /* A wake (new alerts) does not cut the gathering short. */
        while (max > 1 && !stopping(t) && (now = mono_us()) < t->claim_after)
            wait_ms(t, (long)((t->claim_after - now + 999) / 1000));
        if (ledger_claim_many(l, t->name, max, &id, err, errlen) != 0)
            return -1;
        if (!id)
            wait_ms(t, 1000); /* also polls: another notifier may plan for us */
        if (!id)
            return 0;
        int rc = send_message(t, l, id, err, errlen);
        if (max > 1 && t->last_alerts < max)
            t->claim_after = mono_us() + CLAIM_GATHER_MS * 1000;
        return rc;
    }
    char key[256];
    long due_ms = 0;
    int found;
    if (ledger_next_group(l, t->name, g.wait_ms, g.interval_ms, key, sizeof key, &due_ms, &found,
                          err, errlen) != 0)
        return -1;
    if (!found) {
        wait_ms(t, 1000);
        return 0;
    }
    if (due_ms > 0) {
        wait_ms(t, due_ms < 1000 ? due_ms : 1000);
        return 0;
    }
    if (ledger_claim_group(l, t->name, key, g.max, 1, &id, err, errlen) != 0)
        return -1;
    return id ? send_message(t, l, id, err, errlen) : 0;
}

static void *run(void *arg)
{
    destination *t = arg;
    ledger *l = NULL;
    int leased = 0;
    unsigned attempt = 0;
    outage down = {0};
    char err[1024], what[300];
    while (!stopping(t)) {
        if (!l && !(l = ledger_open(t->sh->cfg->pg_dsn, err, sizeof err)))
            goto failed;
        if (down.attempts) {
            snprintf(what, sizeof what, "destination reached the ledger again channel=%s", t->name);
            outage_log_recovery(&down, what);
        }
        if (!leased) {
            if (ledger_lease(l, t->name, &leased, err, sizeof err) != 0)
                goto failed;
            if (!leased) {
                wait_ms(t, 1000); /* another notifier serves it */
                continue;
            }
            long interrupted;
            int resend = t->cls->deduplicated;
            if (ledger_recover(l, t->name, resend, &interrupted, err, sizeof err) != 0)
                goto failed;
            if (interrupted && resend) {
                log_warn("alerts were being sent when a notifier stopped; sending them again "
                         "(the receiver deduplicates) channel=%s alerts=%ld",
                         t->name, interrupted);
            } else if (interrupted) {
                count(t, &t->counts.failed, (uint64_t)interrupted);
                log_warn("alerts were being sent when a notifier stopped; not sent again "
                         "channel=%s alerts=%ld",
                         t->name, interrupted);
            }
            log_debug("serving destination channel=%s", t->name);
        }
        if (step(t, l, err, sizeof err) != 0)
            goto failed;
        attempt = 0;
        continue;
    failed:
        ledger_close(l);
        l = NULL;
        leased = 0;
        if (stopping(t))
            break;
        long delay = backoff_ms(attempt++, 200, 10000);
        snprintf(what, sizeof what, "destination cannot reach the ledger, retrying channel=%s",
                 t->name);
        outage_log_failure(&down, what, err, delay);
        wait_ms(t, delay);
    }
    ledger_close(l);
    return NULL;
}

destination *destination_start(dest_shared *sh, const char *name, const channel_class *cls,
                               const char *target, char *err, size_t errlen)
{
    destination *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->sh = sh;
    t->cls = cls;
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->target, sizeof t->target, "%s", target ? target : "");
    t->counts.backlog = -1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* Burst of 1: messages evenly spaced, no second holds more than the rate. */
    bucket_init(&t->bucket, (double)sh->cfg->rate_per_chat, 1, mono_us());
    t->http = http_client_new(sh->cfg->http_timeout_ms);
    t->env = (channel_env){.http = t->http, .settings = sh->cfg->channels};
    /* Signals (SIGTERM, SIGHUP) are the consuming thread's to see: the
     * thread starts with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int created = t->http && pthread_create(&t->thread, NULL, run, t) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!created) {
        snprintf(err, errlen, "cannot start a thread for destination %s", name);
        destination_free(t);
        return NULL;
    }
    t->started = 1;
    return t;
}

void destination_wake(destination *t)
{
    pthread_mutex_lock(&t->lock);
    t->woken = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void destination_stop(destination *t)
{
    if (t)
        destination_wake(t);
}

void destination_free(destination *t)
{
    if (!t)
        return;
    if (t->started)
        pthread_join(t->thread, NULL);
    http_client_free(t->http);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

const char *destination_name(const destination *t)
{
    return t->name;
}

const channel_class *destination_class(const destination *t)
{
    return t->cls;
}

void destination_counts(destination *t, dest_counts *out)
{
    pthread_mutex_lock(&t->lock);
    *out = t->counts;
    pthread_mutex_unlock(&t->lock);
}
