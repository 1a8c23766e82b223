/*
 * retries: see retries.h. Open addressing with linear probing; ids are
 * copied in. Forgotten entries are tombstones until the next reset.
 */
#include "retries.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *id; /* NULL = empty */
    unsigned count;
} entry;

struct retries {
    entry *slots;
    size_t capacity, used;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

retries *retries_new(size_t capacity)
{
    retries *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->capacity = capacity * 2; /* keep the load factor at or under one half */
    r->slots = calloc(r->capacity, sizeof *r->slots);
    if (!r->slots) {
        free(r);
        return NULL;
    }
    return r;
}

static void reset(retries *r)
{
    for (size_t i = 0; i < r->capacity; i++) {
        free(r->slots[i].id);
        r->slots[i].id = NULL;
        r->slots[i].count = 0;
    }
    r->used = 0;
}

void retries_free(retries *r)
{
    if (!r)
        return;
    reset(r);
    free(r->slots);
    free(r);
}

static entry *find(retries *r, const char *id, int insert)
{
    size_t i = hash(id) % r->capacity;
    for (size_t probes = 0; probes < r->capacity; probes++, i = (i + 1) % r->capacity) {
        entry *e = &r->slots[i];
        if (!e->id)
            break;
        if (strcmp(e->id, id) == 0)
            return e;
    }
    if (!insert)
        return NULL;
    if (r->used * 2 >= r->capacity)
        reset(r);
    i = hash(id) % r->capacity;
    while (r->slots[i].id)
        i = (i + 1) % r->capacity;
    r->slots[i].id = strdup(id);
    if (!r->slots[i].id)
        return NULL;
    r->used++;
    return &r->slots[i];
}

unsigned retries_bump(retries *r, const char *msg_id)
{
    entry *e = find(r, msg_id, 1);
    if (!e)
        return 1; /* out of memory: count as a first failure */
    return ++e->count;
}

void retries_forget(retries *r, const char *msg_id)
{
    entry *e = find(r, msg_id, 0);
    if (e)
        e->count = 0; /* the slot stays as a tombstone so probing still works */
}
