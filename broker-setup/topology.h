/*
 * topology: sluice-setup's RabbitMQ part (main.c lists both servers' parts).
 * Declares sluice's exchanges, queues and bindings on an AMQP
 * connection: the names of event.h, as the README's sluice-setup section
 * lists them, which every producer, worker and notifier relies on. Every
 * declaration is idempotent: running it again against the same broker
 * changes nothing.
 */
#ifndef SLUICE_TOPOLOGY_H
#define SLUICE_TOPOLOGY_H

#include "mq.h"
#include "util.h"

#define TOPOLOGY_OK 0
#define TOPOLOGY_FAILED (-1)       /* connection or broker failure */
#define TOPOLOGY_CONFLICT (-2)     /* something exists with other arguments */
#define TOPOLOGY_NO_ALTERNATE (-3) /* sluice.ingest exists without our alternate exchange */

/* The queue types, in the order of topology_queue_types[]. */
typedef enum {
    QUEUE_CLASSIC,
    QUEUE_QUORUM, /* replicated on every node of a cluster */
} topology_queue_type;

/* The x-queue-type of each topology_queue_type, NULL-terminated (the
 * choices of sluice-setup's queue_type). Statically allocated. */
extern const char *const topology_queue_types[];

/* What kind of queues to declare. */
typedef struct topology_options {
    topology_queue_type queue_type;
    long delivery_limit;          /* quorum only: deliveries of one message before it is
                                     dead-lettered (x-delivery-limit); 0 = no limit, on
                                     RabbitMQ 3.x and 4 alike */
    int ingest_without_alternate; /* declare sluice.ingest as setups before the alternate
                                     exchange did: a policy supplies it (policy.h) */
} topology_options;

/*
 * Declares sluice.unrouted (fanout, internal) + sluice.q.unrouted,
 * sluice.ingest with sluice.unrouted as its alternate exchange (so a
 * message no source queue is bound for is kept, whoever published it),
 * sluice.dlx + sluice.dead, sluice.alerts + sluice.q.notifier, and
 * sluice.q.<source> bound with src.<source> for each source. Quorum queues
 * that dead-letter (the source queues, the notifier's and the unrouted
 * one) get the delivery limit.
 *
 * RabbitMQ refuses to redeclare an exchange with another alternate
 * exchange, so an sluice.ingest declared by an older setup (without one)
 * gives TOPOLOGY_NO_ALTERNATE: the caller sets the alternate exchange by a
 * policy instead, then declares again with ingest_without_alternate.
 *
 * On TOPOLOGY_CONFLICT, err names the queue or exchange and the difference
 * the broker reported (another queue type or delivery limit, say). After
 * either, the channel is closed and `c` must be closed.
 */
int topology_declare(mq_conn *c, const strlist *sources, const topology_options *opt, char *err,
                     size_t errlen);

#endif
