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

/*
 * Declares sluice.ingest, sluice.dlx + sluice.dead, sluice.alerts +
 * sluice.q.notifier, and sluice.q.<source> bound with src.<source> for each
 * source. queue_type is "classic" or "quorum". On TOPOLOGY_CONFLICT, err
 * names the queue or exchange and the difference the broker reported; the
 * channel is then closed and `c` must be closed.
 */
int topology_declare(mq_conn *c, const strlist *sources, const char *queue_type, char *err,
                     size_t errlen);

#endif
