/*
 * hub: see hub.h. One mutex guards all queues: the work done under it is a
 * pointer move, and the publisher is a single thread anyway. Each queue is
 * a ring of hub_item.
 */
#include "hub.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct queue {
    hub_item *ring;
    size_t head, count;
    size_t bytes; /* of the bodies buffered */
    int finished;
    pthread_cond_t not_full; /* its reader waits here */
    int cond_ready;
} queue;

struct hub {
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* the publisher waits here */
    queue *queues;
    size_t nqueues, capacity, capacity_bytes, next, buffered;
};

hub *hub_new(size_t nsources, size_t capacity, size_t capacity_bytes)
{
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&h->not_empty, &attr);
    h->nqueues = nsources;
    h->capacity = capacity ? capacity : 1;
    h->capacity_bytes = capacity_bytes ? capacity_bytes : 1;
    h->queues = calloc(nsources ? nsources : 1, sizeof *h->queues);
    if (!h->queues)
        goto fail;
    for (size_t i = 0; i < nsources; i++) {
        /* One spare slot for the event a stopping reader hands over. */
        h->queues[i].ring = calloc(h->capacity + 1, sizeof(hub_item));
        if (!h->queues[i].ring)
            goto fail;
        pthread_cond_init(&h->queues[i].not_full, &attr);
        h->queues[i].cond_ready = 1;
    }
    pthread_condattr_destroy(&attr);
    return h;
fail:
    pthread_condattr_destroy(&attr);
    hub_free(h);
    return NULL;
}

void hub_item_free(hub_item *item)
{
    free(item->body);
    free(item->msg_id);
    memset(item, 0, sizeof *item);
}

void hub_free(hub *h)
{
    if (!h)
        return;
    for (size_t i = 0; h->queues && i < h->nqueues; i++) {
        queue *q = &h->queues[i];
        for (size_t k = 0; q->ring && k < q->count; k++)
            hub_item_free(&q->ring[(q->head + k) % (h->capacity + 1)]);
        free(q->ring);
        if (q->cond_ready)
            pthread_cond_destroy(&q->not_full);
    }
    free(h->queues);
    pthread_cond_destroy(&h->not_empty);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int hub_put(hub *h, size_t source, const char *body, size_t len, const char *msg_id,
            uint64_t position, const atomic_int *stop)
{
    /* Copy before taking the lock. */
    hub_item item = {.source = source, .len = len, .position = position};
    item.body = malloc(len ? len : 1);
    item.msg_id = strdup(msg_id);
    if (!item.body || !item.msg_id) {
        hub_item_free(&item);
        return -1;
    }
    memcpy(item.body, body, len);

    pthread_mutex_lock(&h->mu);
    queue *q = &h->queues[source];
    /* Full in events or in bytes; an empty queue takes any one event, or
     * an event bigger than the byte bound could never pass. Stopped, the
     * reader may use the one spare slot (and go over the byte bound by
     * that event): it reads nothing more after it. */
    for (;;) {
        int room = q->count < h->capacity && (q->count == 0 || q->bytes + len <= h->capacity_bytes);
        if (room || (atomic_load(stop) && q->count < h->capacity + 1))
            break;
        struct timespec ts;
        deadline_in(&ts, 200); /* a stop flag set without hub_wake is still seen */
        pthread_cond_timedwait(&q->not_full, &h->mu, &ts);
    }
    q->ring[(q->head + q->count) % (h->capacity + 1)] = item;
    q->count++;
    q->bytes += len;
    h->buffered++;
    pthread_cond_signal(&h->not_empty);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void hub_finish(hub *h, size_t source)
{
    pthread_mutex_lock(&h->mu);
    h->queues[source].finished = 1;
    pthread_cond_signal(&h->not_empty);
    pthread_mutex_unlock(&h->mu);
}

static int take_locked(hub *h, hub_item *item)
{
    for (size_t tried = 0; tried < h->nqueues; tried++) {
        size_t i = (h->next + tried) % h->nqueues;
        queue *q = &h->queues[i];
        if (q->count == 0)
            continue;
        *item = q->ring[q->head];
        memset(&q->ring[q->head], 0, sizeof *item);
        q->head = (q->head + 1) % (h->capacity + 1);
        q->count--;
        h->buffered--;
        size_t bytes_before = q->bytes;
        q->bytes -= item->len;
        h->next = (i + 1) % h->nqueues;
        /* Wake the reader once its queue is half empty, in events or in
         * bytes, rather than at every event: it then refills in one run
         * instead of a wake-up each. */
        if (q->count == h->capacity / 2 || q->count == 0 ||
            (bytes_before > h->capacity_bytes / 2 && q->bytes <= h->capacity_bytes / 2))
            pthread_cond_signal(&q->not_full);
        return 1;
    }
    return 0;
}

int hub_take(hub *h, hub_item *item, long timeout_ms)
{
    pthread_mutex_lock(&h->mu);
    int got = take_locked(h, item);
    if (!got && timeout_ms > 0) {
        struct timespec ts;
        deadline_in(&ts, timeout_ms);
        int rc = 0;
        while (!got && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&h->not_empty, &h->mu, &ts);
            got = take_locked(h, item);
            if (!got) {
                size_t finished = 0;
                for (size_t i = 0; i < h->nqueues; i++)
                    finished += h->queues[i].finished;
                if (finished == h->nqueues)
                    break;
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return got;
}

int hub_done(hub *h)
{
    pthread_mutex_lock(&h->mu);
    int done = h->buffered == 0;
    for (size_t i = 0; done && i < h->nqueues; i++)
        done = h->queues[i].finished;
    pthread_mutex_unlock(&h->mu);
    return done;
}

size_t hub_buffered(hub *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->buffered;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void hub_wake(hub *h)
{
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nqueues; i++)
        pthread_cond_signal(&h->queues[i].not_full);
    pthread_mutex_unlock(&h->mu);
}
