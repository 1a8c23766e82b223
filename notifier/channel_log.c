/*
 * channel_log: the log channel, the default, so a demo needs no secrets:
 * one line per alert on stderr.
 */
#include <json-c/json.h>

#include "channels.h"
#include "log.h"

static void log_send(const channel_env *env, const char *target, const alert *a, send_result *out)
{
    (void)env;
    (void)target;
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

const channel_class log_channel = {
    .name = "log",
    .send = log_send,
    .logs_itself = 1,
    /* A line is written at once, with no request under way anywhere: the
     * log takes its backlog a hundred alerts to a claim. */
    .claim_max = CHANNEL_CLAIM_MAX,
};
