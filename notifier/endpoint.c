/*
 * endpoint: see endpoint.h.
 */
#include "endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct endpoint {
    struct MHD_Daemon *daemon;
    deliverer *d;
    const atomic_int *consumed;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **state)
{
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)state;
    endpoint *e = cls;
    char *body = NULL;
    size_t len = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        body = strdup("method not allowed\n");
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, body, body ? strlen(body) : 0,
                       "text/plain");
    }
    if (strcmp(url, "/metrics") == 0) {
        FILE *out = open_memstream(&body, &len);
        if (!out)
            return MHD_NO;
        deliverer_render_metrics(e->d, out);
        fprintf(out,
                "# HELP sluice_notifier_queue_consumed Whether sluice.q.notifier is consumed now "
                "(0: queue missing or consumer cancelled).\n"
                "# TYPE sluice_notifier_queue_consumed gauge\n"
                "sluice_notifier_queue_consumed %d\n",
                atomic_load(e->consumed) ? 1 : 0);
        fclose(out);
        return respond(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4");
    }
    if (strcmp(url, "/healthz") == 0) {
        int ok = atomic_load(e->consumed);
        body = strdup(ok ? "ok\n"
                         : "sluice.q.notifier not consumed (queue missing or its consumer "
                           "cancelled)\n");
        return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body,
                       body ? strlen(body) : 0, "text/plain");
    }
    body = strdup("not found: try /metrics or /healthz\n");
    return respond(conn, MHD_HTTP_NOT_FOUND, body, body ? strlen(body) : 0, "text/plain");
}

endpoint *endpoint_start(const char *address, long port, deliverer *d, const atomic_int *consumed,
                         char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "metrics_address '%s' is not an IPv4 address", address);
        return NULL;
    }
    endpoint *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->d = d;
    e->consumed = consumed;
    /* Its thread starts with every signal blocked: they are the consuming
     * thread's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                                 handle, e, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!e->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%ld for /metrics (port in use?)", address, port);
        free(e);
        return NULL;
    }
    return e;
}

void endpoint_stop(endpoint *e)
{
    if (!e)
        return;
    MHD_stop_daemon(e->daemon);
    free(e);
}
