/*
 * channel_telegram: Bot API sendMessage in HTML parse mode (text from
 * grouptext.h, one part at a time), to the chat a route names (telegram:CHAT) or telegram_chat_id.
 * The token goes only into the request URL: it never appears in a reason
 * or a log line.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "tgtext.h"

static const char *telegram_default_chat(const channel_settings *s)
{
    return s->telegram_chat ? s->telegram_chat : "";
}

static int telegram_check(const channel_settings *s, const char *chat, char *err, size_t errlen)
{
    if (!s->telegram_token) {
        if (s->telegram_token_error)
            snprintf(err, errlen, "%s", s->telegram_token_error);
        else
            snprintf(err, errlen,
                     "routes use telegram but no bot token: set SLUICE_TELEGRAM_TOKEN or "
                     "telegram_token_file");
        return -1;
    }
    if (!chat || !*chat) {
        snprintf(err, errlen, "a route says 'telegram' but telegram_chat_id is not set");
        return -1;
    }
    return 0;
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

static void telegram_send_text(const channel_env *env, const char *chat, const char *text,
                               send_result *out)
{
    const char *api_base = env->settings->telegram_api, *token = env->settings->telegram_token;
    json_object *req = json_object_new_object();
    char *url = NULL;
    size_t url_len = strlen(api_base) + strlen(token) + 32;
    if (!req || !(url = malloc(url_len))) {
        send_out_of_memory(out);
        goto done;
    }
    snprintf(url, url_len, "%s/bot%s/sendMessage", api_base, token);
    json_object_object_add(req, "chat_id", json_object_new_string(chat));
    json_object_object_add(req, "text", json_object_new_string(text));
    json_object_object_add(req, "parse_mode", json_object_new_string("HTML"));
    json_object_object_add(req, "disable_web_page_preview", json_object_new_boolean(1));
    http_reply r;
    if (http_post_json(env->http, url, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                       NULL, &r) != 0) {
        send_out_of_memory(out);
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
}

const channel_class telegram_channel = {
    .name = "telegram",
    .target = "CHAT",
    .default_target = telegram_default_chat,
    .check = telegram_check,
    .send_text = telegram_send_text,
    .text_limit = TELEGRAM_MAX_TEXT,
    .paced = 1,
};
