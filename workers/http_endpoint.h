/*
 * http_endpoint: serves the pool's /metrics (Prometheus text) and /healthz
 * (200 while every worker has both connections, else 503) with
 * libmicrohttpd. It runs no thread of its own: the caller drives it with
 * http_endpoint_serve(). The supervisor forks workers, and forking a
 * process with several threads can leave a lock held forever in the child.
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

/* Waits up to timeout_ms for requests and answers them. With h NULL, just
 * sleeps (interrupted by signals). */
void http_endpoint_serve(http_endpoint *h, long timeout_ms);

/* Closes, in a forked child, the sockets the child inherited, so the port
 * is free again as soon as the process that serves it exits. Accepts NULL. */
void http_endpoint_forget_in_child(http_endpoint *h);

#endif
