/*
 * routes: which channels an alert goes to, by its severity and rule. Pure.
 *
 * The `routes` setting is a list of entries separated by ';':
 *
 *   critical=telegram+log; warning.big_order=webhook; *=log
 *
 * Each entry is PATTERN=CHANNEL[+CHANNEL...]. A pattern is SEVERITY or
 * SEVERITY.RULE, where either part may be '*'. The first entry that
 * matches decides; an alert no entry matches goes nowhere but the log.
 * Channels: log, webhook, telegram (the default chat) and telegram:CHAT
 * (a chat id or @channelname).
 */
#ifndef SLUICE_ROUTES_H
#define SLUICE_ROUTES_H

#include <stddef.h>

#define ROUTES_MAX_CHANNELS 8

typedef enum { CHANNEL_LOG, CHANNEL_WEBHOOK, CHANNEL_TELEGRAM } channel_kind;

typedef struct channel {
    channel_kind kind;
    char chat[128]; /* telegram: the chat named in the route; "" = the default chat */
} channel;

typedef struct route {
    char severity[16]; /* "*" or a severity */
    char rule[72];     /* "*" or a rule name */
    channel channels[ROUTES_MAX_CHANNELS];
    size_t nchannels;
} route;

typedef struct routes {
    route *items;
    size_t count;
} routes;

/* Parses the setting into `out` (free with routes_free). Returns 0, or -1
 * with err naming the entry and the problem. */
int routes_parse(const char *text, routes *out, char *err, size_t errlen);
void routes_free(routes *r);

/* The channels for an alert: the first matching route's, or NULL (then the
 * caller logs it). Points into `r`. */
const route *routes_match(const routes *r, const char *severity, const char *rule);

/* 1 if some route uses a channel of this kind. */
int routes_use(const routes *r, channel_kind kind);

/* The name a delivery is recorded under: "log", "webhook",
 * "telegram:<chat>" (with default_chat filled in). */
void channel_name(const channel *c, const char *default_chat, char *out, size_t outlen);

#endif
