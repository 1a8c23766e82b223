/*
 * reader: see reader.h.
 */
#include "reader.h"

#include <inttypes.h>
#include <signal.h>

#include "log.h"
#include "util.h"

void reader_save_checkpoint(source_run *r, int force)
{
    if (!r->def->adapter->checkpoint)
        return;
    int64_t now = mono_us();
    if (!force && now < r->next_checkpoint_us)
        return;
    int known = atomic_load(&r->has_confirmed);
    uint64_t pos = atomic_load(&r->confirmed_pos);
    int skip_done = r->skip_pending && (!r->skip_after_any || (known && pos >= r->skip_after));
    if (skip_done && (!known || r->skip_pos > pos)) {
        pos = r->skip_pos;
        known = 1;
    }
    if (!known || (r->saved && pos <= r->saved_pos))
        return;
    char err[1024];
    r->next_checkpoint_us = now + r->checkpoint_interval_ms * 1000;
    if (r->def->adapter->checkpoint(r->state, pos, err, sizeof err) != 0) {
        log_error("checkpoint failed source=%s error=\"%s\"", r->def->name, err);
        return;
    }
    r->saved = 1;
    r->saved_pos = pos;
    if (skip_done)
        r->skip_pending = 0;
}

static void report_skip(source_run *r, const source_event *ev, const char *reason)
{
    uint64_t total = atomic_fetch_add(&r->skipped, 1) + 1;
    log_warn("input skipped source=%s at=\"%s\" reason=%s bytes=%zu skipped_total=%" PRIu64,
             r->def->name, ev->where ? ev->where : "?", reason, ev->len, total);
    r->skip_pos = ev->position;
    r->skip_after = r->last_put_pos;
    r->skip_after_any = r->has_put;
    r->skip_pending = 1;
}

static void *reader_main(void *arg)
{
    source_run *r = arg;
    const adapter_class *a = r->def->adapter;
    int64_t started = mono_us();
    uint64_t taken = 0;
    char err[1024];
    while (!atomic_load(r->stop)) {
        reader_save_checkpoint(r, 0);
        if (r->def->rate > 0) {
            int64_t due = started + (int64_t)(taken * 1000000 / (uint64_t)r->def->rate);
            int64_t wait = due - mono_us();
            if (wait < -1000000) {
                /* Held back (backpressure, an outage): go on at the rate
                 * from now rather than in a burst that catches up. */
                started -= wait + 1000000;
                wait = -1000000;
            }
            if (wait > 0) {
                source_sleep_ms(r->stop, wait > 100000 ? 100 : (long)(wait / 1000) + 1);
                continue;
            }
        }
        source_event ev = {0}; /* adapters fill what applies; the rest stays NULL */
        adapter_result res = a->next(r->state, &ev, err, sizeof err);
        if (res == ADAPTER_END) {
            log_info("source finished source=%s read=%" PRIu64 " skipped=%" PRIu64, r->def->name,
                     atomic_load(&r->read), atomic_load(&r->skipped));
            break;
        }
        if (res == ADAPTER_ERROR) {
            atomic_store(&r->failed, 1);
            log_error("source failed source=%s error=\"%s\"", r->def->name, err);
            break;
        }
        if (res != ADAPTER_EVENT)
            continue;
        if (ev.skip_reason) {
            report_skip(r, &ev, ev.skip_reason);
            continue;
        }
        event_verdict v = event_validate(r->validator, ev.body, ev.len);
        if (v != EVENT_OK) {
            report_skip(r, &ev, event_verdict_reason(v));
            continue;
        }
        if (hub_put(r->hub, r->index, ev.body, ev.len, ev.msg_id, ev.position, r->stop) != 0) {
            atomic_store(&r->failed, 1);
            log_error("source failed source=%s error=\"out of memory buffering an event\"",
                      r->def->name);
            break;
        }
        taken++;
        r->last_put_pos = ev.position;
        r->has_put = 1;
        atomic_fetch_add(&r->read, 1);
    }
    hub_finish(r->hub, r->index);
    return NULL;
}

void reader_confirmed(void *arg, void *owner, uint64_t position)
{
    (void)arg;
    source_run *r = owner;
    atomic_store(&r->confirmed_pos, position);
    atomic_store(&r->has_confirmed, 1);
    atomic_fetch_add(&r->confirmed, 1);
    if (r->def->adapter->confirmed)
        r->def->adapter->confirmed(r->state, position);
}

int readers_start(source_run *runs, size_t n)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        source_run *r = &runs[i];
        r->next_checkpoint_us = mono_us() + r->checkpoint_interval_ms * 1000;
        if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
            log_error("cannot start a thread for source=%s", r->def->name);
            rc = -1;
        } else {
            r->started = 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
