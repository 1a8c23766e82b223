/*
 * sluice-notifier: consumes alerts from sluice.q.notifier and delivers them.
 * This version has the log channel: one line per alert on stderr, with its
 * rule, severity, source and message. An alert is acknowledged only after it
 * has been written out, so a crash redelivers instead of losing it.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "event.h"
#include "log.h"
#include "mq.h"
#include "settings.h"

typedef struct notifier_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    long heartbeat;
    long prefetch;
    char *log_level;
} notifier_settings;

static const cfg_option notifier_options[] = {
    SETTING_AMQP_URL(notifier_settings),
    SETTING_AMQP_TLS(notifier_settings),
    SETTING_HEARTBEAT(notifier_settings, heartbeat),
    {"prefetch", CFG_INT, offsetof(notifier_settings, prefetch), "100", 1, 65535,
     "unacknowledged alerts held at once"},
    SETTING_LOG_LEVEL(notifier_settings),
    CFG_END,
};

static const char program[] = "sluice-notifier";

static const char *field(json_object *alert, const char *key)
{
    json_object *v;
    if (alert && json_object_object_get_ex(alert, key, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return "-";
}

/* The log channel. Field values are printed with %s inside quotes; the
 * message is JSON-escaped by json-c so one alert stays one line. */
static void deliver_to_log(const amqp_envelope_t *e)
{
    const amqp_bytes_t *body = &e->message.body;
    json_tokener *tok = json_tokener_new();
    json_object *alert = tok ? json_tokener_parse_ex(tok, body->bytes, (int)body->len) : NULL;
    if (!alert || !json_object_is_type(alert, json_type_object)) {
        log_warn("alert is not a JSON object routing_key=%.*s bytes=%zu", (int)e->routing_key.len,
                 (const char *)e->routing_key.bytes, body->len);
    } else {
        json_object *msg = NULL;
        json_object_object_get_ex(alert, "message", &msg);
        log_info("alert rule=%s severity=%s source=%s message=%s", field(alert, "rule"),
                 field(alert, "severity"), field(alert, "source"),
                 msg ? json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN) : "-");
    }
    json_object_put(alert);
    if (tok)
        json_tokener_free(tok);
}

static int serve(mq_conn *conn, char *err, size_t errlen)
{
    amqp_connection_state_t st = mq_amqp(conn);
    while (!shutdown_requested) {
        amqp_envelope_t e;
        struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
        amqp_maybe_release_buffers(st);
        amqp_rpc_reply_t r = amqp_consume_message(st, &e, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (mq_check(conn, r, "consuming alerts", err, errlen) != 0)
            return -1;
        deliver_to_log(&e);
        int rc = amqp_basic_ack(st, MQ_CHANNEL, e.delivery_tag, 0);
        amqp_destroy_envelope(&e);
        if (rc != AMQP_STATUS_OK)
            return mq_fail(conn, rc, "acknowledging an alert", err, errlen);
    }
    return 0;
}

int main(int argc, char **argv)
{
    notifier_settings s = {0};
    strlist urls = {0};
    int rc = cli_parse(notifier_options, &s, argc, argv, program,
                       "Delivers alerts from sluice.q.notifier (log channel: one line per alert "
                       "on stderr).");
    if (rc == CLI_CONTINUE)
        rc = cli_init_log(program, "notifier", s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &urls);
    if (rc == CLI_CONTINUE) {
        shutdown_install();
        size_t next = 0;
        unsigned attempt = 0;
        char err[1024];
        while (!shutdown_requested) {
            mq_conn *conn = mq_connect_any(&urls, &next, (int)s.heartbeat, 5000, err, sizeof err);
            if (conn) {
                amqp_connection_state_t st = mq_amqp(conn);
                amqp_basic_qos(st, MQ_CHANNEL, 0, (uint16_t)s.prefetch, 0);
                amqp_basic_consume(st, MQ_CHANNEL, amqp_cstring_bytes(SLUICE_QUEUE_NOTIFIER),
                                   amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
                if (mq_check(conn, amqp_get_rpc_reply(st),
                             "consuming " SLUICE_QUEUE_NOTIFIER " (has sluice-setup run?)", err,
                             sizeof err) == 0) {
                    log_info("consuming queue=%s url=%s", SLUICE_QUEUE_NOTIFIER, mq_url(conn));
                    attempt = 0;
                    if (serve(conn, err, sizeof err) == 0) {
                        mq_close(conn);
                        break;
                    }
                }
                mq_close(conn);
            }
            long delay = backoff_ms(attempt++, 200, 10000);
            log_warn("not ready, retrying error=\"%s\" retry_in_ms=%ld", err, delay);
            sleep_interruptible_ms(delay);
        }
        rc = 0;
    }
    strlist_free(&urls);
    cfg_free(notifier_options, &s);
    return rc;
}
