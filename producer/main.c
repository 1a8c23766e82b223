/*
 * sluice-producer: reads events from source adapters and publishes them to
 * sluice.ingest per the message contract, with publisher confirms.
 *
 * Modular mode runs every source of the configuration in one process;
 * distributed mode (--source NAME) runs just one. Either way each source
 * has a reader thread of its own (reader.h) that pulls events from its
 * adapter, checks them and puts them into its bounded queue in the hub; a
 * slow or failing source therefore stalls nobody else. This file is the
 * process: settings, sources, and the main thread, which takes events from
 * the queues in turn and publishes them with a window of unconfirmed
 * messages. When the broker is unreachable the main thread reconnects with
 * backoff round the URL list and republishes what was not confirmed, while
 * the queues fill and the readers wait: backpressure instead of growing or
 * dropping.
 *
 * Checkpoints: the publisher tells the main thread, in order, which
 * positions are confirmed (reader_confirmed); each reader hands the latest
 * to its adapter's checkpoint() now and then, and once more at the end. A
 * checkpoint thus never covers an event the broker has not confirmed.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "cli.h"
#include "event.h"
#include "hub.h"
#include "log.h"
#include "publisher.h"
#include "reader.h"
#include "settings.h"
#include "sources.h"

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
    long window_bytes;
    long buffer;
    long buffer_bytes;
    long heartbeat;
    long shutdown_timeout_ms;
    long checkpoint_interval_ms;
    long progress_interval_ms;
    long max_message_bytes;
    char *checkpoint_dir;
    int log_level; /* log_level (log.h) */
} producer_settings;

static const cfg_option producer_options[] = {
    SETTING_AMQP_URL(producer_settings),
    SETTING_AMQP_TLS(producer_settings),
    SETTING_SOURCES(producer_settings),
    {"source", CFG_STRING, offsetof(producer_settings, source), "", 0, 0,
     "run only this source (distributed mode); empty runs them all (modular mode)", NULL},
    {"adapter", CFG_STRING, offsetof(producer_settings, adapter), "generator", 0, 0,
     "adapter of the `sources` list when the config file has no [source NAME] sections "
     "(generator: the source name is its kind)",
     NULL},
    {"count", CFG_INT, offsetof(producer_settings, count), "10000", 0, 1L << 40,
     "generator: events per source; 0 = until stopped", NULL},
    {"rate", CFG_INT, offsetof(producer_settings, rate), "0", 0, 10000000,
     "events per second per source unless its section sets rate; 0 = no limit", NULL},
    {"duration", CFG_INT, offsetof(producer_settings, duration), "0", 0, 31536000,
     "stop after this many seconds; 0 = no limit", NULL},
    {"seed", CFG_INT, offsetof(producer_settings, seed), "1", 0, 1L << 62,
     "generator: the same seed makes the same events and message ids", NULL},
    {"window", CFG_INT, offsetof(producer_settings, window), "1024", 1, 1000000,
     "unconfirmed messages in flight before publishing waits (memory bound)", NULL},
    {"window_bytes", CFG_INT, offsetof(producer_settings, window_bytes), "16777216", 65536,
     1L << 40, "bytes of unconfirmed bodies in flight before publishing waits (memory bound)",
     NULL},
    {"buffer", CFG_INT, offsetof(producer_settings, buffer), "1000", 1, 1000000,
     "events read ahead per source; when full the source is not read (backpressure)", NULL},
    {"buffer_bytes", CFG_INT, offsetof(producer_settings, buffer_bytes), "4194304", 65536, 1L << 40,
     "bytes of events read ahead per source; when full the source is not read", NULL},
    SETTING_HEARTBEAT(producer_settings, heartbeat),
    {"shutdown_timeout_ms", CFG_INT, offsetof(producer_settings, shutdown_timeout_ms), "30000", 0,
     3600000, "how long to wait for outstanding confirms when stopping", NULL},
    {"checkpoint_interval_ms", CFG_INT, offsetof(producer_settings, checkpoint_interval_ms), "1000",
     10, 3600000, "how often confirmed positions are saved (file adapter)", NULL},
    {"progress_interval_ms", CFG_INT, offsetof(producer_settings, progress_interval_ms), "1000", 0,
     3600000, "log a progress line this often; 0 = never", NULL},
    SETTING_MAX_MESSAGE_BYTES(producer_settings, max_message_bytes,
                              "largest event body published; larger ones are reported and skipped"),
    {"checkpoint_dir", CFG_STRING, offsetof(producer_settings, checkpoint_dir), ".", 0, 0,
     "directory of the adapters' checkpoints (file: <checkpoint_dir>/<source>.offset)", NULL},
    SETTING_LOG_LEVEL(producer_settings),
    CFG_END,
};

static const char program[] = "sluice-producer";

/* The process: its settings and sources, the connection and publisher, and
 * the hub its reader threads (reader.h) fill. */
typedef struct producer {
    const producer_settings *settings;
    cfg_sections sections; /* of the config file: the defs point into them */
    source_defs defs;
    int curl_ready;
    strlist urls;
    size_t next_url;
    mq_conn *conn;
    publisher *pub;
    hub *hub;
    event_validator *validator;
    source_run *runs;
    size_t nruns;
    atomic_int stop; /* readers stop reading */
    int64_t started_us;
    hub_item pending; /* taken from the hub, not yet by the publisher */
    int has_pending;
} producer;

/* ------------------------------------------------------------- publishing */

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

/* Hands the pending event to the publisher, reconnecting as needed until
 * deadline_us. Returns 0 once taken, -1 if shutdown or the deadline came
 * first (the event stays pending). */
static int publish_pending(producer *p, int64_t deadline_us)
{
    char err[1024];
    hub_item *it = &p->pending;
    source_run *r = &p->runs[it->source];
    pub_message m = {.routing_key = r->routing_key,
                     .message_id = it->msg_id,
                     .source = r->def->name,
                     .body = it->body,
                     .body_len = it->len,
                     .produced_at_us = now_us(),
                     .owner = r,
                     .position = it->position};
    for (;;) {
        if (p->conn && !publisher_has_room(p->pub, it->len)) {
            /* Wait for room here, where the deadline is known. */
            long left = (long)((deadline_us - mono_us()) / 1000);
            if (left <= 0 || shutdown_requested)
                return -1;
            if (publisher_poll(p->pub, left < 200 ? left : 200, err, sizeof err) == 0)
                continue;
        } else if (p->conn && publisher_publish(p->pub, &m, err, sizeof err) == 0) {
            hub_item_free(it);
            p->has_pending = 0;
            return 0;
        }
        if (shutdown_requested || mono_us() >= deadline_us)
            return -1;
        log_warn("connection lost error=\"%s\"", p->conn ? err : "not connected");
        if (reconnect_until(p, deadline_us) != 0)
            return -1;
    }
}

static uint64_t total_skipped(producer *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nruns; i++)
        n += atomic_load(&p->runs[i].skipped);
    return n;
}

static void log_progress(producer *p, const char *what)
{
    const publisher_stats *st = publisher_get_stats(p->pub);
    double elapsed = (double)(mono_us() - p->started_us) / 1e6;
    log_info("%s published=%" PRIu64 " confirmed=%" PRIu64 " outstanding=%zu buffered=%zu "
             "skipped=%" PRIu64 " returned=%" PRIu64 " republished=%" PRIu64
             " elapsed_s=%.1f rate=%.0f/s",
             what, st->taken, st->confirmed, publisher_outstanding(p->pub), hub_buffered(p->hub),
             total_skipped(p), st->returned, st->republished, elapsed,
             elapsed > 0 ? (double)st->confirmed / elapsed : 0.0);
}

/* Says in one line which sources have no queue, and whether their events
 * are kept anyway (sluice.q.unrouted, recorded as unknown_source) or held
 * unconfirmed until a queue exists. Only a report: publishing goes on. */
static void report_missing_queues(producer *p)
{
    strlist queues = {0};
    int *missing = calloc(p->nruns + 1, sizeof *missing);
    char err[1024], names[2048] = "";
    size_t nmissing = 0, used = 0;
    for (size_t i = 0; missing && i <= p->nruns; i++) {
        char q[128];
        snprintf(q, sizeof q, SLUICE_QUEUE_PREFIX "%s",
                 i < p->nruns ? p->runs[i].def->name : SLUICE_UNROUTED_NAME);
        if (strlist_push(&queues, q) != 0)
            goto done;
    }
    if (!missing || queues.count != p->nruns + 1)
        goto done;
    if (mq_queues_missing(p->conn, &queues, missing, err, sizeof err) != 0) {
        log_warn("could not look for the sources' queues error=\"%s\"", err);
        goto done;
    }
    for (size_t i = 0; i < p->nruns; i++) {
        if (!missing[i])
            continue;
        int w = snprintf(names + used, sizeof names - used, "%s%s", nmissing ? "," : "",
                         p->runs[i].def->name);
        if (w > 0 && (size_t)w < sizeof names - used)
            used += (size_t)w;
        nmissing++;
    }
    if (nmissing == 0)
        log_debug("every source has its queue");
    else if (!missing[p->nruns])
        log_warn("sources without a queue: %s (their events go to " SLUICE_QUEUE_UNROUTED
                 " and are recorded in ingest_errors as unknown_source; run sluice-setup with "
                 "this config to give them queues)",
                 names);
    else
        log_warn("sources without a queue: %s, and no " SLUICE_QUEUE_UNROUTED " either: their "
                 "events are returned by the broker, held unconfirmed and published again until "
                 "a queue exists (run sluice-setup with this config)",
                 names);
done:
    free(missing);
    strlist_free(&queues);
}

/* The main loop: publish what the readers buffer until every source ended,
 * the duration passed or a signal came. */
static void run_sources(producer *p)
{
    const producer_settings *s = p->settings;
    int64_t deadline = s->duration ? p->started_us + s->duration * 1000000 : INT64_MAX;
    int64_t next_progress = p->started_us + s->progress_interval_ms * 1000;
    char err[1024];
    unsigned published = 0;
    uint64_t last_confirmed = 0, last_taken = 0;
    while (!shutdown_requested && mono_us() < deadline) {
        if (!p->has_pending)
            p->has_pending = hub_take(p->hub, &p->pending, 0);
        if (p->has_pending) {
            if (publish_pending(p, INT64_MAX) != 0)
                break;
            /* Read confirms as they come so the window rarely fills. */
            if (++published % 64 != 0)
                continue;
            if (publisher_poll(p->pub, 0, err, sizeof err) != 0) {
                log_warn("connection lost error=\"%s\"", err);
                if (reconnect_until(p, INT64_MAX) != 0)
                    break;
            }
        } else if (hub_done(p->hub)) {
            break;
        } else if (publisher_outstanding(p->pub) == 0) {
            /* Nothing to be confirmed: wait on the hub, so an event that
             * comes now goes out at once (a waiting HTTP client sees the
             * difference), and look at the connection without waiting. */
            p->has_pending = hub_take(p->hub, &p->pending, 20);
            if (!p->has_pending && publisher_poll(p->pub, 0, err, sizeof err) != 0) {
                log_warn("connection lost error=\"%s\"", err);
                if (reconnect_until(p, INT64_MAX) != 0)
                    break;
            }
        } else if (publisher_poll(p->pub, 20, err, sizeof err) != 0) {
            log_warn("connection lost error=\"%s\"", err);
            if (reconnect_until(p, INT64_MAX) != 0)
                break;
        }
        if (s->progress_interval_ms && mono_us() >= next_progress) {
            /* An idle producer does not repeat the same line forever. */
            const publisher_stats *st = publisher_get_stats(p->pub);
            if (st->confirmed != last_confirmed || st->taken != last_taken)
                log_progress(p, "progress");
            last_confirmed = st->confirmed;
            last_taken = st->taken;
            next_progress = mono_us() + s->progress_interval_ms * 1000;
        }
    }
}

/* Stops the readers, publishes what they had buffered and waits for every
 * confirm, for at most shutdown_timeout_ms. Returns 0 if nothing is left
 * unconfirmed. */
static int drain(producer *p)
{
    char err[1024];
    int64_t deadline = mono_us() + p->settings->shutdown_timeout_ms * 1000;
    atomic_store(&p->stop, 1);
    hub_wake(p->hub);
    for (size_t i = 0; i < p->nruns; i++) {
        if (p->runs[i].started)
            pthread_join(p->runs[i].thread, NULL);
        p->runs[i].started = 0;
    }
    /* A second SIGTERM should not cut the drain short: the deadline bounds it. */
    shutdown_requested = 0;
    while (mono_us() < deadline) {
        if (!p->has_pending)
            p->has_pending = hub_take(p->hub, &p->pending, 0);
        if (p->has_pending) {
            if (publish_pending(p, deadline) != 0)
                break;
            continue;
        }
        if (publisher_outstanding(p->pub) == 0)
            break;
        long left_ms = (long)((deadline - mono_us()) / 1000);
        int rc = p->conn ? publisher_drain(p->pub, left_ms > 0 ? left_ms : 1, err, sizeof err) : -1;
        if (rc == -1) {
            log_warn("connection lost while draining error=\"%s\"",
                     p->conn ? err : "not connected");
            if (reconnect_until(p, deadline) != 0)
                break;
        }
    }
    size_t unsent = hub_buffered(p->hub) + (size_t)p->has_pending;
    int rc = 0;
    if (publisher_outstanding(p->pub) > 0 || unsent > 0) {
        log_error("stopping with events not confirmed by the broker unconfirmed=%zu unsent=%zu: "
                  "checkpoints do not cover them, so a file source reads them again; generator "
                  "sources make them again with the same seed",
                  publisher_outstanding(p->pub), unsent);
        rc = -1;
    }
    for (size_t i = 0; i < p->nruns; i++)
        reader_save_checkpoint(&p->runs[i], 1);
    return rc;
}

/* ---------------------------------------------------------------- set-up */

static int open_sources(producer *p, const source_defs *defs, const char *config_file)
{
    const producer_settings *s = p->settings;
    p->runs = calloc(defs->count, sizeof *p->runs);
    if (!p->runs)
        return EXIT_RUNTIME;
    for (size_t i = 0; i < defs->count; i++) {
        const source_def *d = &defs->items[i];
        source_run *r = &p->runs[i];
        r->index = i;
        r->stop = &p->stop;
        r->checkpoint_interval_ms = s->checkpoint_interval_ms;
        r->def = d;
        snprintf(r->routing_key, sizeof r->routing_key, SLUICE_ROUTING_PREFIX "%s", d->name);
        r->spec = (source_spec){.name = d->name,
                                .settings = d->settings,
                                .nsettings = d->nsettings,
                                .used = d->used,
                                .file = d->line ? config_file : NULL,
                                .line = d->line,
                                .default_seed = (uint64_t)s->seed,
                                .default_count = (uint64_t)s->count,
                                .checkpoint_dir = s->checkpoint_dir,
                                .stop = &p->stop,
                                .rate = d->rate,
                                .max_message_bytes = (size_t)s->max_message_bytes};
        char err[1024];
        if (adapter_open(d->adapter, &r->spec, &r->state, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", program, err);
            p->nruns = i + 1; /* so the caller closes this one too */
            return EXIT_USAGE;
        }
        p->nruns = i + 1;
    }
    return CLI_CONTINUE;
}

/* Everything that can be bad usage or config (exit 2), and what must be
 * ready before the reader threads start. */
static int set_up(producer *p, int argc, char **argv)
{
    const producer_settings *s = p->settings;
    char err[1024];
    log_init("producer", (log_level)s->log_level);
    int rc = cli_amqp(program, s->amqp_url, &s->amqp_tls, &p->urls);
    if (rc == CLI_CONTINUE && (cfg_read_sections(argc, argv, &p->sections, err, sizeof err) != 0 ||
                               source_defs_build(&p->sections, s->sources, s->adapter, s->rate,
                                                 s->source, &p->defs, err, sizeof err) != 0)) {
        fprintf(stderr, "%s: %s\n", program, err);
        rc = EXIT_USAGE;
    }
    if (rc == CLI_CONTINUE) {
        /* libcurl's global set-up is not thread-safe: once, before threads. */
        p->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        if (!p->curl_ready) {
            fprintf(stderr, "%s: libcurl initialisation failed\n", program);
            rc = EXIT_RUNTIME;
        }
    }
    if (rc == CLI_CONTINUE)
        rc = open_sources(p, &p->defs, p->sections.path);
    if (rc == CLI_CONTINUE) {
        p->pub = publisher_new(SLUICE_EXCHANGE_INGEST, "sluice-producer", (size_t)s->window);
        p->hub = hub_new(p->nruns, (size_t)s->buffer, (size_t)s->buffer_bytes);
        p->validator = event_validator_new((size_t)s->max_message_bytes);
        if (!p->pub || !p->hub || !p->validator) {
            fprintf(stderr, "%s: out of memory\n", program);
            rc = EXIT_RUNTIME;
        }
    }
    for (size_t i = 0; rc == CLI_CONTINUE && i < p->nruns; i++) {
        p->runs[i].hub = p->hub;
        p->runs[i].validator = p->validator;
    }
    return rc;
}

/* Reads and publishes until every source ended, the duration passed or a
 * signal came, then drains. Returns the exit code. */
static int run(producer *p)
{
    const producer_settings *s = p->settings;
    int failed = 0;
    publisher_on_confirm(p->pub, reader_confirmed, p);
    publisher_set_window_bytes(p->pub, (size_t)s->window_bytes);
    publisher_hold_returned(p->pub);
    shutdown_install();
    p->started_us = mono_us();
    log_info("starting sources=%zu mode=%s window=%ld window_bytes=%ld buffer=%ld "
             "buffer_bytes=%ld",
             p->nruns, *s->source ? "distributed" : "modular", s->window, s->window_bytes,
             s->buffer, s->buffer_bytes);
    if (readers_start(p->runs, p->nruns) != 0)
        failed = 1;
    else if (reconnect_until(p, INT64_MAX) == 0) {
        report_missing_queues(p);
        run_sources(p);
    }
    if (shutdown_requested)
        log_info("stopping on signal: no new events, waiting for confirms");
    if (drain(p) != 0)
        failed = 1;
    for (size_t i = 0; i < p->nruns; i++) {
        source_run *r = &p->runs[i];
        failed |= atomic_load(&r->failed);
        log_info("source summary source=%s read=%" PRIu64 " confirmed=%" PRIu64 " skipped=%" PRIu64
                 " failed=%s",
                 r->def->name, atomic_load(&r->read), atomic_load(&r->confirmed),
                 atomic_load(&r->skipped), atomic_load(&r->failed) ? "yes" : "no");
    }
    log_progress(p, "done");
    return failed ? EXIT_RUNTIME : 0;
}

/* Frees what set_up() and run() made; accepts a half-built producer. */
static void tear_down(producer *p)
{
    for (size_t i = 0; i < p->nruns; i++) {
        if (p->runs[i].started)
            pthread_join(p->runs[i].thread, NULL);
        p->runs[i].def->adapter->close(p->runs[i].state);
    }
    if (p->has_pending)
        hub_item_free(&p->pending);
    free(p->runs);
    hub_free(p->hub);
    event_validator_free(p->validator);
    publisher_detach(p->pub);
    publisher_free(p->pub);
    mq_close(p->conn);
    if (p->curl_ready)
        curl_global_cleanup();
    strlist_free(&p->urls);
    source_defs_free(&p->defs);
    cfg_sections_free(&p->sections);
}

int main(int argc, char **argv)
{
    producer_settings s = {0};
    producer p = {.settings = &s};
    int rc = cli_parse(producer_options, &s, argc, argv, program,
                       "Publishes events from source adapters to RabbitMQ with publisher "
                       "confirms.");
    if (rc == 0) { /* --help: the adapters' settings follow the producer's */
        putchar('\n');
        adapter_print_help(stdout);
    }
    if (rc == CLI_CONTINUE)
        rc = set_up(&p, argc, argv);
    if (rc == CLI_CONTINUE)
        rc = run(&p);
    tear_down(&p);
    cfg_free(producer_options, &s);
    return rc;
}
