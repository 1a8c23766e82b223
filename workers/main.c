/*
 * sluice-worker: a pool of worker processes that consume the source queues
 * and store the events in the PostgreSQL warehouse.
 *
 *   --mode unified  --workers N   N processes, each consuming every source queue
 *   --mode parallel --workers N   N processes per source queue, each bound to one
 *
 * A supervisor forks the workers, restarts a crashed one with backoff,
 * passes SIGTERM/SIGINT on, and serves /metrics and /healthz for the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "event.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "rules.h"
#include "settings.h"
#include "supervisor.h"
#include "worker.h"

/* The pool's two shapes: unified (each worker consumes every source queue)
 * and parallel (each worker is bound to one source queue). */
enum { MODE_UNIFIED, MODE_PARALLEL };
static const char *const mode_names[] = {"unified", "parallel", NULL};

/* The pool's own settings, plus each worker's (the table fills `worker`
 * directly; amqp_urls and pg_dsn are set from the strings after parsing). */
typedef struct worker_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    char *sources;
    int mode; /* MODE_UNIFIED or MODE_PARALLEL */
    long workers;
    worker_config worker;
    long shutdown_timeout_ms;
    char *metrics_address;
    long metrics_port;
    int log_level; /* log_level (log.h) */
    char *rules;
} worker_settings;

static const cfg_option worker_options[] = {
    SETTING_AMQP_URL(worker_settings),
    SETTING_AMQP_TLS(worker_settings),
    SETTING_PG_DSN(worker_settings),
    SETTING_SOURCES(worker_settings),
    {"mode", CFG_ENUM, offsetof(worker_settings, mode), "unified", 0, 0,
     "unified: each worker consumes every source queue; parallel: each worker is bound to one "
     "source queue",
     mode_names},
    {"workers", CFG_INT, offsetof(worker_settings, workers), "1", 1, 256,
     "worker processes: in all (unified) or per source queue (parallel)", NULL},
    {"prefetch", CFG_INT, offsetof(worker_settings, worker.prefetch), "2000", 1, 65535,
     "unacknowledged deliveries per queue and worker (AMQP basic.qos)", NULL},
    {"batch_size", CFG_INT, offsetof(worker_settings, worker.batch_size), "1000", 1, 100000,
     "events per transaction", NULL},
    {"batch_max_bytes", CFG_INT, offsetof(worker_settings, worker.batch_max_bytes), "8388608",
     65536, 1073741824,
     "bytes of events per transaction: a batch is committed once it holds this much (memory "
     "bound: see the README)",
     NULL},
    {"flush_interval_ms", CFG_INT, offsetof(worker_settings, worker.flush_interval_ms), "50", 1,
     60000, "commit a partial batch once its oldest event waited this long", NULL},
    SETTING_HEARTBEAT(worker_settings, worker.heartbeat),
    SETTING_MAX_MESSAGE_BYTES(worker_settings, worker.max_message_bytes,
                              "larger bodies go to ingest_errors as too_large"),
    {"max_retries", CFG_INT, offsetof(worker_settings, worker.max_retries), "5", 1, 1000,
     "attempts to store a message that keeps failing before it goes to sluice.dead", NULL},
    {"stats_interval_ms", CFG_INT, offsetof(worker_settings, worker.stats_interval_ms), "10000", 0,
     3600000, "log a progress line this often; 0 = never", NULL},
    {"idle_exit_ms", CFG_INT, offsetof(worker_settings, worker.idle_exit_ms), "0", 0, 86400000,
     "a worker exits 0 once no event arrived for this long (drain, then stop); 0 = never", NULL},
    {"shutdown_timeout_ms", CFG_INT, offsetof(worker_settings, shutdown_timeout_ms), "30000", 100,
     3600000, "after SIGTERM, kill workers that have not stopped within this time", NULL},
    {"metrics_address", CFG_STRING, offsetof(worker_settings, metrics_address), "127.0.0.1", 0, 0,
     "IPv4 address for /metrics and /healthz", NULL},
    {"metrics_port", CFG_INT, offsetof(worker_settings, metrics_port), "9650", 0, 65535,
     "port for /metrics and /healthz; 0 = off", NULL},
    SETTING_LOG_LEVEL(worker_settings),
    {"rules", CFG_STRING, offsetof(worker_settings, rules), NULL, 0, 0,
     "rules file (JSON) evaluated on each committed event; alerts go to sluice.alerts", NULL},
    CFG_END,
};

static const char program[] = "sluice-worker";

/* Everything a child needs, set up before the first fork. */
typedef struct pool {
    const worker_settings *settings;
    worker_config config;
    strlist all_sources;
    strlist *child_sources; /* per child: the queues it consumes */
    size_t children;
    metrics *m;
    httpd *http; /* the supervisor's; children close its socket */
    rule_set *rules;     /* in force for children started now; owned */
    log_level level;
} pool;

/* The pages of the supervisor's endpoint: the pool's shared counters. */
static void render_metrics(void *m, FILE *out)
{
    metrics_render(m, out);
}

static int ready(void *m, char *why, size_t whylen)
{
    return metrics_ready(m, why, whylen);
}

static void serve_http(void *arg, long ms)
{
    httpd_serve(((pool *)arg)->http, ms);
}

/* SIGHUP in the supervisor: checks the rules file before any worker
 * re-reads it, so a refusal is logged once for the pool, and keeps the new
 * rules for workers started from now on (a restarted one). */
static int reload_pool(void *arg)
{
    pool *p = arg;
    const char *path = p->settings->rules;
    if (!path || !*path) {
        log_info("SIGHUP: no rules file to re-read");
        return -1;
    }
    char err[1024];
    rule_set *rs = rules_load(path, err, sizeof err);
    if (!rs) {
        log_error("rules reload refused, the rules in force stay: %s", err);
        return -1;
    }
    rules_free(p->rules);
    p->rules = rs;
    p->config.rules = rs;
    log_info("rules reloaded file=%s rules=%zu", path, rules_count(rs));
    return 0;
}

static int run_child(size_t index, void *arg)
{
    pool *p = arg;
    reload_requested = 0; /* a new child has the newest rules already */
    httpd_forget_in_child(p->http);
    static char component[32];
    snprintf(component, sizeof component, "worker.%zu", index);
    log_init(component, p->level);
    return worker_run(&p->config, &p->child_sources[index], p->m, index);
}

/* Unified: every child gets all sources. Parallel: child i gets source
 * i / workers, so each queue has `workers` children. Every child also
 * consumes sluice.q.unrouted (the last name of its list), where events no
 * source queue took wait to be recorded as unknown_source: rare, so one
 * more idle consumer per child costs nothing, and any child can take them. */
static int plan_children(pool *p)
{
    const worker_settings *s = p->settings;
    int parallel = s->mode == MODE_PARALLEL;
    size_t nsources = p->all_sources.count - 1; /* without the unrouted queue */
    p->children = parallel ? nsources * (size_t)s->workers : (size_t)s->workers;
    p->child_sources = calloc(p->children, sizeof *p->child_sources);
    if (!p->child_sources)
        return -1;
    for (size_t i = 0; i < p->children; i++) {
        strlist *mine = &p->child_sources[i];
        for (size_t k = 0; k < nsources; k++) {
            if (parallel && k != i / (size_t)s->workers)
                continue;
            if (strlist_push(mine, p->all_sources.items[k]) != 0)
                return -1;
        }
        if (strlist_push(mine, SLUICE_UNROUTED_NAME) != 0)
            return -1;
    }
    return 0;
}

static void free_pool(pool *p)
{
    for (size_t i = 0; p->child_sources && i < p->children; i++)
        strlist_free(&p->child_sources[i]);
    free(p->child_sources);
    strlist_free(&p->all_sources);
    metrics_free(p->m);
    rules_free(p->rules);
}

static int run_pool(pool *p)
{
    const worker_settings *s = p->settings;
    char err[512];
    if (s->metrics_port) {
        const httpd_handlers pages = {render_metrics, ready, p->m};
        p->http = httpd_start(s->metrics_address, s->metrics_port, HTTPD_CALLER_POLLS, &pages, err,
                              sizeof err);
        if (!p->http) {
            log_error("%s", err);
            return EXIT_RUNTIME;
        }
    }
    log_info("starting pool mode=%s workers=%zu sources=%zu metrics=%s:%ld", mode_names[s->mode],
             p->children, p->all_sources.count - 1, s->metrics_address, s->metrics_port);
    supervisor_config sc = {.children = p->children,
                            .run = run_child,
                            .arg = p,
                            .m = p->m,
                            .restart_base_ms = 500,
                            .restart_max_ms = 30000,
                            .shutdown_timeout_ms = s->shutdown_timeout_ms,
                            .wait = serve_http,
                            .wait_arg = p,
                            .reload = reload_pool};
    int rc = supervisor_run(&sc);
    httpd_stop(p->http);
    log_info("pool stopped clean=%s stored=%llu duplicates=%llu rejected=%llu "
             "dead_lettered=%llu",
             rc == 0 ? "yes" : "no", (unsigned long long)metrics_total(p->m, COUNT_STORED),
             (unsigned long long)metrics_total(p->m, COUNT_DUPLICATES),
             (unsigned long long)metrics_total(p->m, COUNT_REJECTED),
             (unsigned long long)metrics_total(p->m, COUNT_DEAD_LETTERED));
    return rc == 0 ? 0 : EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
    worker_settings s = {0};
    strlist urls = {0};
    pool p = {.settings = &s};
    int rc = cli_parse(worker_options, &s, argc, argv, program,
                       "Consumes the source queues and stores the events in the PostgreSQL "
                       "warehouse, with a pool of worker processes.");
    if (rc == CLI_CONTINUE)
        log_init("supervisor", (log_level)s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &urls);
    if (rc == CLI_CONTINUE)
        rc = cli_sources(program, argc, argv, s.sources, &p.all_sources);
    /* Counted in /metrics as a source of its own (source="unrouted"). */
    if (rc == CLI_CONTINUE && strlist_push(&p.all_sources, SLUICE_UNROUTED_NAME) != 0) {
        fprintf(stderr, "%s: out of memory\n", program);
        rc = EXIT_RUNTIME;
    }
    if (rc == CLI_CONTINUE && s.rules && *s.rules) {
        char err[1024];
        if (!(p.rules = rules_load(s.rules, err, sizeof err))) {
            fprintf(stderr, "%s: %s\n", program, err);
            rc = EXIT_USAGE;
        } else {
            log_info("rules loaded file=%s rules=%zu", s.rules, rules_count(p.rules));
        }
    }
    if (rc == CLI_CONTINUE) {
        p.level = (log_level)s.log_level;
        p.config = s.worker;
        p.config.amqp_urls = &urls;
        p.config.pg_dsn = s.pg_dsn;
        p.config.rules = p.rules;
        p.config.rules_path = p.rules ? s.rules : NULL;
        if (plan_children(&p) != 0 || !(p.m = metrics_create(p.children, &p.all_sources))) {
            log_error("out of memory planning the pool");
            rc = EXIT_RUNTIME;
        }
    }
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        reload_install();
        rc = run_pool(&p);
    }
    free_pool(&p);
    strlist_free(&urls);
    cfg_free(worker_options, &s);
    return rc;
}
