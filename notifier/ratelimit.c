/*
 * ratelimit: see ratelimit.h.
 */
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket_slot {
    char key[128];
    token_bucket bucket;
    int64_t used_us;
};

void bucket_init(token_bucket *b, double rate_per_s, double burst, int64_t now_us)
{
    b->rate = rate_per_s;
    b->burst = burst < 1 ? 1 : burst;
    b->tokens = b->burst;
    b->last_us = now_us;
}

static void refill(token_bucket *b, int64_t now_us)
{
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * b->rate / 1e6;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_us = now_us;
    }
}

int64_t bucket_wait_us(token_bucket *b, int64_t now_us)
{
    refill(b, now_us);
    if (b->tokens >= 1.0)
        return 0;
    return (int64_t)((1.0 - b->tokens) * 1e6 / b->rate) + 1;
}

void bucket_take(token_bucket *b, int64_t now_us)
{
    refill(b, now_us);
    b->tokens -= 1.0;
}

int bucket_map_init(bucket_map *m, size_t cap, double rate_per_s, double burst)
{
    memset(m, 0, sizeof *m);
    m->slots = calloc(cap ? cap : 1, sizeof *m->slots);
    m->cap = cap ? cap : 1;
    m->rate = rate_per_s;
    m->burst = burst;
    return m->slots ? 0 : -1;
}

void bucket_map_free(bucket_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

token_bucket *bucket_map_get(bucket_map *m, const char *key, int64_t now_us)
{
    struct bucket_slot *s = NULL;
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->slots[i].key, key) == 0) {
            s = &m->slots[i];
            break;
        }
    }
    if (!s) {
        if (m->count < m->cap) {
            s = &m->slots[m->count++];
        } else {
            s = &m->slots[0];
            for (size_t i = 1; i < m->count; i++) {
                if (m->slots[i].used_us < s->used_us)
                    s = &m->slots[i];
            }
        }
        snprintf(s->key, sizeof s->key, "%s", key);
        bucket_init(&s->bucket, m->rate, m->burst, now_us);
    }
    s->used_us = now_us;
    return &s->bucket;
}
