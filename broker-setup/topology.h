/*
 * topology: declares sluice's exchanges, queues and bindings (see the design
 * brief) on an AMQP connection. Every declaration is idempotent: running it
 * again against the same broker changes nothing.
 */
#ifndef SLUICE_TOPOLOGY_H
#define SLUICE_TOPOLOGY_H

#include "mq.h"
#include "util.h"

#define TOPOLOGY_OK 0
#define TOPOLOGY_FAILED (-1)   /* connection or broker failure */
#define TOPOLOGY_CONFLICT (-2) /* something exists with other arguments */

/* What kind of queues to declare. */
typedef struct topology_options {
    const char *queue_type; /* "classic", or "quorum" (replicated, for a cluster) */
    long delivery_limit;    /* quorum only: deliveries of one message before it is
                               dead-lettered (x-delivery-limit); 0 = no limit, on
                               RabbitMQ 3.x and 4 alike */
} topology_options;

/*
 * Declares sluice.ingest, sluice.dlx + sluice.dead, sluice.alerts +
 * sluice.q.notifier, and sluice.q.<source> bound with src.<source> for each
 * source. Quorum queues that dead-letter (the source queues and the
 * notifier's) get the delivery limit. On TOPOLOGY_CONFLICT, err names the
 * queue or exchange and the difference the broker reported (another queue
 * type or delivery limit, say); the channel is then closed and `c` must be
 * closed.
 */
int topology_declare(mq_conn *c, const strlist *sources, const topology_options *opt, char *err,
                     size_t errlen);

#endif
