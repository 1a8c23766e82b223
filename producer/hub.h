/*
 * hub: the bounded buffer between the sources' reader threads and the
 * publishing thread. Each source has its own queue of at most `capacity`
 * events and `capacity_bytes` bytes of bodies (whichever comes first), so
 * a fast source cannot crowd out a slow one, and a full queue
 * makes its reader wait (backpressure on the source) instead of growing or
 * dropping. The publisher takes from the sources in turn.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SLUICE_HUB_H
#define SLUICE_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One buffered event; owns its copies. Free with hub_item_free(). */
typedef struct hub_item {
    size_t source; /* index given to hub_put */
    char *body;    /* not NUL-terminated; len bytes */
    size_t len;
    char *msg_id;
    uint64_t position;
} hub_item;

typedef struct hub hub;

/* Creates queues for `nsources` sources of `capacity` events and
 * `capacity_bytes` bytes of bodies each (an empty queue takes any one
 * event, however big). Free with hub_free(), which frees events still
 * buffered. */
hub *hub_new(size_t nsources, size_t capacity, size_t capacity_bytes);
void hub_free(hub *h);

/*
 * Copies one event into source's queue, waiting while it is full. Once
 * *stop is set, the queue takes one event over its capacity, because a
 * stopping reader must not lose the event it has already read (stdin cannot
 * be read again); it reads no more after that. Returns 0, or -1 if out of
 * memory (not taken).
 */
int hub_put(hub *h, size_t source, const char *body, size_t len, const char *msg_id,
            uint64_t position, const atomic_int *stop);

/* Records that `source` puts nothing more. */
void hub_finish(hub *h, size_t source);

/* Takes the oldest event of the next source in turn that has one, waiting
 * up to timeout_ms. Returns 1 with *item filled, 0 if none came. */
int hub_take(hub *h, hub_item *item, long timeout_ms);

/* 1 once every source finished and every queue is empty. */
int hub_done(hub *h);

/* Events buffered in all queues. */
size_t hub_buffered(hub *h);

/* Wakes readers waiting for room (after setting their stop flag). */
void hub_wake(hub *h);

void hub_item_free(hub_item *item);

#endif
