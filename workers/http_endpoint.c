/*
 * http_endpoint: see http_endpoint.h.
 */
#include "http_endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

struct http_endpoint {
    struct MHD_Daemon *daemon;
    metrics *m;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *content_type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
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
    http_endpoint *h = cls;
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
        metrics_render(h->m, out);
        fclose(out);
        return respond(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4");
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[256];
        int ready = metrics_ready(h->m, why, sizeof why);
        FILE *out = open_memstream(&body, &len);
        if (!out)
            return MHD_NO;
        if (ready)
            fputs("ok\n", out);
        else
            fprintf(out, "not ready: %s\n", why);
        fclose(out);
        return respond(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, len,
                       "text/plain");
    }
    body = strdup("not found: try /metrics or /healthz\n");
    return respond(conn, MHD_HTTP_NOT_FOUND, body, body ? strlen(body) : 0, "text/plain");
}

http_endpoint *http_endpoint_start(const char *address, long port, metrics *m, char *err,
                                   size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "metrics_address '%s' is not an IPv4 address", address);
        return NULL;
    }
    http_endpoint *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->m = m;
    h->daemon = MHD_start_daemon(MHD_NO_FLAG, (uint16_t)port, NULL, NULL, handle, h,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%ld for /metrics (port in use?)", address, port);
        free(h);
        return NULL;
    }
    return h;
}

void http_endpoint_stop(http_endpoint *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}

void http_endpoint_forget_in_child(http_endpoint *h)
{
    if (!h)
        return;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info)
        close(info->listen_fd);
}

void http_endpoint_serve(http_endpoint *h, long timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (!h) {
        select(0, NULL, NULL, NULL, &tv);
        return;
    }
    fd_set rs, ws, es;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    MHD_socket max = 0;
    if (MHD_get_fdset(h->daemon, &rs, &ws, &es, &max) != MHD_YES) {
        select(0, NULL, NULL, NULL, &tv);
        return;
    }
    /* A signal (SIGTERM, SIGCHLD) ends the wait early, which is wanted. */
    if (select(max + 1, &rs, &ws, &es, &tv) > 0)
        MHD_run_from_select(h->daemon, &rs, &ws, &es);
    else
        MHD_run(h->daemon); /* connection timeouts */
}
