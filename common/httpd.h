/*
 * httpd: the small HTTP endpoint every long-running sluice process serves
 * for Prometheus and health checks: GET /metrics (text exposition format)
 * and GET /healthz (200 "ok", or 503 with the reason), on libmicrohttpd.
 * What the two pages say comes from the caller's handlers; this module only
 * listens, routes and answers.
 *
 * Two ways to run it: on a thread of its own (the notifier, whose main
 * thread blocks in AMQP and PostgreSQL calls), or polled by the caller's
 * loop (the worker's supervisor, which forks and so must stay
 * single-threaded: a fork while another thread holds malloc's lock
 * deadlocks the child).
 */
#ifndef SLUICE_HTTPD_H
#define SLUICE_HTTPD_H

#include <stddef.h>
#include <stdio.h>

typedef struct httpd httpd;

typedef struct httpd_handlers {
    /* Writes the metrics page to out. */
    void (*render_metrics)(void *ctx, FILE *out);
    /* Returns 1 if ready; else 0 with a one-line reason in why. */
    int (*ready)(void *ctx, char *why, size_t whylen);
    void *ctx; /* passed to both; borrowed */
} httpd_handlers;

typedef enum {
    HTTPD_OWN_THREAD,   /* serves from a thread it starts, all signals blocked there */
    HTTPD_CALLER_POLLS, /* serves only inside httpd_serve() */
} httpd_mode;

/*
 * Listens on address:port (IPv4). The handlers are
 * copied; their ctx must outlive the endpoint. Returns NULL with err on
 * failure (a bad address, the port in use). Free with httpd_stop().
 */
httpd *httpd_start(const char *address, long port, httpd_mode mode, const httpd_handlers *h,
                   char *err, size_t errlen);

/* Stops serving and frees h; accepts NULL. */
void httpd_stop(httpd *h);

/*
 * HTTPD_CALLER_POLLS: waits up to timeout_ms for requests and answers them.
 * A signal ends the wait early. With h NULL it just waits.
 */
void httpd_serve(httpd *h, long timeout_ms);

/* In a forked child: closes the listening socket the child inherited, so
 * only the parent answers on it. Accepts NULL. */
void httpd_forget_in_child(httpd *h);

#endif
