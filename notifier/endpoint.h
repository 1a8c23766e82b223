/*
 * endpoint: the notifier's /metrics (Prometheus text) and /healthz, served
 * by libmicrohttpd on a thread of its own (the notifier never forks, unlike
 * the worker pool, so the daemon's internal thread is safe here).
 */
#ifndef SLUICE_NOTIFIER_ENDPOINT_H
#define SLUICE_NOTIFIER_ENDPOINT_H

#include <stddef.h>

#include "delivery.h"

typedef struct endpoint endpoint;

/* Listens on address:port (IPv4) for d's counters. NULL with err. Stop and
 * free with endpoint_stop() (accepts NULL) before freeing d. */
endpoint *endpoint_start(const char *address, long port, deliverer *d, char *err, size_t errlen);
void endpoint_stop(endpoint *e);

#endif
