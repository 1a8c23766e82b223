/*
 * channels: the notification channels as a small vtable, like the
 * producer's source adapters (producer/adapter.h). A channel is one file
 * (channel_<name>.c) defining a channel_class and one line in the registry
 * of channels.c; routes name it, the deliverer calls it. Retries, rate
 * limits, grouping and recording the outcome are the caller's (destination.c); a send
 * says what one attempt came to (http_post.h's rule).
 */
#ifndef SLUICE_CHANNELS_H
#define SLUICE_CHANNELS_H

#include <stddef.h>

#include "alert.h"
#include "http_post.h"

/* The notifier's settings the channels use; strings borrowed from the
 * notifier's settings, "" or NULL when not set. */
typedef struct channel_settings {
    const char *telegram_api;         /* Bot API base URL */
    const char *telegram_token;       /* NULL if none could be read */
    const char *telegram_token_error; /* why reading it failed, or NULL */
    const char *telegram_chat;        /* the default chat */
    const char *webhook_url;
} channel_settings;

/* What a send may use; owned by the destination that sends. */
typedef struct channel_env {
    http_client *http; /* the destination's own connection, with the request timeout */
    const channel_settings *settings;
} channel_env;

typedef struct channel_class {
    const char *name; /* as routes name it, and first word of its ledger name */
    /* Routes may write name:TARGET (telegram:CHAT) if this names the
     * target ("CHAT", for messages); NULL: the channel takes none. */
    const char *target;
    /* The target of a route that names none (the default chat). NULL if
     * the channel takes no target. */
    const char *(*default_target)(const channel_settings *s);
    /* Checks at start that the settings let the channel reach `target`
     * (NULL if it takes none). Returns 0, or -1 with err naming the missing
     * setting. NULL: nothing to check. */
    int (*check)(const channel_settings *s, const char *target, char *err, size_t errlen);
    /* One attempt to deliver alert a to target; fills *out. Channels that
     * take alerts one by one (log, webhook) have it. */
    void (*send)(const channel_env *env, const char *target, const alert *a, send_result *out);
    /* Chat channels instead send a text (grouptext.h: one alert or a group,
     * split into parts of at most text_limit UTF-16 units): one attempt to
     * send one part. Their alerts are grouped (the group_* settings). */
    void (*send_text)(const channel_env *env, const char *target, const char *text,
                      send_result *out);
    size_t text_limit;
    int paced; /* 1: spaced per target and overall by the telegram_rate_* settings */
    /* 1: each request names the alert so the receiver can drop a copy (the
     * webhook's X-Sluice-Alert-Id): one under way when a notifier died is
     * sent again. 0: it is recorded as interrupted, never sent twice. */
    int deduplicated;
    int logs_itself; /* 1: its send is a log line, so no "alert sent" line besides */
    /* Channels with `send`: how many pending alerts a destination claims
     * at once as one message (sent one after the other, the outcome
     * recorded once): the outbox's work per alert shrinks with it, but a
     * crash leaves up to that many claimed, recorded as interrupted (or
     * sent again if deduplicated). 0 or 1: one at a time. At most
     * CHANNEL_CLAIM_MAX. */
    int claim_max;
} channel_class;

/* The most alerts a one-by-one destination claims as one message. */
#define CHANNEL_CLAIM_MAX 100

/* The channel an alert goes to when no route matches it. */
extern const channel_class log_channel;

/* The registered channel called `name`, or NULL. Statically allocated. */
const channel_class *channel_find(const char *name);

/* "log, webhook, telegram, telegram:CHAT": what routes may name, for
 * messages. Statically allocated. */
const char *channel_names(void);

#endif
