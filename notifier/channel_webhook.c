/*
 * channel_webhook: a POST of the alert's JSON (alert.h's encoding, as the
 * worker publishes it) to webhook_url, with header X-Sluice-Alert-Id for receivers that
 * deduplicate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

static int webhook_check(const channel_settings *s, const char *target, char *err, size_t errlen)
{
    (void)target;
    if (s->webhook_url && *s->webhook_url)
        return 0;
    snprintf(err, errlen, "routes use the webhook channel but webhook_url is not set");
    return -1;
}

static void webhook_send(const channel_env *env, const char *target, const alert *a,
                         send_result *out)
{
    (void)target;
    char header[512];
    snprintf(header, sizeof header, "X-Sluice-Alert-Id: %s", a->alert_id);
    /* The alert as the contract encodes it (alert.h): the outbox keeps its
     * fields, not the bytes it arrived as. */
    size_t len;
    char *body = alert_encode(a, &len);
    http_reply r;
    if (!body || http_post_json(env->http, env->settings->webhook_url, body, header, &r) != 0) {
        free(body);
        send_out_of_memory(out);
        return;
    }
    http_classify(r.status, r.error, NULL, r.retry_after_s, out);
    free(r.body);
    free(body);
}

const channel_class webhook_channel = {
    .name = "webhook",
    .check = webhook_check,
    .send = webhook_send,
    .deduplicated = 1,
};
