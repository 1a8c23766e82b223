/*
 * consumer: the AMQP side of a worker: consumes a set of source queues on
 * one channel with a prefetch limit, hands deliveries out one at a time and
 * acknowledges them after they are committed.
 */
#ifndef SLUICE_CONSUMER_H
#define SLUICE_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "mq.h"
#include "util.h"

typedef struct consumer consumer;

/*
 * Starts consuming sluice.q.<source> for each source on `conn` (which the
 * caller keeps and closes after consumer_free), at most `prefetch`
 * unacknowledged deliveries per queue. Returns NULL with err on failure (a
 * missing queue is named, with the advice to run sluice-setup).
 */
consumer *consumer_open(mq_conn *conn, const strlist *sources, long prefetch, char *err,
                        size_t errlen);
void consumer_free(consumer *c);

/*
 * Waits up to timeout_ms for the next delivery. Returns 1 with *in filled
 * (its pointers are valid until the next call), 0 on timeout, -1 if the
 * connection or channel failed (err says why).
 */
int consumer_next(consumer *c, incoming *in, long timeout_ms, char *err, size_t errlen);

/* Acknowledges every delivery up to and including `tag`. Returns 0 or -1. */
int consumer_ack_through(consumer *c, uint64_t tag, char *err, size_t errlen);

#endif
