/*
 * endpoint: the notifier's /metrics (Prometheus text) and /healthz, served
 * by libmicrohttpd on a thread of its own (the notifier never forks, unlike
 * the worker pool, so the daemon's internal thread is safe here).
 */
#ifndef SLUICE_NOTIFIER_ENDPOINT_H
#define SLUICE_NOTIFIER_ENDPOINT_H

#include <stdatomic.h>
#include <stddef.h>

#include "delivery.h"

typedef struct endpoint endpoint;

/* Listens on address:port (IPv4) for d's counters. `consumed` (borrowed,
 * set by the notifier's loop) says whether sluice.q.notifier is consumed
 * now: /healthz answers 503 while it is not (queue missing, consumer
 * cancelled by the broker), and /metrics shows it as
 * sluice_notifier_queue_consumed. NULL with err. Stop and free with
 * endpoint_stop() (accepts NULL) before freeing d. */
endpoint *endpoint_start(const char *address, long port, deliverer *d, const atomic_int *consumed,
                         char *err, size_t errlen);
void endpoint_stop(endpoint *e);

#endif
