/*
 * sluice-notifier: consumes alerts from sluice.q.notifier and delivers each
 * to the destinations its route names (log, webhook, telegram chats). The
 * consuming thread only plans: a batch of alerts becomes 'pending'
 * deliveries in PostgreSQL (the outbox, ledger.h) in one transaction, and
 * the batch is acknowledged once that commits. Each destination is served
 * by a thread of its own (destination.h), grouping chat alerts
 * (grouping.h), so one that is blocked holds back no other. A crash loses
 * nothing (what is acknowledged is committed) and sends nothing twice (the
 * outbox records every claim and outcome).
 *
 * SIGHUP re-reads the settings and applies the routes and the group_*
 * settings; a file with a mistake is refused with the line it would give at
 * start, and the routes in force stay.
 *
 * The Telegram bot token comes from SLUICE_TELEGRAM_TOKEN or the file named
 * by telegram_token_file: never from a flag, and it is never logged.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "consumer.h"
#include "delivery.h"
#include "event.h"
#include "grouping.h"
#include "httpd.h"
#include "ledger.h"
#include "log.h"
#include "mq.h"
#include "outage.h"
#include "routes.h"
#include "settings.h"

typedef struct notifier_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    long heartbeat;
    long prefetch;
    long batch_max_bytes;
    long max_message_bytes;
    char *routes;
    char *telegram_api_url;
    char *telegram_chat_id;
    char *telegram_token_file;
    long telegram_rate_per_chat;
    long telegram_rate_total;
    char *webhook_url;
    long max_attempts;
    long retry_base_ms;
    long retry_max_ms;
    long http_timeout_ms;
    char *group_by;
    long group_wait_ms;
    long group_interval_ms;
    long group_show;
    long group_max;
    char *metrics_address;
    long metrics_port;
    int log_level; /* log_level (log.h) */
} notifier_settings;

static const cfg_option notifier_options[] = {
    SETTING_AMQP_URL(notifier_settings),
    SETTING_AMQP_TLS(notifier_settings),
    SETTING_PG_DSN(notifier_settings),
    /* Longer than the other binaries': a Telegram retry_after wait holds
     * the connection idle, and two missed heartbeats would drop it. */
    SETTING_HEARTBEAT_DEFAULT(notifier_settings, heartbeat, "60"),
    {"prefetch", CFG_INT, offsetof(notifier_settings, prefetch), "100", 1, 65535,
     "unacknowledged alerts held at once; also the most planned in one transaction", NULL},
    /* What the consuming thread holds is the batch being planned: bounded
     * in bytes, not only in alerts, whatever the alerts' size. */
    {"batch_max_bytes", CFG_INT, offsetof(notifier_settings, batch_max_bytes), "1048576", 1024,
     1073741824,
     "bytes of alerts planned in one transaction: a batch ends at prefetch alerts or once it "
     "holds this many bytes",
     NULL},
    SETTING_MAX_MESSAGE_BYTES(notifier_settings, max_message_bytes,
                              "largest alert taken; a larger message is dead-lettered with the "
                              "reason (sluice's workers cut an alert's message to 16 KiB)"),
    {"routes", CFG_STRING, offsetof(notifier_settings, routes), "*=log", 0, 0,
     "where alerts go: PATTERN=CHANNEL[+CHANNEL];... with PATTERN SEVERITY[.RULE] (* matches "
     "any) and CHANNEL log, webhook, telegram or telegram:CHAT; first match wins",
     NULL},
    {"telegram_api_url", CFG_STRING, offsetof(notifier_settings, telegram_api_url),
     "https://api.telegram.org", 0, 0, "Bot API base URL (a self-hosted Bot API server, tests)",
     NULL},
    {"telegram_chat_id", CFG_STRING, offsetof(notifier_settings, telegram_chat_id), "", 0, 0,
     "chat for routes that say just 'telegram' (a chat id or @channel)", NULL},
    {"telegram_token_file", CFG_STRING, offsetof(notifier_settings, telegram_token_file), NULL, 0,
     0, "file holding the bot token (else env SLUICE_TELEGRAM_TOKEN; never a flag)", NULL},
    {"telegram_rate_per_chat", CFG_INT, offsetof(notifier_settings, telegram_rate_per_chat), "1", 1,
     1000, "messages per second to one chat", NULL},
    {"telegram_rate_total", CFG_INT, offsetof(notifier_settings, telegram_rate_total), "30", 1,
     10000, "messages per second to Telegram overall", NULL},
    {"webhook_url", CFG_SECRET, offsetof(notifier_settings, webhook_url), "", 0, 0,
     "URL the webhook channel POSTs each alert to (JSON)", NULL},
    {"max_attempts", CFG_INT, offsetof(notifier_settings, max_attempts), "6", 1, 100,
     "attempts per channel on 5xx or network errors before the alert is dead-lettered", NULL},
    {"retry_base_ms", CFG_INT, offsetof(notifier_settings, retry_base_ms), "500", 1, 600000,
     "first backoff after a 5xx or network error (doubles, with jitter)", NULL},
    {"retry_max_ms", CFG_INT, offsetof(notifier_settings, retry_max_ms), "30000", 1, 3600000,
     "longest backoff between attempts", NULL},
    {"http_timeout_ms", CFG_INT, offsetof(notifier_settings, http_timeout_ms), "10000", 100, 600000,
     "give up on one HTTP request after this long (then retry)", NULL},
    {"group_by", CFG_STRING, offsetof(notifier_settings, group_by), "rule", 0, 0,
     "chat channels: alerts of one destination and the same rule (and/or severity, source; "
     "comma-separated) share a message; 'alert': one message per alert",
     NULL},
    {"group_wait_ms", CFG_INT, offsetof(notifier_settings, group_wait_ms), "30000", 0, 86400000,
     "a group's first message waits this long after its first alert, to gather the burst", NULL},
    {"group_interval_ms", CFG_INT, offsetof(notifier_settings, group_interval_ms), "300000", 0,
     86400000, "then at most one message per group this often", NULL},
    {"group_show", CFG_INT, offsetof(notifier_settings, group_show), "5", 1, 1000,
     "alerts of a group listed in full in its message; the rest are counted", NULL},
    {"group_max", CFG_INT, offsetof(notifier_settings, group_max), "10000", 1, 1000000,
     "most alerts one message carries", NULL},
    {"metrics_address", CFG_STRING, offsetof(notifier_settings, metrics_address), "127.0.0.1", 0, 0,
     "address of the /metrics endpoint", NULL},
    {"metrics_port", CFG_INT, offsetof(notifier_settings, metrics_port), "9651", 0, 65535,
     "port of the /metrics endpoint; 0 = none", NULL},
    SETTING_LOG_LEVEL(notifier_settings),
    CFG_END,
};

static const char program[] = "sluice-notifier";

/* Reads the token from the environment or the file; NULL if neither. The
 * result is malloc'd; *err is set if the file cannot be read. */
static char *read_token(const char *file, char *err, size_t errlen)
{
    const char *env = getenv("SLUICE_TELEGRAM_TOKEN");
    if (env && *env && !(file && *file))
        return strdup(env);
    if (!file || !*file)
        return NULL;
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "telegram_token_file %s: %s", file, strerror(errno));
        return NULL;
    }
    char line[512] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n \t")] = '\0';
    if (!line[0]) {
        snprintf(err, errlen, "telegram_token_file %s: empty", file);
        return NULL;
    }
    return strdup(line);
}

/* What serve() holds while connected. */
typedef struct session {
    mq_conn *conn;
    consumer *c;
    ledger *l;
    int held; /* ended as a message could not be dead-lettered (DELIVERY_HELD) */
} session;

/* The one queue the notifier consumes, sluice.q.notifier, by its name. */
static char notifier_name[] = "notifier";
static char *notifier_names[] = {notifier_name};
static const strlist notifier_queue = {.items = notifier_names, .count = 1};

static const char summary[] =
    "Delivers alerts from sluice.q.notifier to the destinations of their route (log, webhook, "
    "telegram chats), each destination on its own, chat alerts grouped, and records each outcome "
    "in PostgreSQL.";

/* Whether sluice.q.notifier is consumed now, for /healthz and /metrics. */
static atomic_int queue_consumed;

/* The pages of /metrics and /healthz (httpd.h), served from their own
 * thread: the deliverer's counters and whether the queue is consumed. */
static void render_metrics(void *d, FILE *out)
{
    deliverer_render_metrics(d, out);
    fprintf(out,
            "# HELP sluice_notifier_queue_consumed Whether sluice.q.notifier is consumed now "
            "(0: queue missing or consumer cancelled).\n"
            "# TYPE sluice_notifier_queue_consumed gauge\n"
            "sluice_notifier_queue_consumed %d\n",
            atomic_load(&queue_consumed) ? 1 : 0);
}

static int ready(void *d, char *why, size_t whylen)
{
    (void)d;
    if (atomic_load(&queue_consumed))
        return 1;
    snprintf(why, whylen,
             "sluice.q.notifier not consumed (queue missing or its consumer cancelled)");
    return 0;
}

static int open_session(session *s, const strlist *urls, size_t *next, const notifier_settings *cfg,
                        char *err, size_t errlen)
{
    if (!(s->l = ledger_open(cfg->pg_dsn, err, errlen)))
        return -1;
    if (!(s->conn = mq_connect_any(urls, next, (int)cfg->heartbeat, 5000, err, errlen)))
        return -1;
    s->c = consumer_open(s->conn, program, &notifier_queue, cfg->prefetch, err, errlen);
    atomic_store(&queue_consumed, s->c && consumer_active(s->c, 0));
    return s->c ? 0 : -1;
}

static void close_session(session *s)
{
    atomic_store(&queue_consumed, 0);
    consumer_free(s->c);
    mq_close(s->conn);
    ledger_close(s->l);
    s->c = NULL;
    s->conn = NULL;
    s->l = NULL;
}

/* The grouping the settings ask for; -1 with err if group_by is bad. */
static int grouping_of(const notifier_settings *s, grouping *g, char *err, size_t errlen)
{
    *g = (grouping){.wait_ms = s->group_wait_ms,
                    .interval_ms = s->group_interval_ms,
                    .show = s->group_show,
                    .max = s->group_max};
    return grouping_parse(s->group_by, g, err, errlen);
}

/* What a reload may change. */
typedef struct reloadable {
    routes *routes; /* in force; the consuming thread's */
    int argc;
    char **argv;
    const channel_settings *channels;
} reloadable;

/* Re-reads the settings (file, environment, flags) as at start. A mistake
 * gets the same one line as at start and changes nothing. */
static void reload(reloadable *rl, deliverer *d)
{
    notifier_settings fresh = {0};
    routes r = {0};
    grouping g;
    char err[1024];
    int rc = cli_parse(notifier_options, &fresh, rl->argc, rl->argv, program, summary);
    if (rc == CLI_CONTINUE && (routes_parse(fresh.routes, &r, err, sizeof err) != 0 ||
                               routes_check(&r, rl->channels, err, sizeof err) != 0 ||
                               grouping_of(&fresh, &g, err, sizeof err) != 0)) {
        fprintf(stderr, "%s: %s\n", program, err);
        rc = EXIT_USAGE;
    }
    if (rc != CLI_CONTINUE) {
        log_warn("reload refused: the settings in force stay");
        routes_free(&r);
    } else {
        routes_free(rl->routes);
        *rl->routes = r;
        deliverer_set_grouping(d, &g);
        log_info("reloaded routes=\"%s\" group_by=%s group_wait_ms=%ld group_interval_ms=%ld",
                 fresh.routes, fresh.group_by, fresh.group_wait_ms, fresh.group_interval_ms);
    }
    cfg_free(notifier_options, &fresh);
}

/* How long the consuming thread waits for more alerts to plan with the
 * first one: a worker publishes a batch's alerts together, and planning
 * them in one statement rather than in several costs PostgreSQL a fraction
 * of the work. What it adds to an alert's way is this, at most. */
#define PLAN_GATHER_MS 20

/* How many alerts, and how many of their bytes, one planning batch takes
 * at most. */
typedef struct plan_bounds {
    long alerts;
    size_t bytes;
} plan_bounds;

/* Plans the delivery in hand and whatever else arrives within
 * PLAN_GATHER_MS in one statement and one transaction, up to the bounds
 * (the alert that crosses the byte bound is the batch's last), then
 * acknowledges them all with one basic.ack. Returns 0, or -1 with err:
 * the caller reconnects, the broker redelivers what is not acknowledged,
 * and nothing of the transaction stays. */
static int plan_batch(session *s, deliverer *d, const routes *r, incoming *in,
                      const plan_bounds *bounds, char *err, size_t errlen)
{
    deliverer_forget(d); /* what a failed batch took is coming back */
    if (ledger_begin(s->l, err, errlen) != 0)
        return -1;
    uint64_t last = 0;
    int got = 1;
    size_t held = 0;
    long taken = 0;
    int64_t until = mono_us() + PLAN_GATHER_MS * 1000;
    while (got == 1 && taken < bounds->alerts) {
        char rk[256];
        snprintf(rk, sizeof rk, "%.*s", (int)in->routing_key_len, in->routing_key);
        /* json-c reads at most len bytes; the dead letter wants a copy too. */
        char *body = strndup(in->body, in->body_len);
        if (!body) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        delivery_result res = deliver(d, r, rk, body, in->body_len, err, errlen);
        free(body);
        if (res != DELIVERY_DONE) {
            s->held = res == DELIVERY_HELD;
            return -1;
        }
        last = in->delivery_tag;
        held += in->body_len;
        taken++;
        if (held >= bounds->bytes)
            break;
        int64_t left_ms = (until - mono_us()) / 1000;
        if (taken < bounds->alerts &&
            (got = consumer_next(s->c, in, left_ms > 0 ? (long)left_ms : 0, err, errlen)) < 0)
            return -1;
    }
    if (deliverer_plan(d, s->l, err, errlen) != 0 || ledger_commit(s->l, err, errlen) != 0 ||
        consumer_ack_through(s->c, last, err, errlen) != 0)
        return -1;
    deliverer_wake_all(d);
    log_debug("planned alerts=%ld bytes=%zu", taken, held);
    return 0;
}

/* Plans until shutdown (0) or a failure of a server (-1). */
static int serve(session *s, deliverer *d, reloadable *rl, const plan_bounds *bounds, char *err,
                 size_t errlen)
{
    while (!shutdown_requested) {
        if (reload_requested) {
            reload_requested = 0;
            reload(rl, d);
        }
        incoming in;
        int got = consumer_next(s->c, &in, 500, err, errlen);
        if (got < 0)
            return -1;
        atomic_store(&queue_consumed, consumer_active(s->c, 0));
        if (got == 1 && plan_batch(s, d, rl->routes, &in, bounds, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Consumes sluice.q.notifier until a signal, connecting again with backoff
 * whenever the broker or the database goes away; the destinations go on
 * delivering meanwhile. */
static void consume(const notifier_settings *s, deliverer *d, reloadable *rl, const strlist *urls,
                    char *err, size_t errlen)
{
    size_t next = 0;
    unsigned attempt = 0;
    int resumed = 0, held = 0;
    outage down = {0};
    while (!shutdown_requested) {
        session ss = {0};
        if (open_session(&ss, urls, &next, s, err, errlen) == 0 &&
            (resumed || (resumed = deliverer_resume(d, ss.l, err, errlen) == 0))) {
            log_info("consuming queue=%s url=%s", SLUICE_QUEUE_NOTIFIER, mq_url(ss.conn));
            outage_log_recovery(&down, "connected again");
            if (!held)
                attempt = 0;
            plan_bounds bounds = {.alerts = s->prefetch, .bytes = (size_t)s->batch_max_bytes};
            if (serve(&ss, d, rl, &bounds, err, errlen) == 0) {
                close_session(&ss);
                break;
            }
        }
        close_session(&ss);
        long delay = backoff_ms(attempt++, 200, 10000);
        held = ss.held;
        if (held)
            log_error("message not dead-lettered, left in %s: %s retry_in_ms=%ld",
                      SLUICE_QUEUE_NOTIFIER, err, delay);
        else
            outage_log_failure(&down, "not ready, retrying", err, delay);
        sleep_interruptible_ms(delay);
    }
}

/* Nothing unplanned is held any more (the channel is closed): lets the
 * destinations finish or hand back what they have in hand, logs the
 * totals and frees the deliverer (joining the destinations). */
static void finish(deliverer *d, httpd *metrics)
{
    deliverer_stop(d);
    httpd_stop(metrics);
    const delivery_stats *st = deliverer_stats(d);
    log_info("stopped alerts=%" PRIu64 " planned=%" PRIu64 " copies=%" PRIu64
             " dead_lettered=%" PRIu64,
             st->alerts, st->planned, st->copies, st->dead_lettered);
    deliverer_free(d);
}

int main(int argc, char **argv)
{
    notifier_settings s = {0};
    strlist urls = {0};
    routes r = {0};
    char *token = NULL;
    deliverer *d = NULL;
    httpd *metrics = NULL;
    char err[1024] = "";
    int rc = cli_parse(notifier_options, &s, argc, argv, program, summary);
    if (rc == CLI_CONTINUE)
        log_init("notifier", (log_level)s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &urls);
    char token_err[600] = "";
    if (rc == CLI_CONTINUE)
        token = read_token(s.telegram_token_file, token_err, sizeof token_err);
    channel_settings channels = {.telegram_api = s.telegram_api_url,
                                 .telegram_token = token,
                                 .telegram_token_error = token_err[0] ? token_err : NULL,
                                 .telegram_chat = s.telegram_chat_id,
                                 .webhook_url = s.webhook_url};
    delivery_config dc = {.dest = {.pg_dsn = s.pg_dsn,
                                   .channels = &channels,
                                   .max_attempts = s.max_attempts,
                                   .backoff_base_ms = s.retry_base_ms,
                                   .backoff_max_ms = s.retry_max_ms,
                                   .rate_per_chat = s.telegram_rate_per_chat,
                                   .http_timeout_ms = s.http_timeout_ms},
                          .rate_total = s.telegram_rate_total,
                          .max_alert_bytes = (size_t)s.max_message_bytes};
    /* Every channel the routes use must be reachable with the settings. */
    if (rc == CLI_CONTINUE && (routes_parse(s.routes, &r, err, sizeof err) != 0 ||
                               routes_check(&r, &channels, err, sizeof err) != 0 ||
                               grouping_of(&s, &dc.group, err, sizeof err) != 0)) {
        fprintf(stderr, "%s: %s\n", program, err);
        rc = EXIT_USAGE;
    }
    if (rc == CLI_CONTINUE) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (!(d = deliverer_new(&dc, &urls, (int)s.heartbeat))) {
            log_error("out of memory starting the notifier");
            rc = EXIT_RUNTIME;
        }
    }
    if (rc == CLI_CONTINUE && s.metrics_port &&
        !(metrics = httpd_start(s.metrics_address, s.metrics_port, HTTPD_OWN_THREAD,
                                &(httpd_handlers){render_metrics, ready, d}, err, sizeof err))) {
        log_error("%s", err);
        rc = EXIT_RUNTIME;
    }
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        reload_install();
        log_info("starting routes=\"%s\" group_by=%s group_wait_ms=%ld group_interval_ms=%ld "
                 "telegram_rate_per_chat=%ld telegram_rate_total=%ld metrics_port=%ld",
                 s.routes, s.group_by, s.group_wait_ms, s.group_interval_ms,
                 s.telegram_rate_per_chat, s.telegram_rate_total, s.metrics_port);
        reloadable rl = {.routes = &r, .argc = argc, .argv = argv, .channels = &channels};
        consume(&s, d, &rl, &urls, err, sizeof err);
        finish(d, metrics);
        d = NULL;
        metrics = NULL;
        rc = 0;
    }
    httpd_stop(metrics);
    deliverer_free(d);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    routes_free(&r);
    strlist_free(&urls);
    cfg_free(notifier_options, &s);
    curl_global_cleanup();
    return rc;
}
