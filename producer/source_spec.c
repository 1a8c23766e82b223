/*
 * source_spec: reading an adapter's settings from its config section, with
 * messages that name the file and line, and the stable ids of events read
 * from files, pipes and HTTP endpoints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "event.h"
#include "util.h"

static const cfg_entry *find(const source_spec *spec, const char *key, size_t *index)
{
    const cfg_entry *found = NULL;
    for (size_t i = 0; i < spec->nsettings; i++) {
        if (strcmp(spec->settings[i].key, key) == 0) {
            found = &spec->settings[i];
            if (index)
                *index = i;
        }
    }
    return found;
}

const char *spec_get(const source_spec *spec, const char *key)
{
    size_t i;
    const cfg_entry *e = find(spec, key, &i);
    if (!e)
        return NULL;
    for (size_t k = 0; k < spec->nsettings; k++) {
        if (strcmp(spec->settings[k].key, key) == 0)
            spec->used[k] = 1;
    }
    return e->value;
}

const char *spec_next(const source_spec *spec, const char *key, size_t *iter)
{
    for (; *iter < spec->nsettings; (*iter)++) {
        if (strcmp(spec->settings[*iter].key, key) == 0) {
            spec->used[*iter] = 1;
            return spec->settings[(*iter)++].value;
        }
    }
    return NULL;
}

void spec_error(const source_spec *spec, const char *key, char *err, size_t errlen, const char *fmt,
                ...)
{
    const cfg_entry *e = key ? find(spec, key, NULL) : NULL;
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

int spec_get_long(const source_spec *spec, const char *key, long def, long min, long max, long *out,
                  char *err, size_t errlen)
{
    const char *v = spec_get(spec, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < min || n > max) {
        spec_error(spec, key, err, errlen, "%s must be an integer from %ld to %ld, got '%s'", key,
                   min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

int spec_check_unused(const source_spec *spec, const char *adapter, char *err, size_t errlen)
{
    for (size_t i = 0; i < spec->nsettings; i++) {
        if (!spec->used[i]) {
            spec_error(spec, spec->settings[i].key, err, errlen, "adapter %s has no setting '%s'",
                       adapter, spec->settings[i].key);
            return -1;
        }
    }
    return 0;
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
