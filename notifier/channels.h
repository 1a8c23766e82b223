/*
 * channels: delivering one alert to one channel, once. Retries, rate limits
 * and recording the outcome are the caller's (delivery.c); these say what
 * the attempt came to (http_post.h's rule).
 */
#ifndef SLUICE_CHANNELS_H
#define SLUICE_CHANNELS_H

#include "alert.h"
#include "http_post.h"

/* The log channel: one line on stderr. Always SEND_OK. */
void log_send(const alert *a, send_result *out);

/* Telegram Bot API sendMessage to `chat` at api_base (e.g.
 * https://api.telegram.org). The token goes only into the request URL:
 * it never appears in out->reason. */
void telegram_send(http_client *c, const char *api_base, const char *token, const char *chat,
                   const alert *a, send_result *out);

/* POST of the alert's JSON to url, with header X-Sluice-Alert-Id. */
void webhook_send(http_client *c, const char *url, const alert *a, send_result *out);

#endif
