/*
 * channels: see channels.h.
 */
#include "channels.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tgtext.h"

void log_send(const alert *a, send_result *out)
{
    /* The message is JSON-quoted so one alert stays one line. */
    json_object *msg = json_object_new_string(a->message);
    log_info("alert rule=%s severity=%s source=%s alert_id=%s message=%s", a->rule, a->severity,
             a->source, a->alert_id,
             msg ? json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN) : "-");
    json_object_put(msg);
    out->status = SEND_OK;
    out->retry_after_ms = -1;
    out->reason[0] = '\0';
}

static void out_of_memory(send_result *out)
{
    out->status = SEND_RETRY;
    out->retry_after_ms = -1;
    snprintf(out->reason, sizeof out->reason, "out of memory");
}

/* Reads the Bot API's error reply: {"ok":false,"error_code":429,
 * "description":"...","parameters":{"retry_after":3}}. */
static void telegram_reply(const http_reply *r, send_result *out)
{
    json_object *doc = json_tokener_parse(r->body), *v = NULL, *params = NULL;
    const char *description = NULL;
    long retry_after_s = r->retry_after_s;
    if (doc && json_object_object_get_ex(doc, "description", &v) &&
        json_object_is_type(v, json_type_string))
        description = json_object_get_string(v);
    if (doc && json_object_object_get_ex(doc, "parameters", &params) &&
        json_object_object_get_ex(params, "retry_after", &v) &&
        json_object_is_type(v, json_type_int))
        retry_after_s = (long)json_object_get_int64(v);
    http_classify(r->status, r->error, description, retry_after_s, out);
    json_object_put(doc);
}

void telegram_send(http_client *c, const char *api_base, const char *token, const char *chat,
                   const alert *a, send_result *out)
{
    int truncated = 0;
    char *text =
        telegram_text(a->severity, a->rule, a->source, a->message, TELEGRAM_MAX_TEXT, &truncated);
    json_object *req = json_object_new_object();
    char *url = NULL;
    size_t url_len = strlen(api_base) + strlen(token) + 32;
    if (!text || !req || !(url = malloc(url_len))) {
        out_of_memory(out);
        goto done;
    }
    snprintf(url, url_len, "%s/bot%s/sendMessage", api_base, token);
    json_object_object_add(req, "chat_id", json_object_new_string(chat));
    json_object_object_add(req, "text", json_object_new_string(text));
    json_object_object_add(req, "parse_mode", json_object_new_string("HTML"));
    json_object_object_add(req, "disable_web_page_preview", json_object_new_boolean(1));
    if (truncated)
        log_warn("alert text cut to Telegram's limit alert_id=%s limit=%d", a->alert_id,
                 TELEGRAM_MAX_TEXT);
    http_reply r;
    if (http_post_json(c, url, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), NULL,
                       &r) != 0) {
        out_of_memory(out);
        goto done;
    }
    telegram_reply(&r, out);
    free(r.body);
done:
    if (url) {
        memset(url, 0, url_len); /* the token */
        free(url);
    }
    json_object_put(req);
    free(text);
}

void webhook_send(http_client *c, const char *url, const alert *a, send_result *out)
{
    char header[512];
    snprintf(header, sizeof header, "X-Sluice-Alert-Id: %s", a->alert_id);
    char *body = strndup(a->body, a->body_len);
    http_reply r;
    if (!body || http_post_json(c, url, body, header, &r) != 0) {
        free(body);
        out_of_memory(out);
        return;
    }
    http_classify(r.status, r.error, NULL, r.retry_after_s, out);
    free(r.body);
    free(body);
}
