/*
 * destination: one place alerts are delivered to (a Telegram chat, the
 * webhook URL, the log), served by a thread of its own from the outbox in
 * PostgreSQL (ledger.h). What holds one destination back (its rate, a 429's
 * retry_after, backoff after 5xx, an endpoint that answers slowly or not at
 * all) holds back only that thread; the others go on.
 *
 * Why a thread per destination rather than one event loop over curl's multi
 * interface: each step of a delivery is a blocking call (libpq for the
 * claim and the outcome, libcurl for the request), and the destinations are
 * few and known from the routes (a chat per route entry, one webhook, the
 * log). A thread each keeps every step a plain sequence (claim, send,
 * record) that reads like the guarantee it gives, with a PostgreSQL
 * connection and an HTTP connection of its own; what the threads share
 * (Telegram's overall rate, the grouping settings, the dead-letter
 * publisher, the counters) is behind one mutex.
 *
 * Within a destination, the due group with the most severe alert goes
 * first, so a critical alert never waits behind a backlog of info alerts
 * (only behind the one message already under way).
 */
#ifndef SLUICE_DESTINATION_H
#define SLUICE_DESTINATION_H

#include <pthread.h>
#include <stdint.h>

#include "channels.h"
#include "deadletter.h"
#include "grouping.h"
#include "ratelimit.h"

/* Settings every destination reads; fixed while they run. */
typedef struct dest_config {
    const char *pg_dsn;
    const channel_settings *channels;
    long max_attempts; /* per message, for 5xx and network errors */
    long backoff_base_ms, backoff_max_ms;
    long rate_per_chat; /* messages per second to one paced destination */
    long http_timeout_ms;
} dest_config;

/* What the destinations share, owned by the deliverer. Lock `lock` to read
 * or change `group`, `total` and `dead`. */
typedef struct dest_shared {
    const dest_config *cfg;
    pthread_mutex_t lock;
    grouping group;     /* changed by a reload */
    token_bucket total; /* Telegram's overall rate, across chats */
    deadletter *dead;   /* not thread-safe on its own */
    volatile int stopping;
} dest_shared;

/* What a destination has done, for /metrics. */
typedef struct dest_counts {
    uint64_t delivered, failed, messages, parts, retries;
    long long backlog; /* deliveries not final, as last read (-1: not yet) */
} dest_counts;

typedef struct destination destination;

/* Starts serving the destination `name` ("telegram:111", "webhook", "log")
 * of class cls and target (NULL if the class takes none; copied). Returns
 * NULL with err. Stop with destination_stop(), then destination_free(). */
destination *destination_start(dest_shared *sh, const char *name, const channel_class *cls,
                               const char *target, char *err, size_t errlen);

/* Tells it new alerts may be pending (after the planning commit). */
void destination_wake(destination *t);

/* Wakes it to see sh->stopping; destination_free() joins the thread. A
 * message under way is finished or handed back as 'retrying'. */
void destination_stop(destination *t);
void destination_free(destination *t);

const char *destination_name(const destination *t);
const channel_class *destination_class(const destination *t);
void destination_counts(destination *t, dest_counts *out);

#endif
