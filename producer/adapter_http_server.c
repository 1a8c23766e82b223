/*
 * adapter_http_server: the "http_server" source adapter, the HTTP door:
 * clients POST events to it, and its success answer is a promise. A
 * request is answered 202 only once the broker has confirmed every one of
 * its events (persistent, in a durable queue), so the worker will store
 * each exactly once; until then the client waits, and if that cannot
 * happen in time (broker unreachable, buffer full, confirms late, the
 * producer stopping) the answer is 503 with Retry-After, never a 2xx.
 *
 * How a request's events reach the broker and the confirm comes back: the
 * request's connection thread checks the body (auth, size, split, every
 * event validated as any adapter's are), gives each event a position (one
 * counter per source, so a request is a contiguous range of positions)
 * and queues the request; next(), on the source's reader thread, hands the
 * events out one by one in that order; the hub and the publisher carry
 * them like any other source's; the publisher reports confirmed positions
 * in order (publisher.h), and confirmed() wakes the requests whose last
 * position is covered. Positions of events never handed out (a request
 * given up before all of them were) are simply skipped: a later confirm
 * covers only requests queued before it, whose events all went out first.
 *
 * All or nothing: a request with any invalid event is refused whole (400,
 * naming each bad event's index and reason) and none of it is published,
 * so a client never has to work out which part of a batch was taken: it
 * fixes the batch and sends it again, or drops it. A 503 promises nothing
 * either way (some events may be published later); a retry is safe
 * because message ids are the same the second time: from the
 * Idempotency-Key header and the event's index in the request if given,
 * else from id_pointer's member if set and present, else a digest of the
 * source and the event's bytes.
 *
 * Listening: libmicrohttpd with a thread per connection (bounded by
 * max_connections), so a slow client, or a request waiting for its
 * confirms, holds back no other. Sources that name the same address and
 * port share one listener, each on its own path; the listener also serves
 * GET /metrics (Prometheus text) and GET /healthz (200 while every source
 * on it takes requests) for the sources it carries, since the producer
 * has no other HTTP endpoint.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "adapter.h"
#include "buf.h"
#include "gunzip.h"
#include "http_auth.h"
#include "http_body.h"
#include "http_metrics.h"
#include "json_scan.h"
#include "log.h"
#include "util.h"

typedef enum { AUTH_REQUIRED, AUTH_NONE } auth_mode;
static const char *const auth_words[] = {"required", "none", NULL};

typedef struct hs_conf {
    char *address;
    long port;
    char *path;
    int auth; /* auth_mode */
    strlist tokens;
    char *tokens_file;
    char *hmac_secret;
    char *hmac_secret_file;
    char *signature_header;
    char *signature_prefix;
    char *id_pointer;
    long max_body_bytes, max_events, max_pending_bytes, confirm_timeout_ms, retry_after_s;
    long max_connections, connection_timeout_s;
    char *tls_cert_file, *tls_key_file;
} hs_conf;

static const cfg_option hs_settings[] = {
    {"address", CFG_STRING, offsetof(hs_conf, address), "127.0.0.1", 0, 0,
     "IPv4 or IPv6 address to listen on (0.0.0.0: every interface)", NULL},
    {"port", CFG_INT, offsetof(hs_conf, port), "8088", 0, 65535,
     "TCP port; sources with the same address and port share one listener", NULL},
    {"path", CFG_STRING, offsetof(hs_conf, path), NULL, 0, 0,
     "path clients POST to; default /v1/sources/<source>", NULL},
    {"auth", CFG_ENUM, offsetof(hs_conf, auth), "required", 0, 0,
     "required: token and/or hmac_secret must be set (every one set must pass); none: anyone "
     "who reaches the port may post",
     auth_words},
    {"token", CFG_LIST, offsetof(hs_conf, tokens), NULL, 0, 0,
     "a bearer token accepted (Authorization: Bearer ...); ${VAR} is the environment's VAR; "
     "may be given several times",
     NULL},
    {"tokens_file", CFG_STRING, offsetof(hs_conf, tokens_file), NULL, 0, 0,
     "file of accepted bearer tokens, one per line ('#' comments)", NULL},
    {"hmac_secret", CFG_STRING, offsetof(hs_conf, hmac_secret), NULL, 0, 0,
     "secret of the body's HMAC-SHA256 signature; ${VAR} is the environment's VAR", NULL},
    {"hmac_secret_file", CFG_STRING, offsetof(hs_conf, hmac_secret_file), NULL, 0, 0,
     "file holding the HMAC secret (one trailing newline dropped)", NULL},
    {"signature_header", CFG_STRING, offsetof(hs_conf, signature_header), "X-Hub-Signature-256", 0,
     0, "header carrying the signature", NULL},
    {"signature_prefix", CFG_STRING, offsetof(hs_conf, signature_prefix), "sha256=", 0, 0,
     "text before the signature's hex digits", NULL},
    {"id_pointer", CFG_STRING, offsetof(hs_conf, id_pointer), NULL, 0, 0,
     "JSON pointer to an event's identifying field, e.g. /id, used when a request has no "
     "Idempotency-Key; without either, ids come from the event's bytes",
     NULL},
    {"max_body_bytes", CFG_INT, offsetof(hs_conf, max_body_bytes), "10485760", 1024, 1L << 32,
     "largest request body, as sent and once inflated; larger ones get 413 unread", NULL},
    {"max_events", CFG_INT, offsetof(hs_conf, max_events), "100000", 1, 10000000,
     "most events in one request; more get 413", NULL},
    {"max_pending_bytes", CFG_INT, offsetof(hs_conf, max_pending_bytes), "67108864", 65536,
     1L << 40, "bytes of bodies waiting for their confirms; a request over it gets 503", NULL},
    {"confirm_timeout_ms", CFG_INT, offsetof(hs_conf, confirm_timeout_ms), "10000", 100, 600000,
     "how long a request waits for its confirms before 503", NULL},
    {"retry_after_s", CFG_INT, offsetof(hs_conf, retry_after_s), "1", 1, 3600,
     "Retry-After of a 503", NULL},
    {"max_connections", CFG_INT, offsetof(hs_conf, max_connections), "1024", 1, 100000,
     "open connections of the listener (one thread each)", NULL},
    {"connection_timeout_s", CFG_INT, offsetof(hs_conf, connection_timeout_s), "60", 1, 3600,
     "a connection idle this long is closed", NULL},
    {"tls_cert_file", CFG_STRING, offsetof(hs_conf, tls_cert_file), NULL, 0, 0,
     "PEM certificate (chain) of the listener: serve HTTPS", NULL},
    {"tls_key_file", CFG_STRING, offsetof(hs_conf, tls_key_file), NULL, 0, 0,
     "PEM private key of tls_cert_file", NULL},
    CFG_END,
};

#define AUTH_LOG_SLOTS 32

typedef struct listener listener;
typedef struct request request;

/* One source's instance. Reference-counted: its close() and each request
 * routed to it hold one, so a connection still open at close never points
 * at freed memory. */
typedef struct hs {
    char name[72];
    char path[256];
    listener *ls;
    atomic_int refs;
    /* Settings. */
    size_t max_body, max_events, max_pending;
    long confirm_timeout_ms, retry_after_s, rate;
    char *id_pointer;
    auth_tokens tokens;
    unsigned char *secret;
    size_t secret_len;
    char *sig_header, *sig_prefix;
    event_validator *validator;
    const atomic_int *stop;

    pthread_mutex_t mu;
    pthread_cond_t ready; /* the reader waits here for events */
    pthread_cond_t done;  /* requests wait here for their confirms */
    request *head, *tail; /* requests with events not yet handed out, oldest first */
    uint64_t next_pos;    /* last position given out */
    uint64_t confirmed_pos;
    uint64_t requests; /* numbered for messages */
    size_t pending_bytes;
    size_t waiting; /* requests in their wait for confirms */
    int closing;
    int64_t stalled_until_us; /* a request's confirms were late: refuse until then */
    double bucket;            /* rate: events that may be taken now */
    int64_t bucket_at_us;
    struct {
        char addr[64];
        int64_t at_us;
    } auth_log[AUTH_LOG_SLOTS];

    /* next()'s copy of the event it hands out, and its id (reader thread). */
    buf scratch;
    char key[160];
    char msg_id[320];
    char where[96];
    char announce[400]; /* "url=... auth=...", logged by the first next() */
    int announced;

    http_counters counters; /* for /metrics */
} hs;

/* One HTTP request, from its headers to the end of its answer. */
struct request {
    hs *src;  /* the source it is for (holds a reference), or NULL */
    int page; /* 0: a source, 1: /metrics, 2: /healthz, 3: not found */
    unsigned early_status;
    const char *early_why;
    buf raw;
    size_t received; /* bytes of body so far, as sent */
    int too_large;
    /* Once queued (under src->mu): */
    char *events; /* the body the spans point into (raw's or the inflated copy) */
    body_span *spans;
    size_t nspans, handed;
    size_t bytes;
    char key[160]; /* Idempotency-Key, or "" */
    uint64_t no, first_pos, last_pos;
    int queued;
    request *next;
};

struct listener {
    char address[64];
    long port;
    char *cert_file, *key_file;
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu; /* guards routes */
    hs **routes;
    size_t nroutes;
    int refs;
    listener *next;
};

/* Listeners by address:port, shared by the sources naming them; touched by
 * open() and close() (main thread) and the handlers' route look-ups. */
static pthread_mutex_t listeners_mu = PTHREAD_MUTEX_INITIALIZER;
static listener *listeners;

/* ---------------------------------------------------------------- answers */

/* Queues an answer with a body that is copied. */
static enum MHD_Result answer(struct MHD_Connection *c, hs *s, unsigned status,
                              const char *content_type, const char *body, long retry_after_s)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%ld", retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (s)
        http_count_status(&s->counters, status);
    return ret;
}

static enum MHD_Result answer_error(struct MHD_Connection *c, hs *s, unsigned status,
                                    const char *why, long retry_after_s)
{
    char body[512];
    snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
    return answer(c, s, status, "application/json", body, retry_after_s);
}

/* ---------------------------------------------------------------- sources */

static void hs_release(hs *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    auth_tokens_free(&s->tokens);
    if (s->secret)
        OPENSSL_cleanse(s->secret, s->secret_len); /* no copy left in freed memory */
    free(s->secret);
    free(s->id_pointer);
    free(s->sig_header);
    free(s->sig_prefix);
    event_validator_free(s->validator);
    buf_free(&s->scratch);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->ready);
    pthread_cond_destroy(&s->done);
    free(s);
}

static hs *route_find(listener *ls, const char *url)
{
    hs *found = NULL;
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < ls->nroutes; i++) {
        if (strcmp(ls->routes[i]->path, url) == 0) {
            found = ls->routes[i];
            atomic_fetch_add(&found->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&ls->mu);
    return found;
}

/* Whether a source takes requests now; why gets the reason if not. Under
 * s->mu. */
static int hs_ready_locked(hs *s, char *why, size_t cap)
{
    if (s->closing || atomic_load(s->stop)) {
        snprintf(why, cap, "stopping");
        return 0;
    }
    if (mono_us() < s->stalled_until_us) {
        snprintf(why, cap, "the broker has not confirmed events in time");
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- metrics */

/* The metrics page of a listener: its sources' counters. */
static void render_metrics(listener *ls, FILE *out)
{
    pthread_mutex_lock(&ls->mu);
    http_metrics_row *rows = calloc(ls->nroutes ? ls->nroutes : 1, sizeof *rows);
    for (size_t i = 0; rows && i < ls->nroutes; i++) {
        hs *s = ls->routes[i];
        pthread_mutex_lock(&s->mu);
        rows[i] = (http_metrics_row){s->name, &s->counters, s->waiting};
        pthread_mutex_unlock(&s->mu);
    }
    if (rows)
        http_metrics_render(out, rows, ls->nroutes);
    pthread_mutex_unlock(&ls->mu);
    free(rows);
}

static enum MHD_Result serve_page(struct MHD_Connection *c, listener *ls, int page)
{
    if (page == 1) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (!out)
            return MHD_NO;
        render_metrics(ls, out);
        fclose(out);
        enum MHD_Result r = answer(c, NULL, MHD_HTTP_OK, "text/plain; version=0.0.4", text, 0);
        free(text);
        return r;
    }
    if (page == 2) {
        char why[256] = "", line[400] = "";
        int ready = 1;
        pthread_mutex_lock(&ls->mu);
        for (size_t i = 0; i < ls->nroutes && ready; i++) {
            hs *s = ls->routes[i];
            pthread_mutex_lock(&s->mu);
            ready = hs_ready_locked(s, why, sizeof why);
            pthread_mutex_unlock(&s->mu);
            if (!ready)
                snprintf(line, sizeof line, "source %s: %s\n", s->name, why);
        }
        pthread_mutex_unlock(&ls->mu);
        return answer(c, NULL, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                      ready ? "ok\n" : line, 0);
    }
    return answer_error(c, NULL, MHD_HTTP_NOT_FOUND, "no source at this path", 0);
}

/* ------------------------------------------------------------------ auth */

static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* Counts a refusal and logs it, at most once a minute per client address,
 * so a scanner cannot fill the log. */
static void auth_failed(struct MHD_Connection *c, hs *s, const char *what)
{
    char addr[64];
    client_address(c, addr, sizeof addr);
    atomic_fetch_add(&s->counters.auth_failures, 1);
    int64_t now = mono_us();
    size_t oldest = 0;
    int log = 1;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < AUTH_LOG_SLOTS; i++) {
        if (strcmp(s->auth_log[i].addr, addr) == 0) {
            oldest = i;
            log = now - s->auth_log[i].at_us >= 60 * 1000000LL || s->auth_log[i].at_us == 0;
            break;
        }
        if (s->auth_log[i].at_us < s->auth_log[oldest].at_us)
            oldest = i;
    }
    if (log) {
        snprintf(s->auth_log[oldest].addr, sizeof s->auth_log[oldest].addr, "%s", addr);
        s->auth_log[oldest].at_us = now;
    }
    pthread_mutex_unlock(&s->mu);
    if (log)
        log_warn("http request refused source=%s client=%s reason=\"%s\" (logged once a minute "
                 "per client; sluice_http_auth_failures_total counts all)",
                 s->name, addr, what);
}

/* ------------------------------------------------------------- a request */

/* The first call for a request: route it and decide whatever headers
 * alone decide. */
static void begin(struct MHD_Connection *c, listener *ls, request *rq, const char *url,
                  const char *method)
{
    if (strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0) {
        rq->page = url[1] == 'm' ? 1 : 2;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            rq->early_status = MHD_HTTP_METHOD_NOT_ALLOWED;
            rq->early_why = "use GET";
        }
        return;
    }
    rq->src = route_find(ls, url);
    if (!rq->src) {
        rq->page = 3;
        return;
    }
    hs *s = rq->src;
    if (strcmp(method, "POST") != 0) {
        rq->early_status = MHD_HTTP_METHOD_NOT_ALLOWED;
        rq->early_why = "use POST";
        return;
    }
    if (s->tokens.count > 0 &&
        !auth_bearer_ok(&s->tokens, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_AUTHORIZATION))) {
        auth_failed(c, s, "no valid bearer token");
        rq->early_status = MHD_HTTP_UNAUTHORIZED;
        rq->early_why = "unauthorized";
        return;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->max_body) {
        rq->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
        rq->early_why = "body over max_body_bytes";
        return;
    }
    const char *enc =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (enc && strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "identity") != 0) {
        rq->early_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        rq->early_why = "Content-Encoding must be gzip or identity";
        return;
    }
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        int ok = n > 0 && n < sizeof rq->key;
        for (size_t i = 0; ok && i < n; i++)
            ok = key[i] > 0x20 && key[i] < 0x7f;
        if (!ok) {
            rq->early_status = MHD_HTTP_BAD_REQUEST;
            rq->early_why = "Idempotency-Key must be 1 to 159 visible ASCII characters";
            return;
        }
        memcpy(rq->key, key, n + 1);
    }
    pthread_mutex_lock(&s->mu);
    char why[128];
    if (s->closing || atomic_load(s->stop)) {
        rq->early_status = MHD_HTTP_SERVICE_UNAVAILABLE;
        rq->early_why = "stopping";
    } else if (!hs_ready_locked(s, why, sizeof why)) {
        rq->early_status = MHD_HTTP_SERVICE_UNAVAILABLE;
        rq->early_why = "the broker has not confirmed events in time";
    }
    pthread_mutex_unlock(&s->mu);
}

/* A 400 naming each invalid event. */
static enum MHD_Result refuse_events(struct MHD_Connection *c, hs *s, const char *text,
                                     const body_span *spans, size_t n)
{
    buf b = {0};
    size_t bad = 0;
    static const char head[] =
        "{\"error\":\"invalid events: nothing of this request was taken\",\"events\":[";
    buf_append(&b, head, sizeof head - 1);
    for (size_t i = 0; i < n; i++) {
        event_verdict v = event_validate(s->validator, text + spans[i].off, spans[i].len);
        if (v == EVENT_OK)
            continue;
        if (bad < 1000) {
            char item[96];
            int w = snprintf(item, sizeof item, "%s{\"index\":%zu,\"reason\":\"%s\"}",
                             bad ? "," : "", i, event_verdict_reason(v));
            buf_append(&b, item, (size_t)w);
        }
        bad++;
    }
    char tail[64];
    int w = snprintf(tail, sizeof tail, "],\"invalid\":%zu}\n", bad);
    buf_append(&b, tail, (size_t)w);
    enum MHD_Result r =
        b.failed ? MHD_NO : answer(c, s, MHD_HTTP_BAD_REQUEST, "application/json", b.data, 0);
    buf_free(&b);
    return r;
}

/* Takes n events from the rate's bucket (capacity: one second's worth).
 * Returns 0, or the seconds to wait before they would be there. Under
 * s->mu. */
static long rate_take(hs *s, size_t n)
{
    if (s->rate <= 0)
        return 0;
    int64_t now = mono_us();
    double cap = (double)s->rate;
    s->bucket += (double)(now - s->bucket_at_us) * cap / 1e6;
    if (s->bucket > cap)
        s->bucket = cap;
    s->bucket_at_us = now;
    /* A request bigger than the bucket passes when it is full, and leaves
     * it in debt, so the rate holds over time. */
    if (s->bucket >= (double)n || s->bucket >= cap) {
        s->bucket -= (double)n;
        return 0;
    }
    long wait = (long)(((double)n - s->bucket) / cap + 0.999);
    return wait > 0 ? wait : 1;
}

/* Drops a request from the queue of those with events to hand out. Under
 * s->mu. */
static void unqueue(hs *s, request *rq)
{
    if (!rq->queued)
        return;
    request **pp = &s->head;
    while (*pp && *pp != rq)
        pp = &(*pp)->next;
    if (*pp)
        *pp = rq->next;
    if (s->tail == rq) {
        s->tail = s->head;
        while (s->tail && s->tail->next)
            s->tail = s->tail->next;
    }
    rq->queued = 0;
    rq->next = NULL;
}

/* Queues the request's events and waits for their confirms. Returns the
 * status to answer; *retry_after and *why for a refusal. */
static unsigned admit_and_wait(hs *s, request *rq, long *retry_after, const char **why)
{
    unsigned status = MHD_HTTP_SERVICE_UNAVAILABLE;
    char reason[128];
    pthread_mutex_lock(&s->mu);
    if (!hs_ready_locked(s, reason, sizeof reason)) {
        *why = s->closing || atomic_load(s->stop) ? "stopping"
                                                  : "the broker has not confirmed events in time";
        *retry_after = s->retry_after_s;
        goto out;
    }
    if (s->pending_bytes > 0 && s->pending_bytes + rq->bytes > s->max_pending) {
        *why = "buffer full: too many bytes waiting for confirms";
        *retry_after = s->retry_after_s;
        goto out;
    }
    long wait = rate_take(s, rq->nspans);
    if (wait > 0) {
        status = MHD_HTTP_TOO_MANY_REQUESTS;
        *why = "over the source's rate";
        *retry_after = wait;
        goto out;
    }
    rq->no = ++s->requests;
    rq->first_pos = s->next_pos + 1;
    s->next_pos += rq->nspans;
    rq->last_pos = s->next_pos;
    rq->queued = 1;
    if (s->tail)
        s->tail->next = rq;
    else
        s->head = rq;
    s->tail = rq;
    s->pending_bytes += rq->bytes;
    s->waiting++;
    pthread_cond_signal(&s->ready);
    int64_t started = mono_us();
    int64_t deadline = started + s->confirm_timeout_ms * 1000;
    for (;;) {
        if (s->confirmed_pos >= rq->last_pos) {
            status = MHD_HTTP_ACCEPTED;
            break;
        }
        int stopping = s->closing || atomic_load(s->stop);
        /* Stopping, events not yet handed out never will be; those handed
         * out are published by the drain, so wait for them. Closing, the
         * drain is over. */
        if (s->closing || (stopping && rq->queued)) {
            *why = "stopping";
            break;
        }
        int64_t now = mono_us();
        if (now >= deadline) {
            *why = "the broker did not confirm the events in time";
            /* New requests are refused at once for a while rather than
             * each waiting the whole timeout too; a confirm ends it. */
            s->stalled_until_us = now + s->confirm_timeout_ms * 1000;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long ms = (long)((deadline - now) / 1000) + 1;
        if (ms > 100)
            ms = 100; /* the stop flag is set without a signal here */
        ts.tv_nsec += ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->done, &s->mu, &ts);
    }
    unqueue(s, rq);
    s->waiting--;
    s->pending_bytes -= rq->bytes;
    if (status == MHD_HTTP_ACCEPTED)
        http_count_accepted(&s->counters, rq->nspans, mono_us() - started);
    else
        *retry_after = s->retry_after_s;
out:
    pthread_mutex_unlock(&s->mu);
    return status;
}

/* The whole body is in: check, split, validate, queue, wait, answer. */
static enum MHD_Result finish(struct MHD_Connection *c, request *rq)
{
    hs *s = rq->src;
    if (rq->too_large)
        return answer_error(c, s, MHD_HTTP_CONTENT_TOO_LARGE, "body over max_body_bytes", 0);
    atomic_fetch_add(&s->counters.bytes_received, rq->raw.len);
    if (rq->raw.failed)
        return answer_error(c, s, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", s->retry_after_s);
    if (s->secret &&
        !auth_signature_ok(s->secret, s->secret_len, s->sig_prefix,
                           MHD_lookup_connection_value(c, MHD_HEADER_KIND, s->sig_header),
                           rq->raw.data ? rq->raw.data : "", rq->raw.len)) {
        auth_failed(c, s, "no valid signature");
        return answer_error(c, s, MHD_HTTP_UNAUTHORIZED, "unauthorized", 0);
    }
    const char *enc =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    buf inflated = {0};
    const char *text = rq->raw.data ? rq->raw.data : "";
    size_t len = rq->raw.len;
    enum MHD_Result ret;
    if (enc && strcasecmp(enc, "gzip") == 0) {
        gunzip_result g = gunzip(text, len, s->max_body, &inflated);
        if (g != GUNZIP_OK) {
            buf_free(&inflated);
            if (g == GUNZIP_TOO_LARGE)
                return answer_error(c, s, MHD_HTTP_CONTENT_TOO_LARGE,
                                    "body over max_body_bytes once inflated", 0);
            if (g == GUNZIP_NO_MEMORY)
                return answer_error(c, s, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory",
                                    s->retry_after_s);
            return answer_error(c, s, MHD_HTTP_BAD_REQUEST, "body is not valid gzip", 0);
        }
        /* The inflated copy is what the events point into from here. */
        buf_free(&rq->raw);
        rq->raw = inflated;
        text = rq->raw.data ? rq->raw.data : "";
        len = rq->raw.len;
    }
    body_kind kind =
        body_kind_of(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    body_result br = body_split(text, len, kind, s->max_events, &rq->spans, &rq->nspans);
    if (br == BODY_TOO_MANY)
        return answer_error(c, s, MHD_HTTP_CONTENT_TOO_LARGE, "more events than max_events", 0);
    if (br == BODY_NO_MEMORY)
        return answer_error(c, s, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", s->retry_after_s);
    if (br != BODY_OK) {
        char body[160];
        if (br == BODY_MALFORMED)
            snprintf(body, sizeof body,
                     "{\"error\":\"malformed_array\",\"events\":[{\"index\":%zu,\"reason\":"
                     "\"malformed_array\"}]}\n",
                     rq->nspans);
        else
            snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", body_result_reason(br));
        return answer(c, s, MHD_HTTP_BAD_REQUEST, "application/json", body, 0);
    }
    for (size_t i = 0; i < rq->nspans; i++) {
        if (event_validate(s->validator, text + rq->spans[i].off, rq->spans[i].len) != EVENT_OK)
            return refuse_events(c, s, text, rq->spans, rq->nspans);
    }
    rq->events = rq->raw.data;
    rq->bytes = len;
    long retry_after = 0;
    const char *why = "";
    unsigned status = admit_and_wait(s, rq, &retry_after, &why);
    if (status == MHD_HTTP_ACCEPTED) {
        char body[96];
        snprintf(body, sizeof body, "{\"accepted\":%zu}\n", rq->nspans);
        ret = answer(c, s, status, "application/json", body, 0);
    } else {
        if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
            log_warn("http request answered 503 source=%s request=%" PRIu64 " events=%zu "
                     "reason=\"%s\"",
                     s->name, rq->no, rq->nspans, why);
        ret = answer_error(c, s, status, why, retry_after);
    }
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    listener *ls = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        begin(c, ls, rq, url, method);
        /* Refused on its headers alone: answered before the body is read
         * (libmicrohttpd then closes the connection, unread). */
        if (rq->early_status)
            return answer_error(c, rq->src, rq->early_status, rq->early_why,
                                rq->early_status == MHD_HTTP_SERVICE_UNAVAILABLE && rq->src
                                    ? rq->src->retry_after_s
                                    : 0);
        return MHD_YES;
    }
    if (rq->early_status)
        return MHD_YES; /* answered */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!rq->src)
            return MHD_YES;
        rq->received += n;
        if (rq->received > rq->src->max_body && !rq->too_large) {
            /* A chunked body outgrew the bound: keep nothing more. The
             * 413 can only go out once the body ended (libmicrohttpd
             * answers no request in the middle of its body), so a body
             * that goes on past twice the bound is cut off unanswered. */
            rq->too_large = 1;
            buf_free(&rq->raw);
        }
        if (rq->too_large)
            return rq->received > 2 * rq->src->max_body ? MHD_NO : MHD_YES;
        buf_append(&rq->raw, upload_data, n);
        return MHD_YES;
    }
    if (!rq->src)
        return serve_page(c, ls, rq->page);
    return finish(c, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    request *rq = *con_cls;
    (void)cls, (void)c, (void)toe;
    if (!rq)
        return;
    buf_free(&rq->raw);
    free(rq->spans);
    hs_release(rq->src);
    free(rq);
    *con_cls = NULL;
}

/* -------------------------------------------------------------- listeners */

static void listener_free(listener *ls)
{
    if (!ls)
        return;
    if (ls->daemon)
        MHD_stop_daemon(ls->daemon);
    free(ls->routes);
    free(ls->cert_file);
    free(ls->key_file);
    pthread_mutex_destroy(&ls->mu);
    free(ls);
}

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Starts listening on the conf's address and port. Returns NULL with err. */
static listener *listener_start(const source_spec *spec, const hs_conf *conf, char *err,
                                size_t errlen)
{
    listener *ls = calloc(1, sizeof *ls);
    buf cert = {0}, key = {0};
    if (!ls) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ls->mu, NULL);
    snprintf(ls->address, sizeof ls->address, "%s", conf->address);
    ls->port = conf->port;
    struct sockaddr_in sa4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)conf->port)};
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)conf->port)};
    struct sockaddr *sa = (struct sockaddr *)&sa4;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (inet_pton(AF_INET6, conf->address, &sa6.sin6_addr) == 1) {
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else if (inet_pton(AF_INET, conf->address, &sa4.sin_addr) != 1) {
        spec_error(spec, "address", err, errlen, "'%s' is not an IPv4 or IPv6 address",
                   conf->address);
        goto fail;
    }
    if (!conf->tls_cert_file != !conf->tls_key_file) {
        spec_error(spec, conf->tls_cert_file ? "tls_key_file" : "tls_cert_file", err, errlen,
                   "HTTPS needs both tls_cert_file and tls_key_file");
        goto fail;
    }
    if (conf->tls_cert_file) {
        if (buf_append_file(&cert, conf->tls_cert_file) != 0 ||
            buf_append_file(&key, conf->tls_key_file) != 0) {
            spec_error(spec, cert.len ? "tls_key_file" : "tls_cert_file", err, errlen,
                       "cannot read %s", cert.len ? conf->tls_key_file : conf->tls_cert_file);
            goto fail;
        }
        flags |= MHD_USE_TLS;
        ls->cert_file = strdup(conf->tls_cert_file);
        ls->key_file = strdup(conf->tls_key_file);
    }
    /* The listener's threads inherit this thread's mask: signals are for
     * the main thread alone (util.h). */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    ls->daemon = MHD_start_daemon(flags, (uint16_t)conf->port, NULL, NULL, handle, ls,
                                  MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned)conf->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)conf->connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                                  completed, NULL, MHD_OPTION_THREAD_STACK_SIZE, (size_t)256 * 1024,
                                  conf->tls_cert_file ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
                                  cert.data, MHD_OPTION_HTTPS_MEM_KEY, key.data, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!ls->daemon) {
        spec_error(spec, "port", err, errlen,
                   "cannot listen on %s port %ld (in use, not an address of this host, or a "
                   "certificate and key that do not fit)",
                   conf->address, conf->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ls->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port)
        ls->port = di->port;
    OPENSSL_cleanse(key.data, key.len);
    buf_free(&cert);
    buf_free(&key);
    return ls;
fail:
    if (key.data)
        OPENSSL_cleanse(key.data, key.len);
    buf_free(&cert);
    buf_free(&key);
    listener_free(ls);
    return NULL;
}

/* Adds the source to the listener of its address and port, starting that
 * listener if it is the first. Returns 0, or -1 with err. Main thread. */
static int listener_join(hs *s, const source_spec *spec, const hs_conf *conf, char *err,
                         size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&listeners_mu);
    listener *ls = listeners;
    while (ls &&
           !(conf->port != 0 && ls->port == conf->port && strcmp(ls->address, conf->address) == 0))
        ls = ls->next;
    if (ls && (!same_text(ls->cert_file, conf->tls_cert_file) ||
               !same_text(ls->key_file, conf->tls_key_file))) {
        spec_error(spec, "tls_cert_file", err, errlen,
                   "sources sharing %s port %ld must name the same tls_cert_file and "
                   "tls_key_file",
                   conf->address, conf->port);
        goto out;
    }
    int started = 0;
    if (!ls) {
        ls = listener_start(spec, conf, err, errlen);
        if (!ls)
            goto out;
        started = 1;
    }
    pthread_mutex_lock(&ls->mu);
    int clash = 0;
    for (size_t i = 0; i < ls->nroutes; i++)
        clash |= strcmp(ls->routes[i]->path, s->path) == 0;
    hs **grown = clash ? NULL : realloc(ls->routes, (ls->nroutes + 1) * sizeof *grown);
    if (grown) {
        ls->routes = grown;
        ls->routes[ls->nroutes++] = s;
        ls->refs++;
    }
    pthread_mutex_unlock(&ls->mu);
    if (!grown) {
        if (clash)
            spec_error(spec, "path", err, errlen, "path %s is already another source's on %s:%ld",
                       s->path, conf->address, conf->port);
        else
            spec_error(spec, NULL, err, errlen, "out of memory");
        if (started)
            listener_free(ls);
        goto out;
    }
    if (started) {
        ls->next = listeners;
        listeners = ls;
    }
    s->ls = ls;
    rc = 0;
out:
    pthread_mutex_unlock(&listeners_mu);
    return rc;
}

/* Takes the source off its listener, and stops the listener with its last
 * source. Main thread. */
static void listener_leave(hs *s)
{
    listener *ls = s->ls;
    if (!ls)
        return;
    pthread_mutex_lock(&listeners_mu);
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < ls->nroutes; i++) {
        if (ls->routes[i] == s) {
            ls->routes[i] = ls->routes[--ls->nroutes];
            break;
        }
    }
    int last = --ls->refs == 0;
    pthread_mutex_unlock(&ls->mu);
    if (last) {
        listener **pp = &listeners;
        while (*pp && *pp != ls)
            pp = &(*pp)->next;
        if (*pp)
            *pp = ls->next;
    }
    pthread_mutex_unlock(&listeners_mu);
    if (last)
        listener_free(ls); /* closes every connection; each request releases its source */
    s->ls = NULL;
}

/* ---------------------------------------------------------- the adapter */

/* Reads the accepted tokens: each `token` line, then tokens_file's lines. */
static int load_tokens(hs *s, const source_spec *spec, const hs_conf *conf, char *err,
                       size_t errlen)
{
    char text[8192];
    for (size_t i = 0; i < conf->tokens.count; i++) {
        if (spec_expand_env(spec, "token", conf->tokens.items[i], text, sizeof text, err, errlen) !=
            0)
            return -1;
        if (auth_tokens_add(&s->tokens, text, strlen(text)) != 0) {
            spec_error(spec, "token", err, errlen,
                       "a token is 1 to 4096 characters without blanks (is its variable empty?)");
            return -1;
        }
    }
    if (!conf->tokens_file)
        return 0;
    FILE *f = fopen(conf->tokens_file, "r");
    if (!f) {
        spec_error(spec, "tokens_file", err, errlen, "cannot read %s", conf->tokens_file);
        return -1;
    }
    int rc = 0, line = 0, added = 0;
    while (rc == 0 && fgets(text, sizeof text, f)) {
        line++;
        char *t = str_trim(text);
        if (!*t || *t == '#')
            continue;
        if (auth_tokens_add(&s->tokens, t, strlen(t)) != 0) {
            spec_error(spec, "tokens_file", err, errlen,
                       "%s:%d: a token is 1 to 4096 characters without blanks", conf->tokens_file,
                       line);
            rc = -1;
        }
        added++;
    }
    fclose(f);
    if (rc == 0 && added == 0) {
        spec_error(spec, "tokens_file", err, errlen, "%s holds no token", conf->tokens_file);
        rc = -1;
    }
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

static int load_secret(hs *s, const source_spec *spec, const hs_conf *conf, char *err,
                       size_t errlen)
{
    buf b = {0};
    int rc = -1;
    if (conf->hmac_secret && conf->hmac_secret_file) {
        spec_error(spec, "hmac_secret_file", err, errlen,
                   "set hmac_secret or hmac_secret_file, not both");
        return -1;
    }
    if (conf->hmac_secret) {
        char text[4096];
        if (spec_expand_env(spec, "hmac_secret", conf->hmac_secret, text, sizeof text, err,
                            errlen) != 0)
            return -1;
        buf_append(&b, text, strlen(text));
        OPENSSL_cleanse(text, sizeof text);
    } else if (conf->hmac_secret_file) {
        if (buf_append_file(&b, conf->hmac_secret_file) != 0) {
            spec_error(spec, "hmac_secret_file", err, errlen, "cannot read %s",
                       conf->hmac_secret_file);
            goto out;
        }
        if (b.len > 0 && b.data[b.len - 1] == '\n')
            b.len--;
        if (b.len > 0 && b.data[b.len - 1] == '\r')
            b.len--;
    } else {
        return 0;
    }
    if (b.failed || b.len == 0) {
        spec_error(spec, conf->hmac_secret ? "hmac_secret" : "hmac_secret_file", err, errlen,
                   "the HMAC secret is empty");
        goto out;
    }
    s->secret = malloc(b.len);
    if (!s->secret) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        goto out;
    }
    memcpy(s->secret, b.data, b.len);
    s->secret_len = b.len;
    rc = 0;
out:
    if (b.data)
        OPENSSL_cleanse(b.data, b.cap);
    buf_free(&b);
    return rc;
}

static void hs_close(void *state)
{
    hs *s = state;
    if (!s)
        return;
    /* Whoever still waits is answered 503 now (the drain is over), before
     * the listener goes, so no request is left without an answer. */
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->done);
    pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&s->mu);
        size_t waiting = s->waiting;
        pthread_mutex_unlock(&s->mu);
        if (waiting == 0)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* Give the answers just queued a moment to leave before the listener
     * closes their connections. */
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
    nanosleep(&ts, NULL);
    listener_leave(s);
    hs_release(s);
}

static int hs_open(void **state, const source_spec *spec, const void *conf_, char *err,
                   size_t errlen)
{
    const hs_conf *conf = conf_;
    hs *s = calloc(1, sizeof *s);
    if (!s) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ready, &attr);
    pthread_cond_init(&s->done, &attr);
    pthread_condattr_destroy(&attr);
    snprintf(s->name, sizeof s->name, "%s", spec->name);
    if (conf->path)
        snprintf(s->path, sizeof s->path, "%s", conf->path);
    else
        snprintf(s->path, sizeof s->path, "/v1/sources/%s", spec->name);
    s->stop = spec->stop;
    s->max_body = (size_t)conf->max_body_bytes;
    s->max_events = (size_t)conf->max_events;
    s->max_pending = (size_t)conf->max_pending_bytes;
    s->confirm_timeout_ms = conf->confirm_timeout_ms;
    s->retry_after_s = conf->retry_after_s;
    s->rate = spec->rate;
    s->bucket = (double)spec->rate;
    s->bucket_at_us = mono_us();
    if (s->path[0] != '/' || strcmp(s->path, "/metrics") == 0 || strcmp(s->path, "/healthz") == 0) {
        spec_error(spec, "path", err, errlen,
                   "path must start with / and not be /metrics or "
                   "/healthz, got '%s'",
                   s->path);
        goto fail;
    }
    if (conf->id_pointer && (!*conf->id_pointer || !json_pointer_valid(conf->id_pointer))) {
        spec_error(spec, "id_pointer", err, errlen,
                   "id_pointer must be a JSON pointer like /id, got '%s'", conf->id_pointer);
        goto fail;
    }
    if (load_tokens(s, spec, conf, err, errlen) != 0 ||
        load_secret(s, spec, conf, err, errlen) != 0)
        goto fail;
    int has_auth = s->tokens.count > 0 || s->secret;
    if (conf->auth == AUTH_REQUIRED && !has_auth) {
        spec_error(spec, "auth", err, errlen,
                   "adapter http_server needs token, tokens_file or hmac_secret(_file); write "
                   "'auth = none' to accept requests from anyone who reaches the port");
        goto fail;
    }
    if (conf->auth == AUTH_NONE && has_auth) {
        spec_error(spec, "auth", err, errlen, "auth = none beside a token or an HMAC secret");
        goto fail;
    }
    s->id_pointer = conf->id_pointer ? strdup(conf->id_pointer) : NULL;
    s->sig_header = strdup(conf->signature_header);
    s->sig_prefix = strdup(conf->signature_prefix);
    s->validator = event_validator_new(spec->max_message_bytes ? spec->max_message_bytes
                                                               : SLUICE_MAX_MESSAGE_BYTES);
    if ((conf->id_pointer && !s->id_pointer) || !s->sig_header || !s->sig_prefix || !s->validator) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        goto fail;
    }
    if (listener_join(s, spec, conf, err, errlen) != 0)
        goto fail;
    /* Said once the source runs (its first next()): a configuration
     * error in a later section stays the only line printed. */
    snprintf(s->announce, sizeof s->announce, "url=%s://%s:%ld%s auth=%s",
             conf->tls_cert_file ? "https" : "http", conf->address, s->ls->port, s->path,
             conf->auth == AUTH_NONE        ? "none"
             : s->tokens.count && s->secret ? "bearer+hmac"
             : s->secret                    ? "hmac"
                                            : "bearer");
    *state = s;
    return 0;
fail:
    hs_release(s);
    return -1;
}

static adapter_result hs_next(void *state, source_event *ev, char *err, size_t errlen)
{
    hs *s = state;
    (void)err, (void)errlen;
    if (!s->announced) {
        log_info("http_server listening source=%s %s", s->name, s->announce);
        s->announced = 1;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->head && !atomic_load(s->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->ready, &s->mu, &ts);
    }
    request *rq = s->head;
    if (!rq || atomic_load(s->stop)) {
        pthread_mutex_unlock(&s->mu);
        return ADAPTER_IDLE;
    }
    /* Copied under the lock: the request may be given up and freed as soon
     * as it is released. */
    size_t index = rq->handed;
    const body_span *sp = &rq->spans[index];
    buf_clear(&s->scratch);
    if (buf_append(&s->scratch, rq->events + sp->off, sp->len) != 0) {
        /* Kept for the next call: an event skipped here would be covered
         * by a later confirm and so answered 202 unpublished. */
        pthread_mutex_unlock(&s->mu);
        return ADAPTER_IDLE;
    }
    rq->handed++;
    snprintf(s->key, sizeof s->key, "%s", rq->key);
    ev->position = rq->first_pos + index;
    snprintf(s->where, sizeof s->where, "event %zu of request %" PRIu64, index, rq->no);
    if (rq->handed == rq->nspans)
        unqueue(s, rq);
    pthread_mutex_unlock(&s->mu);
    if (s->key[0]) {
        char idx[24];
        int n = snprintf(idx, sizeof idx, "%zu", index);
        id_part parts[] = {{s->name, strlen(s->name) + 1},
                           {"Idempotency-Key", sizeof "Idempotency-Key"},
                           {s->key, strlen(s->key) + 1},
                           {idx, (size_t)n}};
        event_sha256_id(parts, 4, s->msg_id);
    } else {
        source_item_id(s->name, "http_server", s->id_pointer, s->scratch.data, s->scratch.len,
                       s->msg_id, sizeof s->msg_id);
    }
    ev->body = s->scratch.data;
    ev->len = s->scratch.len;
    ev->msg_id = s->msg_id;
    ev->where = s->where;
    return ADAPTER_EVENT;
}

static void hs_confirmed(void *state, uint64_t position)
{
    hs *s = state;
    pthread_mutex_lock(&s->mu);
    if (position > s->confirmed_pos) {
        s->confirmed_pos = position;
        s->stalled_until_us = 0; /* the broker confirms again */
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
}

const adapter_class http_server_adapter = {
    .name = "http_server",
    .summary = "receives events POSTed by clients (JSON object, array or NDJSON, gzip); answers "
               "202 only once the broker confirmed them all",
    .settings = hs_settings,
    .settings_size = sizeof(hs_conf),
    .open = hs_open,
    .next = hs_next,
    .checkpoint = NULL, /* nothing to re-read: an unconfirmed request is answered 503 */
    .confirmed = hs_confirmed,
    .close = hs_close,
};
