/*
 * routes: see routes.h.
 */
#include "routes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "util.h"

static int parse_channel(const char *text, channel *c, const char *entry, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    char name[64];
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len < sizeof name) {
        memcpy(name, text, len);
        name[len] = '\0';
        c->cls = channel_find(name);
    }
    /* name:TARGET only for a channel that takes one, and a target that
     * is there, fits, and cannot be confused with a list. */
    if (c->cls && colon &&
        (!c->cls->target || !colon[1] || strchr(colon, ',') ||
         strlen(colon + 1) >= sizeof c->target))
        c->cls = NULL;
    if (c->cls && colon)
        snprintf(c->target, sizeof c->target, "%s", colon + 1);
    if (!c->cls) {
        snprintf(err, errlen, "routes: entry '%s': unknown channel '%s' (%s)", entry, text,
                 channel_names());
        return -1;
    }
    return 0;
}

static int parse_entry(char *entry, route *r, char *err, size_t errlen)
{
    char *eq = strchr(entry, '=');
    char shown[256];
    snprintf(shown, sizeof shown, "%s", entry);
    if (!eq) {
        snprintf(err, errlen, "routes: entry '%s': expected PATTERN=CHANNEL[+CHANNEL]", shown);
        return -1;
    }
    *eq = '\0';
    char *pattern = str_trim(entry), *dot = strchr(pattern, '.');
    if (dot)
        *dot = '\0';
    const char *rule = dot ? dot + 1 : "*";
    int known = strcmp(pattern, "*") == 0 || alert_severity(pattern);
    if (!known || !*rule || strlen(rule) >= sizeof r->rule) {
        snprintf(err, errlen,
                 "routes: entry '%s': pattern must be SEVERITY or SEVERITY.RULE (severity "
                 "*, " ALERT_SEVERITIES ")",
                 shown);
        return -1;
    }
    snprintf(r->severity, sizeof r->severity, "%s", pattern);
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    char *save = NULL;
    for (char *tok = strtok_r(eq + 1, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
        char *name = str_trim(tok);
        if (r->nchannels == ROUTES_MAX_CHANNELS) {
            snprintf(err, errlen, "routes: entry '%s': more than %d channels", shown,
                     ROUTES_MAX_CHANNELS);
            return -1;
        }
        if (parse_channel(name, &r->channels[r->nchannels], shown, err, errlen) != 0)
            return -1;
        r->nchannels++;
    }
    if (r->nchannels == 0) {
        snprintf(err, errlen, "routes: entry '%s': no channel", shown);
        return -1;
    }
    return 0;
}

int routes_parse(const char *text, routes *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *copy = strdup(text ? text : "");
    size_t cap = 1;
    for (const char *p = text; p && *p; p++)
        cap += *p == ';';
    out->items = calloc(cap, sizeof *out->items);
    int rc = 0;
    if (!copy || !out->items) {
        snprintf(err, errlen, "routes: out of memory");
        rc = -1;
    }
    char *save = NULL;
    for (char *e = rc ? NULL : strtok_r(copy, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
        char *entry = str_trim(e);
        if (!*entry)
            continue;
        if (parse_entry(entry, &out->items[out->count], err, errlen) != 0) {
            rc = -1;
            break;
        }
        out->count++;
    }
    free(copy);
    if (rc != 0)
        routes_free(out);
    return rc;
}

void routes_free(routes *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

const route *routes_match(const routes *r, const char *severity, const char *rule)
{
    for (size_t i = 0; i < r->count; i++) {
        const route *e = &r->items[i];
        if ((strcmp(e->severity, "*") == 0 || strcmp(e->severity, severity) == 0) &&
            (strcmp(e->rule, "*") == 0 || strcmp(e->rule, rule) == 0))
            return e;
    }
    return NULL;
}

int routes_use(const routes *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++) {
        for (size_t k = 0; k < r->items[i].nchannels; k++) {
            if (strcmp(r->items[i].channels[k].cls->name, name) == 0)
                return 1;
        }
    }
    return 0;
}

const char *channel_target(const channel *c, const channel_settings *s)
{
    if (!c->cls->target)
        return NULL;
    return c->target[0] ? c->target : c->cls->default_target(s);
}

void channel_name(const channel *c, const channel_settings *s, char *out, size_t outlen)
{
    const char *target = channel_target(c, s);
    if (target)
        snprintf(out, outlen, "%s:%s", c->cls->name, target);
    else
        snprintf(out, outlen, "%s", c->cls->name);
}

int routes_check(const routes *r, const channel_settings *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->count; i++) {
        for (size_t k = 0; k < r->items[i].nchannels; k++) {
            const channel *c = &r->items[i].channels[k];
            if (c->cls->check && c->cls->check(s, channel_target(c, s), err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}
