/*
 * batch: see batch.h. Strings go into one arena so a batch costs a few
 * allocations in all, not several per message.
 */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
}

void batch_free(batch *b)
{
    free(b->items);
    buf_free(&b->arena);
    batch_init(b);
}

void batch_reset(batch *b)
{
    b->count = 0;
    buf_clear(&b->arena);
    b->last_tag = 0;
    b->opened_us = 0;
    b->invalid = 0;
}

/* Makes room for `more` bytes of strings; the batch is unchanged if
 * memory runs out (so the failure is not kept in the arena). */
static int reserve(batch *b, size_t more)
{
    /* Offset 0 is the empty string: "no failure". */
    if ((b->arena.len == 0 && buf_append(&b->arena, "", 1) != 0) ||
        buf_reserve(&b->arena, more) != 0) {
        b->arena.failed = 0;
        return -1;
    }
    return 0;
}

/* Appends bytes and a NUL; returns the offset. Space must be reserved. */
static size_t append(batch *b, const void *bytes, size_t len)
{
    size_t at = b->arena.len;
    buf_append(&b->arena, bytes, len);
    buf_append(&b->arena, "", 1);
    return at;
}

/* Ids travel as text in the warehouse and in logs: control characters and
 * broken UTF-8 would make them unusable there. */
static int usable_id(const char *id, size_t len)
{
    if (!id || len == 0 || len > 255 || !utf8_valid(id, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return 0;
    }
    return 1;
}

int batch_add(batch *b, const incoming *in, event_verdict verdict)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        delivery *grown = realloc(b->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        b->items = grown;
        b->cap = cap;
    }
    char derived[EVENT_DERIVED_ID_LEN + 1];
    const char *id = in->message_id;
    size_t id_len = in->message_id_len;
    if (!usable_id(id, id_len)) {
        event_derive_id(in->source, in->body, in->body_len, derived);
        id = derived;
        id_len = EVENT_DERIVED_ID_LEN;
    }
    const char *rk = in->routing_key;
    size_t rk_len = in->routing_key_len;
    if (!utf8_valid(rk, rk_len)) {
        rk = "(not utf-8)";
        rk_len = strlen(rk);
    }
    size_t source_len = strlen(in->source);
    if (reserve(b, id_len + rk_len + source_len + in->body_len + 4) != 0)
        return -1;

    delivery *d = &b->items[b->count++];
    d->delivery_tag = in->delivery_tag;
    d->source_index = in->source_index;
    d->outcome = OUTCOME_PENDING;
    d->failure = 0;
    d->msg_id = append(b, id, id_len);
    d->source = append(b, in->source, source_len);
    d->routing_key = append(b, rk, rk_len);
    d->body = append(b, in->body, in->body_len);
    d->body_len = in->body_len;
    d->produced_at_us = in->produced_at_us;
    d->received_at_us = in->received_at_us;
    d->verdict = verdict;
    if (verdict != EVENT_OK)
        b->invalid++;
    if (in->delivery_tag > b->last_tag)
        b->last_tag = in->delivery_tag;
    if (b->count == 1)
        b->opened_us = mono_us();
    return 0;
}

int batch_set_failure(batch *b, size_t i, const char *why)
{
    b->items[i].outcome = OUTCOME_FAILED;
    size_t len = strlen(why);
    if (reserve(b, len + 1) != 0)
        return -1;
    b->items[i].failure = append(b, why, len);
    return 0;
}
