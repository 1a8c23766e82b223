/*
 * source_list: see source_list.h.
 */
#include "source_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

/* One line naming what is wrong with a name, or 0 if it is usable. */
static int check_name(const char *name, const char *where, char *err, size_t errlen)
{
    if (!source_name_valid(name)) {
        snprintf(err, errlen, "%s: bad source name '%s' (allowed: [a-z0-9_-]{1,64})", where, name);
        return -1;
    }
    if (source_name_reserved(name)) {
        snprintf(err, errlen,
                 "%s: source name '%s' is reserved (queue " SLUICE_QUEUE_PREFIX
                 "%s is sluice's own)",
                 where, name, name);
        return -1;
    }
    return 0;
}

static const cfg_section *find_section(const cfg_sections *secs, const char *name)
{
    for (size_t i = 0; i < secs->count; i++) {
        if (strcmp(secs->items[i].kind, "source") == 0 && strcmp(secs->items[i].name, name) == 0)
            return &secs->items[i];
    }
    return NULL;
}

int source_list_resolve(const cfg_sections *secs, const char *flat, strlist *out, char *err,
                        size_t errlen)
{
    strlist picked = {0};
    char where[600];
    size_t nsections = 0;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < secs->count; i++) {
        const cfg_section *sec = &secs->items[i];
        if (strcmp(sec->kind, "source") != 0)
            continue;
        snprintf(where, sizeof where, "%s:%d", secs->path ? secs->path : "config", sec->line);
        if (check_name(sec->name, where, err, errlen) != 0)
            goto fail;
        const cfg_section *first = find_section(secs, sec->name);
        if (first != sec) {
            snprintf(err, errlen, "%s: source %s is defined twice (first at line %d)", where,
                     sec->name, first->line);
            goto fail;
        }
        nsections++;
    }
    if (strlist_split(flat && *flat ? flat : (nsections ? "" : SOURCE_LIST_DEFAULT), &picked) != 0)
        goto oom;
    if (flat && *flat && picked.count == 0) {
        snprintf(err, errlen, "sources is empty: name at least one source");
        goto fail;
    }
    for (size_t i = 0; i < picked.count; i++) {
        const char *name = picked.items[i];
        if (check_name(name, "sources", err, errlen) != 0)
            goto fail;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(picked.items[k], name) == 0) {
                snprintf(err, errlen, "sources: source %s is named twice", name);
                goto fail;
            }
        }
        if (nsections && !find_section(secs, name)) {
            snprintf(err, errlen,
                     "sources: '%s' has no [source %s] section in %s (the sections are the "
                     "source list; `sources` may only pick some of them)",
                     name, name, secs->path ? secs->path : "the config file");
            goto fail;
        }
    }
    if (picked.count > 0) {
        *out = picked;
        return 0;
    }
    if (nsections == 0) { /* `sources` named only blanks and commas */
        snprintf(err, errlen, "sources is empty: name at least one source");
        goto fail;
    }
    for (size_t i = 0; i < secs->count; i++) {
        if (strcmp(secs->items[i].kind, "source") == 0 &&
            strlist_push(out, secs->items[i].name) != 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    strlist_free(&picked);
    strlist_free(out);
    return -1;
}
