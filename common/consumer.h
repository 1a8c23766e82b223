/*
 * consumer: the one AMQP consumer of sluice. Consumes a set of sluice
 * queues on one connection's channel with a prefetch limit, hands
 * deliveries out one at a time, and settles each (ack, requeue or reject)
 * once its handler has decided. The worker (source queues) and the
 * notifier (sluice.q.notifier) are built on it; no other code consumes or
 * acknowledges.
 */
#ifndef SLUICE_CONSUMER_H
#define SLUICE_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "mq.h"
#include "util.h"

/*
 * One delivery as it comes off the wire. Every pointer points into memory
 * owned by the consumer, valid until the next consumer_next() or
 * consumer_free(): copy what must outlive that.
 */
typedef struct incoming {
    uint64_t delivery_tag;
    const char *source; /* the name of the queue it came from (sluice.q.<name>) */
    int source_index;   /* its position in the consumer's list of names */
    const char *routing_key;
    size_t routing_key_len;
    const char *message_id; /* NULL or empty: derive one from the content */
    size_t message_id_len;
    const void *body; /* not NUL-terminated */
    size_t body_len;
    int64_t produced_at_us; /* 0 if the publisher did not say */
    int64_t received_at_us;
} incoming;

typedef struct consumer consumer;

/*
 * Starts consuming sluice.q.<name> for each name of `names` on `conn`, at
 * most `prefetch` unacknowledged deliveries per queue. `conn` and `names`
 * are borrowed: the caller keeps them until after consumer_free() (and
 * closes conn itself). `program` names the consumers in the broker's
 * management UI (tag "<program>:<name>"). A queue that does not exist is
 * logged (with the advice to run sluice-setup) and not consumed until it
 * does (see consumer_active()); the others are consumed meanwhile. Returns
 * NULL with err if the connection failed. Free with consumer_free();
 * accepts NULL.
 */
consumer *consumer_open(mq_conn *conn, const char *program, const strlist *names, long prefetch,
                        char *err, size_t errlen);
void consumer_free(consumer *c);

/*
 * Whether queue `index` of `names` is consumed now: 0 while it does not
 * exist or after the broker cancelled its consumer (queue deleted, its node
 * gone). Such a queue is looked for again, on a short connection of its
 * own, after 1 s doubling to 30 s, and consumed again once it exists; both
 * the stop and the restart are logged.
 */
int consumer_active(const consumer *c, size_t index);

/* How often consumer_active() changed for any queue since consumer_open():
 * a caller refreshes what it shows (metrics) only when this moved. */
unsigned consumer_changes(const consumer *c);

/*
 * Waits up to timeout_ms for the next delivery. Returns 1 with *in filled
 * (see incoming for how long its pointers live), 0 on timeout or after a
 * harmless frame (a cancelled consumer is such a frame: see
 * consumer_active()), -1 if the connection or channel failed (err says
 * why; the connection is then marked broken and the caller reconnects).
 */
int consumer_next(consumer *c, incoming *in, long timeout_ms, char *err, size_t errlen);

/*
 * Settling. Each returns 0, or -1 with err if the connection failed (then
 * marked broken: whatever is not acknowledged will be redelivered).
 * All queues share one channel, so delivery tags are one sequence.
 */
/* Acknowledges one delivery: it is done. */
int consumer_ack(consumer *c, uint64_t tag, char *err, size_t errlen);
/* Acknowledges every delivery up to and including `tag` (a whole batch). */
int consumer_ack_through(consumer *c, uint64_t tag, char *err, size_t errlen);
/* Hands a delivery back to its queue for another attempt. */
int consumer_requeue(consumer *c, uint64_t tag, char *err, size_t errlen);
/* Refuses a delivery for good: the broker dead-letters it through the
 * queue's dead-letter exchange (sluice.dlx), or drops it if the queue has
 * none. Callers that want the reason kept publish through deadletter.h and
 * then acknowledge instead. */
int consumer_reject(consumer *c, uint64_t tag, char *err, size_t errlen);

#endif
