/*
 * http_endpoint: serves the pool's /metrics (Prometheus text) and /healthz
 * (200 while every worker has both connections, else 503) with
 * libmicrohttpd, on its own thread.
 */
#ifndef SLUICE_HTTP_ENDPOINT_H
#define SLUICE_HTTP_ENDPOINT_H

#include <stddef.h>

#include "metrics.h"

typedef struct http_endpoint http_endpoint;

/* Listens on address:port (an IPv4 address, normally 127.0.0.1). Returns
 * NULL with err filled. Stop and free with http_endpoint_stop(). */
http_endpoint *http_endpoint_start(const char *address, long port, metrics *m, char *err,
                                   size_t errlen);
void http_endpoint_stop(http_endpoint *h); /* accepts NULL */

#endif
