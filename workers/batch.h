/*
 * batch: the deliveries a worker holds between two commits, with copies of
 * everything it will store (the AMQP library reuses its buffers). A batch
 * is committed as a whole and then acknowledged up to its last delivery tag.
 */
#ifndef SLUICE_BATCH_H
#define SLUICE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "consumer.h" /* incoming: one delivery as it comes off the wire */
#include "event.h"

/* What became of a delivery once its batch was stored. */
typedef enum {
    OUTCOME_PENDING = 0, /* not stored yet */
    OUTCOME_STORED,      /* a new row in events */
    OUTCOME_DUPLICATE,   /* its msg_id was already stored */
    OUTCOME_REJECTED,    /* recorded in ingest_errors */
    OUTCOME_FAILED,      /* could not be stored for another reason: retry, then dead-letter */
} delivery_outcome;

/* One delivery kept in a batch. Strings are NUL-terminated and live in the
 * batch's arena: resolve them with batch_str(). */
typedef struct delivery {
    uint64_t delivery_tag;
    int source_index;
    size_t msg_id, source, routing_key, body; /* arena offsets */
    size_t body_len;
    int64_t produced_at_us;
    int64_t received_at_us;
    event_verdict verdict;
    delivery_outcome outcome;
    size_t failure; /* arena offset of why it FAILED; 0 = none */
} delivery;

typedef struct batch {
    delivery *items;
    size_t count, cap;
    buf arena;         /* the deliveries' strings, each followed by a NUL; offset 0 is "" */
    uint64_t last_tag; /* highest delivery tag in the batch */
    int64_t opened_us; /* monotonic time of the first delivery */
    size_t invalid;    /* deliveries whose verdict is not EVENT_OK */
} batch;

/* Starts empty; free with batch_free(). */
void batch_init(batch *b);
void batch_free(batch *b);

/* Empties the batch, keeping its memory for the next one. */
void batch_reset(batch *b);

/*
 * Copies a delivery in with its verdict. A missing message_id, or one that
 * is not printable UTF-8, is replaced by the id derived from source and
 * body. Returns 0, or -1 on allocation failure (batch unchanged).
 */
int batch_add(batch *b, const incoming *in, event_verdict verdict);

/* Records that delivery i failed and why (text copied into the arena).
 * Returns 0, or -1 on allocation failure (outcome still set). */
int batch_set_failure(batch *b, size_t i, const char *why);

/* Resolves an arena offset; valid until the next batch_add or batch_free. */
static inline const char *batch_str(const batch *b, size_t offset)
{
    return b->arena.data + offset;
}

#endif
