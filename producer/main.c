/*
 * sluice-producer: reads events from source adapters and publishes them to
 * sluice.ingest per the message contract, with publisher confirms. Runs
 * every configured source in one process (modular mode) or just the one
 * named by --source (distributed mode). An event counts as produced once
 * the broker has confirmed it; on a lost connection the producer reconnects
 * and republishes whatever was not confirmed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "cli.h"
#include "event.h"
#include "log.h"
#include "publisher.h"
#include "settings.h"

typedef struct producer_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *sources;
    char *source;
    char *adapter;
    long count;
    long rate;
    long duration;
    long seed;
    long window;
    long heartbeat;
    long shutdown_timeout_ms;
    long progress_interval_ms;
    long max_message_bytes;
    char *log_level;
} producer_settings;

static const cfg_option producer_options[] = {
    SETTING_AMQP_URL(producer_settings),
    SETTING_AMQP_TLS(producer_settings),
    SETTING_SOURCES(producer_settings),
    {"source", CFG_STRING, offsetof(producer_settings, source), "", 0, 0,
     "run only this source of the list (distributed mode); empty runs them all (modular mode)"},
    {"adapter", CFG_STRING, offsetof(producer_settings, adapter), "generator", 0, 0,
     "source adapter (generator: the source name is its kind: profiles, clickstream, orders, "
     "sensors)"},
    {"count", CFG_INT, offsetof(producer_settings, count), "10000", 0, 1L << 40,
     "events per source; 0 = until stopped"},
    {"rate", CFG_INT, offsetof(producer_settings, rate), "0", 0, 10000000,
     "events per second per source; 0 = as fast as the broker confirms"},
    {"duration", CFG_INT, offsetof(producer_settings, duration), "0", 0, 31536000,
     "stop after this many seconds; 0 = no limit"},
    {"seed", CFG_INT, offsetof(producer_settings, seed), "1", 0, 1L << 62,
     "seed of the generator: the same seed makes the same events and message ids"},
    {"window", CFG_INT, offsetof(producer_settings, window), "1024", 1, 1000000,
     "unconfirmed messages in flight before publishing waits (memory bound)"},
    {"heartbeat", CFG_INT, offsetof(producer_settings, heartbeat), "30", 0, 3600,
     "AMQP heartbeat in seconds; 0 = off"},
    {"shutdown_timeout_ms", CFG_INT, offsetof(producer_settings, shutdown_timeout_ms), "30000", 0,
     3600000, "how long to wait for outstanding confirms when stopping"},
    {"progress_interval_ms", CFG_INT, offsetof(producer_settings, progress_interval_ms), "1000",
     0, 3600000, "log a progress line this often; 0 = never"},
    {"max_message_bytes", CFG_INT, offsetof(producer_settings, max_message_bytes), "1048576", 2,
     134217728, "largest event body published"},
    SETTING_LOG_LEVEL(producer_settings),
    CFG_END,
};

static const char program[] = "sluice-producer";

typedef struct source_run {
    const char *name;
    char routing_key[80];
    const adapter_class *adapter;
    void *state;
    uint64_t produced;      /* taken by the publisher */
    uint64_t last_position; /* of the last event taken */
    uint64_t skipped;       /* over max_message_bytes */
    int done;
} source_run;

typedef struct producer {
    const producer_settings *settings;
    strlist urls;
    size_t next_url;
    mq_conn *conn;
    publisher *pub;
    source_run *runs;
    size_t nruns;
    int64_t started_us;
} producer;

/* Connects (round the URL list, with backoff) and attaches the publisher,
 * which republishes anything unconfirmed. Returns 0, or -1 on shutdown or
 * once the monotonic deadline_us has passed. */
static int reconnect_until(producer *p, int64_t deadline_us)
{
    char err[1024];
    publisher_detach(p->pub);
    mq_close(p->conn);
    p->conn = NULL;
    for (unsigned attempt = 0; !shutdown_requested && mono_us() < deadline_us; attempt++) {
        p->conn = mq_connect_any(&p->urls, &p->next_url, (int)p->settings->heartbeat, 5000, err,
                                 sizeof err);
        if (p->conn && publisher_attach(p->pub, p->conn, err, sizeof err) == 0) {
            log_info("connected url=%s unconfirmed_republished=%zu", mq_url(p->conn),
                     publisher_outstanding(p->pub));
            return 0;
        }
        publisher_detach(p->pub);
        mq_close(p->conn);
        p->conn = NULL;
        long delay = backoff_ms(attempt, 200, 10000);
        log_warn("broker unavailable, retrying error=\"%s\" retry_in_ms=%ld", err, delay);
        sleep_interruptible_ms(delay);
    }
    return -1;
}

static int reconnect(producer *p)
{
    return reconnect_until(p, INT64_MAX);
}

/* Hands one event to the publisher, reconnecting as often as needed.
 * Returns 0 once taken, -1 if shutdown came first. */
static int publish_event(producer *p, source_run *r, const source_event *ev)
{
    char err[1024];
    pub_message m = {.routing_key = r->routing_key,
                     .message_id = ev->msg_id,
                     .source = r->name,
                     .body = ev->body,
                     .body_len = ev->len,
                     .produced_at_us = now_us()};
    while (publisher_publish(p->pub, &m, err, sizeof err) != 0) {
        if (shutdown_requested)
            return -1;
        log_warn("connection lost error=\"%s\"", err);
        if (reconnect(p) != 0)
            return -1;
    }
    return 0;
}

static void log_progress(producer *p, const char *what)
{
    const publisher_stats *st = publisher_get_stats(p->pub);
    double elapsed = (double)(mono_us() - p->started_us) / 1e6;
    log_info("%s published=%" PRIu64 " confirmed=%" PRIu64 " outstanding=%zu returned=%" PRIu64
             " republished=%" PRIu64 " elapsed_s=%.1f rate=%.0f/s",
             what, st->taken, st->confirmed, publisher_outstanding(p->pub), st->returned,
             st->republished, elapsed, elapsed > 0 ? (double)st->confirmed / elapsed : 0.0);
}

/* One pass over the sources: each due source offers one event. Returns the
 * number of sources still running; *wait_us is how long until one is due. */
static size_t produce_round(producer *p, int64_t *wait_us, int *failed)
{
    const producer_settings *s = p->settings;
    size_t active = 0;
    int64_t now = mono_us();
    *wait_us = 100000;
    for (size_t i = 0; i < p->nruns && !shutdown_requested; i++) {
        source_run *r = &p->runs[i];
        if (r->done)
            continue;
        active++;
        if (s->rate > 0) {
            int64_t due = p->started_us + (int64_t)(r->produced * 1000000 / (uint64_t)s->rate);
            if (due > now) {
                if (due - now < *wait_us)
                    *wait_us = due - now;
                continue;
            }
        }
        *wait_us = 0;
        source_event ev;
        char err[1024];
        adapter_result res = r->adapter->next(r->state, &ev, err, sizeof err);
        if (res == ADAPTER_END) {
            r->done = 1;
            log_info("source finished source=%s produced=%" PRIu64, r->name, r->produced);
        } else if (res == ADAPTER_ERROR) {
            r->done = 1;
            *failed = 1;
            log_error("source failed source=%s error=\"%s\"", r->name, err);
        } else if (res == ADAPTER_EVENT) {
            if (ev.len > (size_t)s->max_message_bytes) {
                r->skipped++;
                log_error("event over max_message_bytes skipped source=%s position=%" PRIu64
                          " bytes=%zu",
                          r->name, ev.position, ev.len);
                continue;
            }
            if (publish_event(p, r, &ev) != 0)
                break;
            r->produced++;
            r->last_position = ev.position;
        }
    }
    return active;
}

static void run_sources(producer *p, int *failed)
{
    const producer_settings *s = p->settings;
    int64_t deadline = s->duration ? p->started_us + s->duration * 1000000 : INT64_MAX;
    int64_t next_progress = p->started_us + s->progress_interval_ms * 1000;
    char err[1024];
    unsigned rounds = 0;
    while (!shutdown_requested) {
        int64_t wait_us;
        if (produce_round(p, &wait_us, failed) == 0 || mono_us() >= deadline)
            break;
        /* Read confirms as they come so the window rarely fills. */
        if (wait_us > 0 || ++rounds % 64 == 0) {
            if (publisher_poll(p->pub, (long)(wait_us / 1000), err, sizeof err) != 0) {
                log_warn("connection lost error=\"%s\"", err);
                if (reconnect(p) != 0)
                    break;
            }
        }
        if (s->progress_interval_ms && mono_us() >= next_progress) {
            log_progress(p, "progress");
            next_progress = mono_us() + s->progress_interval_ms * 1000;
        }
    }
}

/* Waits for every taken event to be confirmed, reconnecting if needed, for
 * at most shutdown_timeout_ms. Returns 0 if all are confirmed. */
static int drain(producer *p)
{
    char err[1024];
    int64_t deadline = mono_us() + p->settings->shutdown_timeout_ms * 1000;
    /* A second SIGTERM should not cut the drain short: the deadline bounds it. */
    shutdown_requested = 0;
    while (publisher_outstanding(p->pub) > 0) {
        long left_ms = (long)((deadline - mono_us()) / 1000);
        if (left_ms <= 0)
            break;
        int rc = p->conn ? publisher_drain(p->pub, left_ms, err, sizeof err) : -1;
        if (rc == -1) {
            log_warn("connection lost while draining error=\"%s\"", err);
            if (reconnect_until(p, deadline) != 0)
                break;
        }
    }
    if (publisher_outstanding(p->pub) > 0) {
        log_error("stopping with unconfirmed events unconfirmed=%zu: they may be missing from "
                  "the broker; run again with the same seed to republish them",
                  publisher_outstanding(p->pub));
        return -1;
    }
    for (size_t i = 0; i < p->nruns; i++) {
        source_run *r = &p->runs[i];
        if (r->adapter->checkpoint && r->produced &&
            r->adapter->checkpoint(r->state, r->last_position, err, sizeof err) != 0)
            log_error("checkpoint failed source=%s error=\"%s\"", r->name, err);
    }
    return 0;
}

static int open_sources(producer *p, const strlist *names)
{
    const producer_settings *s = p->settings;
    const adapter_class *adapter = adapter_find(s->adapter);
    if (!adapter) {
        fprintf(stderr, "%s: unknown adapter '%s' (known: %s)\n", program, s->adapter,
                adapter_names());
        return EXIT_USAGE;
    }
    p->runs = calloc(names->count, sizeof *p->runs);
    if (!p->runs)
        return EXIT_RUNTIME;
    for (size_t i = 0; i < names->count; i++) {
        const char *name = names->items[i];
        if (*s->source && strcmp(s->source, name) != 0)
            continue;
        source_run *r = &p->runs[p->nruns];
        source_spec spec = {.name = name,
                            .kind = name,
                            .seed = (uint64_t)s->seed,
                            .count = (uint64_t)s->count};
        char err[1024];
        if (adapter->open(&r->state, &spec, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", program, err);
            return EXIT_USAGE;
        }
        r->name = name;
        r->adapter = adapter;
        snprintf(r->routing_key, sizeof r->routing_key, SLUICE_ROUTING_PREFIX "%s", name);
        p->nruns++;
    }
    if (p->nruns == 0) {
        fprintf(stderr, "%s: --source %s is not in sources (%s)\n", program, s->source,
                s->sources);
        return EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int main(int argc, char **argv)
{
    producer_settings s = {0};
    strlist names = {0};
    producer p = {.settings = &s};
    int failed = 0;
    int rc = cli_parse(producer_options, &s, argc, argv, program,
                       "Publishes events from source adapters to RabbitMQ with publisher "
                       "confirms.");
    if (rc == CLI_CONTINUE)
        rc = cli_init_log(program, "producer", s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp_tls(program, &s.amqp_tls);
    if (rc == CLI_CONTINUE)
        rc = cli_sources(program, "sources", s.sources, &names);
    if (rc == CLI_CONTINUE)
        rc = open_sources(&p, &names);
    if (rc == CLI_CONTINUE && (strlist_split(s.amqp_url, &p.urls) != 0 || p.urls.count == 0)) {
        fprintf(stderr, "%s: amqp_url is empty\n", program);
        rc = EXIT_USAGE;
    }
    if (rc == CLI_CONTINUE) {
        p.pub = publisher_new(SLUICE_EXCHANGE_INGEST, "sluice-producer", (size_t)s.window);
        if (!p.pub)
            rc = EXIT_RUNTIME;
    }
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        p.started_us = mono_us();
        log_info("starting sources=%zu adapter=%s count=%ld rate=%ld window=%ld", p.nruns,
                 s.adapter, s.count, s.rate, s.window);
        if (reconnect(&p) == 0)
            run_sources(&p, &failed);
        if (shutdown_requested)
            log_info("stopping on signal: no new events, waiting for confirms");
        if (drain(&p) != 0)
            failed = 1;
        log_progress(&p, "done");
        rc = failed ? EXIT_RUNTIME : 0;
    }
    for (size_t i = 0; i < p.nruns; i++)
        p.runs[i].adapter->close(p.runs[i].state);
    free(p.runs);
    publisher_detach(p.pub);
    publisher_free(p.pub);
    mq_close(p.conn);
    strlist_free(&p.urls);
    strlist_free(&names);
    cfg_free(producer_options, &s);
    return rc;
}
