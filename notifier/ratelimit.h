/*
 * ratelimit: token buckets, to keep within Telegram's limits (about one
 * message a second per chat, 30 a second overall). Pure: the caller passes
 * the (monotonic) time, so tests need no clock.
 */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct token_bucket {
    double rate;   /* tokens added per second */
    double burst;  /* most tokens held */
    double tokens; /* held now */
    int64_t last_us;
} token_bucket;

/* Starts full. */
void bucket_init(token_bucket *b, double rate_per_s, double burst, int64_t now_us);

/* Microseconds until a token is available at now_us (0: one is). */
int64_t bucket_wait_us(token_bucket *b, int64_t now_us);

/* Takes a token (the caller checked bucket_wait_us() == 0). */
void bucket_take(token_bucket *b, int64_t now_us);

/* A bucket per key (a chat), created on first use, at most `cap` keys
 * (the least recently used is dropped for a new one: a bucket that has
 * not been used for a while is full again anyway). */
typedef struct bucket_map {
    struct bucket_slot *slots;
    size_t count, cap;
    double rate, burst;
} bucket_map;

/* Returns 0, or -1 on allocation failure. Free with bucket_map_free(). */
int bucket_map_init(bucket_map *m, size_t cap, double rate_per_s, double burst);
void bucket_map_free(bucket_map *m);

/* The bucket for `key`; valid until the next call. */
token_bucket *bucket_map_get(bucket_map *m, const char *key, int64_t now_us);

#endif
