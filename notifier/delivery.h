/*
 * delivery: what the notifier does with one alert: sends it to each
 * channel its route names, within the rate limits, retrying as
 * http_post.h says (429: wait retry_after; 5xx and network errors:
 * exponential backoff with jitter, at most max_attempts; other errors: no
 * retry), and records every claim and outcome in the ledger before going
 * on, so the caller can acknowledge the message once this returns
 * DELIVERY_DONE. An alert that failed on some channel is dead-lettered
 * with the reason.
 */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "channels.h"
#include "deadletter.h"
#include "http_post.h"
#include "ledger.h"
#include "ratelimit.h"
#include "routes.h"

typedef struct delivery_config {
    const routes *routes;
    channel_settings channels; /* what the channels of channels.h are given */
    long max_attempts; /* per channel, for 5xx and network errors */
    long backoff_base_ms, backoff_max_ms;
    long rate_per_chat, rate_total; /* Telegram messages per second */
    long http_timeout_ms;
} delivery_config;

typedef struct delivery_stats {
    uint64_t alerts, sent, retried, failed, skipped, dead_lettered;
} delivery_stats;

typedef struct deliverer deliverer;

/* Borrows cfg, and urls for dead letters. Free with deliverer_free(). */
deliverer *deliverer_new(const delivery_config *cfg, const strlist *urls, int heartbeat_s);
void deliverer_free(deliverer *d);

typedef enum {
    DELIVERY_DONE,    /* every channel's outcome is recorded: acknowledge */
    DELIVERY_STOPPED, /* shutdown came while waiting: hand the message back */
    DELIVERY_ERROR    /* the ledger or the broker failed (err): reconnect */
} delivery_result;

/* Delivers one message of sluice.q.notifier (routing key rk). */
delivery_result deliver(deliverer *d, ledger *l, const char *rk, const char *body, size_t len,
                        char *err, size_t errlen);

const delivery_stats *deliverer_stats(const deliverer *d);

#endif
