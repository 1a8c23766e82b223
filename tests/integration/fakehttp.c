/*
 * fakehttp: see fakehttp.h.
 */
#include "fakehttp.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

typedef struct canned {
    int status;
    char body[512];
    int times;        /* for scripts */
    long delay_ms;    /* for fake_http_delay */
    char marker[128]; /* for fake_http_when */
} canned;

struct fake_http {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    fake_request *requests;
    size_t count, cap;
    canned script[32];
    size_t nscript;
    canned when[8];
    size_t nwhen;
    canned slow[8];
    size_t nslow;
};

typedef struct upload {
    char *data;
    size_t len;
} upload;

static int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Picks the reply for a body, under the lock. */
static void choose(fake_http *f, const char *body, int *status, const char **reply)
{
    *status = 200;
    *reply = "{\"ok\":true,\"result\":{\"message_id\":1}}";
    for (size_t i = 0; i < f->nwhen; i++) {
        if (strstr(body, f->when[i].marker)) {
            *status = f->when[i].status;
            *reply = f->when[i].body;
            return;
        }
    }
    if (f->nscript > 0) {
        *status = f->script[0].status;
        *reply = f->script[0].body;
        if (--f->script[0].times == 0) {
            /* The reply text must outlive the shift: keep it in a static. */
            static char last[512];
            snprintf(last, sizeof last, "%s", f->script[0].body);
            *reply = last;
            memmove(f->script, f->script + 1, --f->nscript * sizeof *f->script);
        }
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
    fake_http *f = cls;
    (void)version;
    (void)method;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(upload));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        char *grown = realloc(u->data, u->len + *data_size + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + u->len, data, *data_size);
        u->data = grown;
        u->len += *data_size;
        u->data[u->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    const char *body = u->data ? u->data : "";
    const char *alert_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Sluice-Alert-Id");
    int status;
    const char *reply;
    char reply_copy[512];
    pthread_mutex_lock(&f->lock);
    choose(f, body, &status, &reply);
    snprintf(reply_copy, sizeof reply_copy, "%s", reply);
    long delay_ms = 0;
    for (size_t i = 0; i < f->nslow; i++) {
        if (strstr(body, f->slow[i].marker))
            delay_ms = f->slow[i].delay_ms;
    }
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        fake_request *grown = realloc(f->requests, cap * sizeof *grown);
        if (grown) {
            f->requests = grown;
            f->cap = cap;
        }
    }
    if (f->count < f->cap) {
        fake_request *r = &f->requests[f->count++];
        memset(r, 0, sizeof *r);
        snprintf(r->path, sizeof r->path, "%s", url);
        snprintf(r->alert_id, sizeof r->alert_id, "%s", alert_id ? alert_id : "");
        r->body = strdup(body);
        r->at_us = mono_now_us();
        r->status = status;
    }
    pthread_mutex_unlock(&f->lock);
    if (delay_ms) {
        struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(reply_copy), reply_copy, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    upload *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

fake_http *fake_http_start(int port)
{
    fake_http *f = calloc(1, sizeof *f);
    if (!f)
        fail_msg("out of memory");
    pthread_mutex_init(&f->lock, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    f->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, f,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                         completed, f, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!f->daemon)
        fail_msg("fake HTTP server: cannot listen on 127.0.0.1:%d", port);
    return f;
}

static void forget(fake_http *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->requests[i].body);
    f->count = 0;
    f->nscript = 0;
    f->nwhen = 0;
    f->nslow = 0;
}

void fake_http_stop(fake_http *f)
{
    if (!f)
        return;
    MHD_stop_daemon(f->daemon);
    forget(f);
    free(f->requests);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void fake_http_reset(fake_http *f)
{
    pthread_mutex_lock(&f->lock);
    forget(f);
    pthread_mutex_unlock(&f->lock);
}

void fake_http_script(fake_http *f, int status, const char *body, int times)
{
    pthread_mutex_lock(&f->lock);
    if (f->nscript < sizeof f->script / sizeof *f->script) {
        canned *c = &f->script[f->nscript++];
        c->status = status;
        snprintf(c->body, sizeof c->body, "%s", body);
        c->times = times;
    }
    pthread_mutex_unlock(&f->lock);
}

void fake_http_when(fake_http *f, const char *marker, int status, const char *body)
{
    pthread_mutex_lock(&f->lock);
    if (f->nwhen < sizeof f->when / sizeof *f->when) {
        canned *c = &f->when[f->nwhen++];
        c->status = status;
        snprintf(c->body, sizeof c->body, "%s", body);
        snprintf(c->marker, sizeof c->marker, "%s", marker);
    }
    pthread_mutex_unlock(&f->lock);
}

void fake_http_delay(fake_http *f, const char *marker, long delay_ms)
{
    pthread_mutex_lock(&f->lock);
    if (f->nslow < sizeof f->slow / sizeof *f->slow) {
        canned *c = &f->slow[f->nslow++];
        c->delay_ms = delay_ms;
        snprintf(c->marker, sizeof c->marker, "%s", marker);
    }
    pthread_mutex_unlock(&f->lock);
}

size_t fake_http_count(fake_http *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->count;
    pthread_mutex_unlock(&f->lock);
    return n;
}

int fake_http_request(fake_http *f, size_t i, fake_request *out)
{
    int rc = -1;
    pthread_mutex_lock(&f->lock);
    if (i < f->count) {
        *out = f->requests[i];
        out->body = strdup(f->requests[i].body ? f->requests[i].body : "");
        rc = 0;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}
