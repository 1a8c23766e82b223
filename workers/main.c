/*
 * sluice-worker: consumes every source queue (unified mode), stores the
 * events in the warehouse in batches and acknowledges each batch only after
 * it is committed. At-least-once delivery plus msg_id uniqueness gives
 * exactly one row per event. Any failure of the broker or the database
 * drops both connections: the broker then redelivers every unacknowledged
 * message, and the worker reconnects with backoff.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"
#include "consumer.h"
#include "event.h"
#include "log.h"
#include "settings.h"
#include "warehouse.h"

typedef struct worker_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    char *sources;
    long prefetch;
    long batch_size;
    long flush_interval_ms;
    long heartbeat;
    long max_message_bytes;
    long stats_interval_ms;
    long idle_exit_ms;
    char *log_level;
} worker_settings;

static const cfg_option worker_options[] = {
    SETTING_AMQP_URL(worker_settings),
    SETTING_AMQP_TLS(worker_settings),
    SETTING_PG_DSN(worker_settings),
    SETTING_SOURCES(worker_settings),
    {"prefetch", CFG_INT, offsetof(worker_settings, prefetch), "2000", 1, 65535,
     "unacknowledged deliveries per queue (AMQP basic.qos)"},
    {"batch_size", CFG_INT, offsetof(worker_settings, batch_size), "1000", 1, 100000,
     "events per transaction"},
    {"flush_interval_ms", CFG_INT, offsetof(worker_settings, flush_interval_ms), "50", 1, 60000,
     "commit a partial batch once its oldest event waited this long"},
    {"heartbeat", CFG_INT, offsetof(worker_settings, heartbeat), "30", 0, 3600,
     "AMQP heartbeat in seconds; 0 = off"},
    {"max_message_bytes", CFG_INT, offsetof(worker_settings, max_message_bytes), "1048576", 2,
     134217728, "larger bodies go to ingest_errors as too_large"},
    {"stats_interval_ms", CFG_INT, offsetof(worker_settings, stats_interval_ms), "10000", 0,
     3600000, "log a progress line this often; 0 = never"},
    {"idle_exit_ms", CFG_INT, offsetof(worker_settings, idle_exit_ms), "0", 0, 86400000,
     "exit 0 once no event arrived for this long (drain a backlog, then stop); 0 = never"},
    SETTING_LOG_LEVEL(worker_settings),
    CFG_END,
};

static const char program[] = "sluice-worker";

typedef struct worker_stats {
    uint64_t consumed, stored, duplicates, rejected, batches;
} worker_stats;

typedef struct worker {
    const worker_settings *settings;
    strlist sources;
    strlist urls;
    size_t next_url;
    event_validator *validator;
    batch pending;
    worker_stats stats;
    int64_t started_us;
    int64_t next_stats_us;
} worker;

static void log_stats(worker *w, const char *what)
{
    double elapsed = (double)(mono_us() - w->started_us) / 1e6;
    log_info("%s consumed=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64
             " rejected=%" PRIu64 " batches=%" PRIu64 " elapsed_s=%.1f rate=%.0f/s",
             what, w->stats.consumed, w->stats.stored, w->stats.duplicates, w->stats.rejected,
             w->stats.batches, elapsed, elapsed > 0 ? (double)w->stats.consumed / elapsed : 0.0);
}

/* Commits the pending batch, then acknowledges it. */
static int flush(worker *w, warehouse *wh, consumer *c, char *err, size_t errlen)
{
    batch *b = &w->pending;
    if (b->count == 0)
        return 0;
    store_result res;
    int64_t t0 = mono_us();
    if (warehouse_store(wh, b, &res, err, errlen) != 0)
        return -1;
    /* Committed: if the ack is lost now, the redelivered copies are no-ops. */
    if (consumer_ack_through(c, b->last_tag, err, errlen) != 0)
        return -1;
    w->stats.stored += res.stored;
    w->stats.duplicates += res.duplicates;
    w->stats.rejected += res.rejected;
    w->stats.batches++;
    log_debug("batch committed rows=%zu stored=%zu duplicates=%zu rejected=%zu commit_ms=%.1f",
              b->count, res.stored, res.duplicates, res.rejected,
              (double)(mono_us() - t0) / 1000.0);
    if (res.rejected)
        log_warn("events recorded in ingest_errors count=%zu", res.rejected);
    batch_reset(b);
    return 0;
}

/* Consumes and stores until shutdown (returns 0) or a failure (-1). */
static int serve(worker *w, warehouse *wh, consumer *c, char *err, size_t errlen)
{
    const worker_settings *s = w->settings;
    batch *b = &w->pending;
    int64_t last_delivery_us = mono_us();
    for (;;) {
        if (shutdown_requested)
            return flush(w, wh, c, err, errlen);
        if (s->idle_exit_ms && b->count == 0 &&
            mono_us() - last_delivery_us >= s->idle_exit_ms * 1000) {
            log_info("no events for idle_exit_ms=%ld, stopping", s->idle_exit_ms);
            return 0;
        }
        long timeout_ms = 500;
        if (b->count > 0) {
            int64_t due = b->opened_us + s->flush_interval_ms * 1000;
            timeout_ms = (long)((due - mono_us()) / 1000);
            if (timeout_ms < 0)
                timeout_ms = 0;
        }
        incoming in;
        int got = consumer_next(c, &in, timeout_ms, err, errlen);
        if (got < 0)
            return -1;
        if (got > 0) {
            event_verdict v = event_validate(w->validator, in.body, in.body_len);
            if (batch_add(b, &in, v) != 0) {
                snprintf(err, errlen, "out of memory holding a batch");
                return -1;
            }
            w->stats.consumed++;
            last_delivery_us = mono_us();
        }
        int full = b->count >= (size_t)s->batch_size;
        int due = b->count > 0 && mono_us() >= b->opened_us + s->flush_interval_ms * 1000;
        if ((full || due) && flush(w, wh, c, err, errlen) != 0)
            return -1;
        if (s->stats_interval_ms && mono_us() >= w->next_stats_us) {
            log_stats(w, "progress");
            w->next_stats_us = mono_us() + s->stats_interval_ms * 1000;
        }
    }
}

/* Connects to both servers and serves until shutdown, starting over with
 * backoff after every failure. */
static void run(worker *w)
{
    const worker_settings *s = w->settings;
    char err[1024];
    unsigned attempt = 0;
    while (!shutdown_requested) {
        warehouse *wh = warehouse_open(s->pg_dsn, err, sizeof err);
        mq_conn *conn = NULL;
        consumer *c = NULL;
        if (wh)
            conn = mq_connect_any(&w->urls, &w->next_url, (int)s->heartbeat, 5000, err,
                                  sizeof err);
        if (conn)
            c = consumer_open(conn, &w->sources, s->prefetch, err, sizeof err);
        if (c) {
            log_info("consuming queues=%zu url=%s prefetch=%ld batch_size=%ld", w->sources.count,
                     mq_url(conn), s->prefetch, s->batch_size);
            attempt = 0;
            if (serve(w, wh, c, err, sizeof err) == 0) {
                consumer_free(c);
                mq_close(conn);
                warehouse_close(wh);
                return;
            }
        }
        /* Whatever was not acknowledged will be redelivered: forget it. */
        batch_reset(&w->pending);
        consumer_free(c);
        mq_close(conn);
        warehouse_close(wh);
        long delay = backoff_ms(attempt++, 200, 10000);
        log_warn("not ready, retrying error=\"%s\" retry_in_ms=%ld", err, delay);
        sleep_interruptible_ms(delay);
    }
}

int main(int argc, char **argv)
{
    worker_settings s = {0};
    worker w = {.settings = &s};
    batch_init(&w.pending);
    int rc = cli_parse(worker_options, &s, argc, argv, program,
                       "Consumes every source queue and stores the events in the PostgreSQL "
                       "warehouse.");
    if (rc == CLI_CONTINUE)
        rc = cli_init_log(program, "worker", s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp_tls(program, &s.amqp_tls);
    if (rc == CLI_CONTINUE)
        rc = cli_sources(program, "sources", s.sources, &w.sources);
    if (rc == CLI_CONTINUE && (strlist_split(s.amqp_url, &w.urls) != 0 || w.urls.count == 0)) {
        fprintf(stderr, "%s: amqp_url is empty\n", program);
        rc = EXIT_USAGE;
    }
    if (rc == CLI_CONTINUE) {
        w.validator = event_validator_new((size_t)s.max_message_bytes);
        if (!w.validator)
            rc = EXIT_RUNTIME;
    }
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        w.started_us = mono_us();
        w.next_stats_us = w.started_us + s.stats_interval_ms * 1000;
        run(&w);
        log_stats(&w, "stopped");
        rc = 0;
    }
    event_validator_free(w.validator);
    batch_free(&w.pending);
    strlist_free(&w.sources);
    strlist_free(&w.urls);
    cfg_free(worker_options, &s);
    return rc;
}
