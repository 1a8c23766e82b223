/*
 * sluice-notifier: consumes alerts from sluice.q.notifier and delivers each
 * to the channels its route names (log, webhook, telegram), recording every
 * outcome in PostgreSQL before acknowledging it (delivery.h). A crash
 * redelivers the alert; the recorded state keeps a channel that already
 * has it from getting it twice.
 *
 * The Telegram bot token comes from SLUICE_TELEGRAM_TOKEN or the file named
 * by telegram_token_file: never from a flag, and it is never logged.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "consumer.h"
#include "delivery.h"
#include "event.h"
#include "ledger.h"
#include "log.h"
#include "mq.h"
#include "routes.h"
#include "settings.h"

typedef struct notifier_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    long heartbeat;
    long prefetch;
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
     "unacknowledged alerts held at once", NULL},
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
    {"webhook_url", CFG_STRING, offsetof(notifier_settings, webhook_url), "", 0, 0,
     "URL the webhook channel POSTs each alert to (JSON)", NULL},
    {"max_attempts", CFG_INT, offsetof(notifier_settings, max_attempts), "6", 1, 100,
     "attempts per channel on 5xx or network errors before the alert is dead-lettered", NULL},
    {"retry_base_ms", CFG_INT, offsetof(notifier_settings, retry_base_ms), "500", 1, 600000,
     "first backoff after a 5xx or network error (doubles, with jitter)", NULL},
    {"retry_max_ms", CFG_INT, offsetof(notifier_settings, retry_max_ms), "30000", 1, 3600000,
     "longest backoff between attempts", NULL},
    {"http_timeout_ms", CFG_INT, offsetof(notifier_settings, http_timeout_ms), "10000", 100, 600000,
     "give up on one HTTP request after this long (then retry)", NULL},
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
} session;

/* The one queue the notifier consumes, sluice.q.notifier, by its name. */
static char notifier_name[] = "notifier";
static char *notifier_names[] = {notifier_name};
static const strlist notifier_queue = {.items = notifier_names, .count = 1};

static int open_session(session *s, const strlist *urls, size_t *next, const notifier_settings *cfg,
                        char *err, size_t errlen)
{
    if (!(s->l = ledger_open(cfg->pg_dsn, err, errlen)))
        return -1;
    if (!(s->conn = mq_connect_any(urls, next, (int)cfg->heartbeat, 5000, err, errlen)))
        return -1;
    s->c = consumer_open(s->conn, program, &notifier_queue, cfg->prefetch, err, errlen);
    return s->c ? 0 : -1;
}

static void close_session(session *s)
{
    consumer_free(s->c);
    mq_close(s->conn);
    ledger_close(s->l);
    s->c = NULL;
    s->conn = NULL;
    s->l = NULL;
}

/* Delivers until shutdown (0) or a failure of a server (-1). */
static int serve(session *s, deliverer *d, char *err, size_t errlen)
{
    while (!shutdown_requested) {
        incoming in;
        int got = consumer_next(s->c, &in, 500, err, errlen);
        if (got < 0)
            return -1;
        if (got == 0)
            continue;
        char rk[256];
        snprintf(rk, sizeof rk, "%.*s", (int)in.routing_key_len, in.routing_key);
        /* json-c reads at most len bytes, but the webhook sends the body
         * as a string: give it a terminated copy. */
        char *body = strndup(in.body, in.body_len);
        delivery_result res =
            body ? deliver(d, s->l, rk, body, in.body_len, err, errlen) : DELIVERY_ERROR;
        if (!body)
            snprintf(err, errlen, "out of memory");
        free(body);
        if (res == DELIVERY_ERROR)
            return -1;
        int rc = res == DELIVERY_DONE ? consumer_ack(s->c, in.delivery_tag, err, errlen)
                                      : consumer_requeue(s->c, in.delivery_tag, err, errlen);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    notifier_settings s = {0};
    strlist urls = {0};
    routes r = {0};
    char *token = NULL;
    deliverer *d = NULL;
    char err[1024] = "";
    int rc = cli_parse(notifier_options, &s, argc, argv, program,
                       "Delivers alerts from sluice.q.notifier to the channels of their route "
                       "(log, webhook, telegram) and records each outcome in PostgreSQL.");
    if (rc == CLI_CONTINUE)
        log_init("notifier", (log_level)s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &urls);
    char token_err[600] = "";
    if (rc == CLI_CONTINUE)
        token = read_token(s.telegram_token_file, token_err, sizeof token_err);
    delivery_config dc = {.routes = &r,
                          .channels = {.telegram_api = s.telegram_api_url,
                                       .telegram_token = token,
                                       .telegram_token_error = token_err[0] ? token_err : NULL,
                                       .telegram_chat = s.telegram_chat_id,
                                       .webhook_url = s.webhook_url},
                          .max_attempts = s.max_attempts,
                          .backoff_base_ms = s.retry_base_ms,
                          .backoff_max_ms = s.retry_max_ms,
                          .rate_per_chat = s.telegram_rate_per_chat,
                          .rate_total = s.telegram_rate_total,
                          .http_timeout_ms = s.http_timeout_ms};
    /* Every channel the routes use must be reachable with the settings. */
    if (rc == CLI_CONTINUE && (routes_parse(s.routes, &r, err, sizeof err) != 0 ||
                               routes_check(&r, &dc.channels, err, sizeof err) != 0)) {
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
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        log_info("starting routes=\"%s\" telegram_rate_per_chat=%ld telegram_rate_total=%ld",
                 s.routes, s.telegram_rate_per_chat, s.telegram_rate_total);
        size_t next = 0;
        unsigned attempt = 0;
        while (!shutdown_requested) {
            session ss = {0};
            if (open_session(&ss, &urls, &next, &s, err, sizeof err) == 0) {
                log_info("consuming queue=%s url=%s", SLUICE_QUEUE_NOTIFIER, mq_url(ss.conn));
                attempt = 0;
                if (serve(&ss, d, err, sizeof err) == 0) {
                    close_session(&ss);
                    break;
                }
            }
            close_session(&ss);
            long delay = backoff_ms(attempt++, 200, 10000);
            log_warn("not ready, retrying error=\"%s\" retry_in_ms=%ld", err, delay);
            sleep_interruptible_ms(delay);
        }
        const delivery_stats *st = deliverer_stats(d);
        log_info("stopped alerts=%" PRIu64 " sent=%" PRIu64 " retried=%" PRIu64 " failed=%" PRIu64
                 " skipped=%" PRIu64 " dead_lettered=%" PRIu64,
                 st->alerts, st->sent, st->retried, st->failed, st->skipped, st->dead_lettered);
        rc = 0;
    }
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
