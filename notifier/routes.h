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
 * Channels are those of the registry (channels.h): log, webhook, telegram
 * (the default chat) and telegram:CHAT (a chat id or @channelname).
 */
#ifndef SLUICE_ROUTES_H
#define SLUICE_ROUTES_H

#include <stddef.h>

#include "channels.h"

#define ROUTES_MAX_CHANNELS 8

/* One channel of a route. */
typedef struct channel {
    const channel_class *cls; /* statically allocated, from the registry */
    char target[128];         /* the target named in the route; "" = the class's default */
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

/* 1 if some route uses the channel called `name`. */
int routes_use(const routes *r, const char *name);

/* The target of c (the route's, else its class's default), or NULL if its
 * class takes none. Points into c or the settings. */
const char *channel_target(const channel *c, const channel_settings *s);

/* The name a delivery is recorded under: the class's name, then
 * ":<target>" if it takes one ("log", "webhook", "telegram:<chat>"). */
void channel_name(const channel *c, const channel_settings *s, char *out, size_t outlen);

/* Runs each used channel's check against the settings. Returns 0, or -1
 * with err from the first that fails. */
int routes_check(const routes *r, const channel_settings *s, char *err, size_t errlen);

#endif
