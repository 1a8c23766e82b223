/*
 * sources: see sources.h.
 */
#include "sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "source_list.h"
#include "util.h"

void source_defs_free(source_defs *defs)
{
    for (size_t i = 0; i < defs->count; i++) {
        free(defs->items[i].name);
        free(defs->items[i].used);
    }
    free(defs->items);
    defs->items = NULL;
    defs->count = 0;
}

static source_def *add(source_defs *out, const char *name)
{
    source_def *grown = realloc(out->items, (out->count + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    out->items = grown;
    source_def *d = &out->items[out->count];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    out->count++;
    return d->name ? d : NULL;
}

static int from_section(const cfg_sections *secs, const cfg_section *sec, long default_rate,
                        source_defs *out, char *err, size_t errlen)
{
    const char *file = secs->path;
    if (strcmp(sec->kind, "source") != 0) {
        snprintf(err, errlen, "%s:%d: unknown section kind '%s' (expected [source NAME])", file,
                 sec->line, sec->kind);
        return -1;
    }
    if (!source_name_valid(sec->name)) {
        snprintf(err, errlen, "%s:%d: bad source name '%s' (allowed: [a-z0-9_-]{1,64})", file,
                 sec->line, sec->name);
        return -1;
    }
    for (size_t i = 0; i < out->count; i++) {
        if (strcmp(out->items[i].name, sec->name) == 0) {
            snprintf(err, errlen, "%s:%d: source %s is defined twice (first at line %d)", file,
                     sec->line, sec->name, out->items[i].line);
            return -1;
        }
    }
    source_def *d = add(out, sec->name);
    if (!d)
        goto oom;
    d->line = sec->line;
    d->rate = default_rate;
    d->settings = sec->entries;
    d->nsettings = sec->count;
    d->used = calloc(sec->count ? sec->count : 1, 1);
    if (!d->used)
        goto oom;
    const char *adapter = NULL;
    for (size_t k = 0; k < sec->count; k++) {
        const cfg_entry *e = &sec->entries[k];
        if (strcmp(e->key, "adapter") == 0) {
            adapter = e->value;
            d->used[k] = 1;
            d->adapter = adapter_find(adapter);
            if (!d->adapter) {
                snprintf(err, errlen, "%s:%d: source %s: unknown adapter '%s' (known: %s)", file,
                         e->line, sec->name, adapter, adapter_names());
                return -1;
            }
        } else if (strcmp(e->key, "rate") == 0) {
            char *end;
            d->rate = strtol(e->value, &end, 10);
            d->used[k] = 1;
            if (end == e->value || *end || d->rate < 0 || d->rate > 10000000) {
                snprintf(err, errlen,
                         "%s:%d: source %s: rate must be events per second from 0 to 10000000, "
                         "got '%s'",
                         file, e->line, sec->name, e->value);
                return -1;
            }
        }
    }
    if (!adapter) {
        snprintf(err, errlen, "%s:%d: source %s has no 'adapter = ...' (known: %s)", file,
                 sec->line, sec->name, adapter_names());
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int keep_only(source_defs *out, const char *only, const char *where, char *err,
                     size_t errlen)
{
    size_t kept = 0;
    for (size_t i = 0; i < out->count; i++) {
        if (strcmp(out->items[i].name, only) == 0) {
            source_def tmp = out->items[kept];
            out->items[kept++] = out->items[i];
            out->items[i] = tmp;
        }
    }
    if (kept == 0) {
        snprintf(err, errlen, "--source %s is not one of the sources of %s", only, where);
        return -1;
    }
    for (size_t i = kept; i < out->count; i++) {
        free(out->items[i].name);
        free(out->items[i].used);
    }
    out->count = kept;
    return 0;
}

int source_defs_build(const cfg_sections *sections, const char *flat_sources,
                      const char *flat_adapter, long default_rate, const char *only,
                      source_defs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    strlist names = {0};
    /* The same list setup declares queues for and workers consume. */
    if (source_list_resolve(sections, flat_sources, &names, err, errlen) != 0)
        goto fail;
    if (sections->count > 0) {
        for (size_t i = 0; i < sections->count; i++) {
            if (from_section(sections, &sections->items[i], default_rate, out, err, errlen) != 0)
                goto fail;
        }
        /* `sources` beside the sections picks some of them. */
        if (names.count < out->count) {
            size_t kept = 0;
            for (size_t i = 0; i < out->count; i++) {
                int wanted = 0;
                for (size_t k = 0; k < names.count && !wanted; k++)
                    wanted = strcmp(names.items[k], out->items[i].name) == 0;
                if (wanted) {
                    source_def tmp = out->items[kept];
                    out->items[kept++] = out->items[i];
                    out->items[i] = tmp;
                }
            }
            for (size_t i = kept; i < out->count; i++) {
                free(out->items[i].name);
                free(out->items[i].used);
            }
            out->count = kept;
        }
    } else {
        const adapter_class *adapter = adapter_find(flat_adapter);
        if (!adapter) {
            snprintf(err, errlen, "unknown adapter '%s' (known: %s)", flat_adapter,
                     adapter_names());
            goto fail;
        }
        for (size_t i = 0; i < names.count; i++) {
            source_def *d = add(out, names.items[i]);
            if (!d || !(d->used = calloc(1, 1))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            d->adapter = adapter;
            d->rate = default_rate;
        }
    }
    if (only && *only &&
        keep_only(out, only, sections->count ? sections->path : "the sources setting", err,
                  errlen) != 0)
        goto fail;
    /* Two readers of one standard input would split its lines between them. */
    const source_def *stdin_source = NULL;
    for (size_t i = 0; i < out->count; i++) {
        if (strcmp(out->items[i].adapter->name, "stdin") != 0)
            continue;
        if (stdin_source) {
            snprintf(err, errlen,
                     "sources %s and %s both read stdin: run them in separate processes "
                     "(--source NAME)",
                     stdin_source->name, out->items[i].name);
            goto fail;
        }
        stdin_source = &out->items[i];
    }
    strlist_free(&names);
    return 0;
fail:
    strlist_free(&names);
    source_defs_free(out);
    return -1;
}
