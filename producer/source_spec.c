/*
 * source_spec: opening an adapter instance, its settings read from its
 * config section through the adapter's table with messages that name the
 * file and line, and the stable ids of events read from files, pipes and
 * HTTP endpoints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "event.h"
#include "json_scan.h"
#include "util.h"

/* The last line setting `key`, or NULL. */
static const cfg_entry *find(const source_spec *spec, const char *key)
{
    const cfg_entry *found = NULL;
    for (size_t i = 0; i < spec->nsettings; i++) {
        if (strcmp(spec->settings[i].key, key) == 0)
            found = &spec->settings[i];
    }
    return found;
}

void spec_error(const source_spec *spec, const char *key, char *err, size_t errlen, const char *fmt,
                ...)
{
    const cfg_entry *e = key ? find(spec, key) : NULL;
    int line = e ? e->line : spec->line;
    int n;
    if (spec->file && line)
        n = snprintf(err, errlen, "%s:%d: source %s: ", spec->file, line, spec->name);
    else
        n = snprintf(err, errlen, "source %s: ", spec->name);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Presets the integer settings that have no default to SPEC_UNSET. */
static void preset_unset(const cfg_option *table, void *conf)
{
    for (const cfg_option *o = table; o->name; o++) {
        if (o->type == CFG_INT && !o->default_value)
            *(long *)(void *)((char *)conf + o->offset) = SPEC_UNSET;
    }
}

/* Stores the section's lines the producer left to the adapter. */
static int read_settings(const adapter_class *a, const source_spec *spec, void *conf, char *err,
                         size_t errlen)
{
    char origin[600];
    if (cfg_defaults(a->settings, conf, err, errlen) != 0)
        return -1;
    preset_unset(a->settings, conf);
    for (size_t i = 0; i < spec->nsettings; i++) {
        const cfg_entry *e = &spec->settings[i];
        if (spec->used[i])
            continue;
        if (!cfg_find(a->settings, e->key)) {
            spec_error(spec, e->key, err, errlen, "adapter %s has no setting '%s'", a->name,
                       e->key);
            return -1;
        }
        if (spec->file)
            snprintf(origin, sizeof origin, "%s:%d: source %s", spec->file, e->line, spec->name);
        else
            snprintf(origin, sizeof origin, "source %s", spec->name);
        if (cfg_set(a->settings, conf, e->key, e->value, origin, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int adapter_open(const adapter_class *a, const source_spec *spec, void **state, char *err,
                 size_t errlen)
{
    void *conf = calloc(1, a->settings_size ? a->settings_size : 1);
    if (!conf) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    int rc = read_settings(a, spec, conf, err, errlen);
    if (rc == 0)
        rc = a->open(state, spec, conf, err, errlen);
    cfg_free(a->settings, conf);
    free(conf);
    return rc;
}

void source_event_id(const char *source, const char *scope, uint64_t position, const char *body,
                     size_t len, char *out)
{
    char pos[32];
    int poslen = snprintf(pos, sizeof pos, "%llu", (unsigned long long)position);
    /* NUL separators keep ("ab","c") and ("a","bc") apart. */
    id_part parts[] = {{source, strlen(source) + 1},
                       {scope, strlen(scope) + 1},
                       {pos, (size_t)poslen + 1},
                       {body, len}};
    event_sha256_id(parts, 4, out);
}

void source_sleep_ms(const atomic_int *stop, long ms)
{
    int64_t deadline = mono_us() + (int64_t)ms * 1000;
    while (!atomic_load(stop)) {
        int64_t left = deadline - mono_us();
        if (left <= 0)
            return;
        if (left > 50000)
            left = 50000; /* notice *stop within 50 ms */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000};
        nanosleep(&ts, NULL);
    }
}

void source_item_id(const char *source, const char *scope, const char *id_pointer, const char *item,
                    size_t len, char *out, size_t cap)
{
    const char *v;
    size_t vlen;
    if (id_pointer && len > 0 && item[0] == '{' &&
        json_pointer_find(item, len, id_pointer, &v, &vlen) == 0 && vlen > 0) {
        if (v[0] == '"' && vlen >= 2) {
            v++;
            vlen -= 2;
        }
        if (vlen + strlen(source) + 2 < 250 && vlen + strlen(source) + 2 <= cap) {
            snprintf(out, cap, "%s:%.*s", source, (int)vlen, v);
            return;
        }
    }
    source_event_id(source, scope, 0, item, len, out);
}

int spec_expand_env(const source_spec *spec, const char *key, const char *in, char *out, size_t cap,
                    char *err, size_t errlen)
{
    size_t n = 0;
    while (*in) {
        if (in[0] == '$' && in[1] == '{') {
            const char *close = strchr(in + 2, '}');
            if (!close) {
                spec_error(spec, key, err, errlen, "unclosed ${ in %s", key);
                return -1;
            }
            char var[256];
            snprintf(var, sizeof var, "%.*s", (int)(close - in - 2), in + 2);
            const char *v = getenv(var);
            if (!v) {
                spec_error(spec, key, err, errlen,
                           "%s needs environment variable %s, which is not set", key, var);
                return -1;
            }
            size_t vlen = strlen(v);
            if (n + vlen >= cap)
                goto too_long;
            memcpy(out + n, v, vlen);
            n += vlen;
            in = close + 1;
            continue;
        }
        if (n + 1 >= cap)
            goto too_long;
        out[n++] = *in++;
    }
    out[n] = '\0';
    return 0;
too_long:
    spec_error(spec, key, err, errlen, "%s too long", key);
    return -1;
}
