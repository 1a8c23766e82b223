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

#define DEFAULT_REPLY "{\"ok\":true,\"result\":{\"message_id\":1}}"

typedef struct canned {
    int status;
    char body[512];
    int times;        /* for scripts */
    long delay_ms;    /* for fake_http_delay */
    char marker[128]; /* for fake_http_when */
} canned;

/* One request received: what fake_http_request() copies, and the header
 * lines fake_http_saw_header() looks at. */
typedef struct record {
    fake_request req;
    char *headers; /* malloc'd */
} record;

struct fake_http {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    record *records;
    size_t count, cap;
    canned script[32];
    size_t nscript;
    canned when[8];
    size_t nwhen;
    canned slow[8];
    size_t nslow;
    fake_http_route_fn route;
    void *route_arg;
};

/* A request's body as it arrives. */
typedef struct upload {
    char *data;
    size_t len;
} upload;

/* An answer, copied out of the server's state so that it can be sent
 * without the lock. */
typedef struct answer {
    int status;
    char *body; /* malloc'd */
    char names[FAKE_HTTP_MAX_HEADERS][64];
    char values[FAKE_HTTP_MAX_HEADERS][256];
    size_t nheaders;
    long delay_ms;
} answer;

static int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends text to a malloc'd string (*s may be NULL); keeps *s as it was
 * if memory runs out. */
static void append(char **s, const char *text)
{
    size_t old = *s ? strlen(*s) : 0, add = strlen(text);
    char *grown = realloc(*s, old + add + 1);
    if (!grown)
        return;
    memcpy(grown + old, text, add + 1);
    *s = grown;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    append(cls, key);
    append(cls, ": ");
    append(cls, value ? value : "");
    append(cls, "\r\n");
    return MHD_YES;
}

static unsigned hits_locked(const fake_http *f, const char *path)
{
    unsigned n = 0;
    for (size_t i = 0; i < f->count; i++)
        n += strcmp(f->records[i].req.path, path) == 0;
    return n;
}

/* Picks the answer to a request, under the lock. */
static void choose(fake_http *f, const fake_call *call, answer *a)
{
    for (size_t i = 0; i < f->nslow; i++) {
        if (strstr(call->body, f->slow[i].marker))
            a->delay_ms = f->slow[i].delay_ms;
    }
    for (size_t i = 0; i < f->nwhen; i++) {
        if (strstr(call->body, f->when[i].marker)) {
            a->status = f->when[i].status;
            a->body = strdup(f->when[i].body);
            return;
        }
    }
    if (f->nscript > 0) {
        a->status = f->script[0].status;
        a->body = strdup(f->script[0].body);
        if (--f->script[0].times == 0)
            memmove(f->script, f->script + 1, --f->nscript * sizeof *f->script);
        return;
    }
    if (!f->route) {
        a->status = 200;
        a->body = strdup(DEFAULT_REPLY);
        return;
    }
    fake_reply r = {.status = 200};
    f->route(call, &r, f->route_arg);
    a->status = r.status;
    a->body = strdup(r.body ? r.body : "");
    for (size_t i = 0; i < FAKE_HTTP_MAX_HEADERS; i++) {
        if (!r.headers[i].name)
            continue;
        snprintf(a->names[a->nheaders], sizeof a->names[0], "%s", r.headers[i].name);
        snprintf(a->values[a->nheaders], sizeof a->values[0], "%s",
                 r.headers[i].value ? r.headers[i].value : "");
        a->nheaders++;
    }
    if (r.delay_ms > a->delay_ms)
        a->delay_ms = r.delay_ms;
}

/* Records a request and picks its answer, under the lock. Returns -1 if
 * memory ran out. */
static int receive(fake_http *f, struct MHD_Connection *conn, const char *url, const char *method,
                   const char *body, answer *a)
{
    char *headers = NULL;
    append(&headers, "");
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
    const char *alert_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Sluice-Alert-Id");
    int rc = -1;
    pthread_mutex_lock(&f->lock);
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        record *grown = realloc(f->records, cap * sizeof *grown);
        if (grown) {
            f->records = grown;
            f->cap = cap;
        }
    }
    if (headers && f->count < f->cap) {
        fake_call call = {.method = method,
                          .path = url,
                          .headers = headers,
                          .body = body,
                          .hit = hits_locked(f, url) + 1};
        choose(f, &call, a);
        record *r = &f->records[f->count++];
        memset(r, 0, sizeof *r);
        snprintf(r->req.method, sizeof r->req.method, "%s", method);
        snprintf(r->req.path, sizeof r->req.path, "%s", url);
        snprintf(r->req.alert_id, sizeof r->req.alert_id, "%s", alert_id ? alert_id : "");
        r->req.body = strdup(body);
        r->req.at_us = mono_now_us();
        r->req.status = a->status;
        r->headers = headers;
        headers = NULL;
        rc = a->body ? 0 : -1;
    }
    pthread_mutex_unlock(&f->lock);
    free(headers);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
    fake_http *f = cls;
    (void)version;
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
    answer a = {0};
    if (receive(f, conn, url, method, u->data ? u->data : "", &a) != 0) {
        free(a.body);
        return MHD_NO;
    }
    if (a.delay_ms) {
        /* This connection's own thread: the others are answered meanwhile. */
        struct timespec ts = {.tv_sec = a.delay_ms / 1000,
                              .tv_nsec = (a.delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    size_t len = a.status == 204 || a.status == 304 ? 0 : strlen(a.body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, a.body, MHD_RESPMEM_MUST_COPY);
    free(a.body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    for (size_t i = 0; i < a.nheaders; i++)
        MHD_add_response_header(resp, a.names[i], a.values[i]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)a.status, resp);
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
    /* A thread per connection: a held-back answer blocks only its own. */
    f->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                 (uint16_t)port, NULL, NULL, handle, f, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, completed, f,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!f->daemon)
        fail_msg("fake HTTP server: cannot listen on 127.0.0.1:%d", port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
    f->port = info ? info->port : port;
    if (f->port == 0)
        fail_msg("fake HTTP server: cannot tell which port it listens on");
    return f;
}

int fake_http_port(const fake_http *f)
{
    return f->port;
}

static void forget(fake_http *f)
{
    for (size_t i = 0; i < f->count; i++) {
        free(f->records[i].req.body);
        free(f->records[i].headers);
    }
    f->count = 0;
    f->nscript = 0;
    f->nwhen = 0;
    f->nslow = 0;
    f->route = NULL;
    f->route_arg = NULL;
}

void fake_http_stop(fake_http *f)
{
    if (!f)
        return;
    if (f->daemon)
        MHD_stop_daemon(f->daemon);
    forget(f);
    free(f->records);
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

void fake_http_route(fake_http *f, fake_http_route_fn route, void *arg)
{
    pthread_mutex_lock(&f->lock);
    f->route = route;
    f->route_arg = arg;
    pthread_mutex_unlock(&f->lock);
}

size_t fake_http_count(fake_http *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->count;
    pthread_mutex_unlock(&f->lock);
    return n;
}

unsigned fake_http_hits(fake_http *f, const char *path)
{
    pthread_mutex_lock(&f->lock);
    unsigned n = hits_locked(f, path);
    pthread_mutex_unlock(&f->lock);
    return n;
}

int fake_http_saw_header(fake_http *f, const char *path, const char *text)
{
    int seen = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->count && !seen; i++) {
        const record *r = &f->records[i];
        seen = strcmp(r->req.path, path) == 0 && r->headers && strstr(r->headers, text);
    }
    pthread_mutex_unlock(&f->lock);
    return seen;
}

int fake_http_request(fake_http *f, size_t i, fake_request *out)
{
    int rc = -1;
    pthread_mutex_lock(&f->lock);
    if (i < f->count) {
        *out = f->records[i].req;
        out->body = strdup(f->records[i].req.body ? f->records[i].req.body : "");
        rc = 0;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}
