/*
 * httpd: see httpd.h.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

struct httpd {
    struct MHD_Daemon *daemon;
    httpd_handlers h;
};

/* Queues body (malloc'd, or NULL) and takes it over whatever happens. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *content_type)
{
    if (!body)
        return MHD_NO;
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

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    return respond(conn, status, body, body ? strlen(body) : 0, "text/plain");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **state)
{
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)state;
    const httpd *d = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    char *body = NULL;
    size_t len = 0;
    if (strcmp(url, "/metrics") == 0) {
        FILE *out = open_memstream(&body, &len);
        if (!out)
            return MHD_NO;
        d->h.render_metrics(d->h.ctx, out);
        fclose(out);
        return respond(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4");
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[256] = "";
        int ready = d->h.ready(d->h.ctx, why, sizeof why);
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
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
}

httpd *httpd_start(const char *address, long port, httpd_mode mode, const httpd_handlers *h,
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
    httpd *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->h = *h;
    unsigned flags = mode == HTTPD_OWN_THREAD ? MHD_USE_INTERNAL_POLLING_THREAD : MHD_NO_FLAG;
    /* The thread starts with every signal blocked: they belong to the
     * process's own threads, which decide what a SIGTERM means. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    d->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, d,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!d->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%ld for /metrics (port in use?)", address, port);
        free(d);
        return NULL;
    }
    return d;
}

void httpd_stop(httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}

void httpd_forget_in_child(httpd *h)
{
    if (!h)
        return;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info)
        close(info->listen_fd);
}

void httpd_serve(httpd *h, long timeout_ms)
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
