/*
 * fakehttp: a small HTTP server on loopback for the integration tests: a
 * real server on a real socket (libcurl is never mocked) standing in for
 * the Telegram Bot API and webhook receivers (test_notifier) and for the
 * APIs the http source polls (test_adapters).
 *
 * It runs on libmicrohttpd with a thread per connection, so a request held
 * back (a delay, a hanging endpoint) never holds up the others. It records
 * every request (method, path, header lines, body, X-Sluice-Alert-Id,
 * arrival time, status answered) and answers the first that applies of:
 *   1. fake_http_when(): a request whose body contains a marker;
 *   2. fake_http_script(): the next scripted reply, while any is left;
 *   3. fake_http_route(): the route, if one is set;
 *   4. 200 with {"ok":true,"result":{"message_id":1}}.
 * Every reply is sent as application/json; a 204 or 304 has no body.
 */
#ifndef SLUICE_FAKEHTTP_H
#define SLUICE_FAKEHTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fake_http fake_http;

/* Listens on 127.0.0.1:port, or on a free port if port is 0 (see
 * fake_http_port()); fails the test if it cannot. Free with
 * fake_http_stop(), which waits for requests still being answered. */
fake_http *fake_http_start(int port);
void fake_http_stop(fake_http *f);

/* The port it listens on. */
int fake_http_port(const fake_http *f);

/* The next `times` requests get `status` with `body`. Scripts queue up. */
void fake_http_script(fake_http *f, int status, const char *body, int times);

/* Every request whose body contains `marker` gets status and body. */
void fake_http_when(fake_http *f, const char *marker, int status, const char *body);

/* Every request whose body contains `marker` is answered only after
 * delay_ms (recorded on arrival): a request "in flight" for a while. */
void fake_http_delay(fake_http *f, const char *marker, long delay_ms);

/* A request as a route sees it. The strings point into memory owned by the
 * server, valid during the call only. */
typedef struct fake_call {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* without the query string */
    const char *headers; /* the request's header lines, each "Name: value\r\n" */
    const char *body;    /* "" if none */
    unsigned hit;        /* 1 for the first request to this path since the last reset */
} fake_call;

#define FAKE_HTTP_MAX_HEADERS 4

/* An answer a route fills in. It starts as 200 with an empty body and no
 * extra headers. The strings must outlive the call (string literals, say);
 * the server copies them before it answers. */
typedef struct fake_reply {
    int status;
    const char *body; /* NULL for none */
    struct {
        const char *name, *value; /* name NULL: unused */
    } headers[FAKE_HTTP_MAX_HEADERS];
    long delay_ms; /* answer only after this long (a hanging endpoint) */
} fake_reply;

typedef void (*fake_http_route_fn)(const fake_call *call, fake_reply *reply, void *arg);

/* Answers the requests no marker or script claims with route(call, reply,
 * arg). The route runs under the server's lock, so its calls never overlap:
 * it must not call fake_http_* functions, and it holds an answer back with
 * reply->delay_ms, never by sleeping. NULL removes the route. */
void fake_http_route(fake_http *f, fake_http_route_fn route, void *arg);

/* Requests received so far. */
size_t fake_http_count(fake_http *f);

/* Requests received so far for `path`. */
unsigned fake_http_hits(fake_http *f, const char *path);

/* Whether any request for `path` carried a header line containing `text`
 * ("If-None-Match: \"v1\"", say). */
int fake_http_saw_header(fake_http *f, const char *path, const char *text);

typedef struct fake_request {
    char method[16];
    char path[256];
    char alert_id[256]; /* X-Sluice-Alert-Id, "" if none */
    char *body;         /* malloc'd copy: free it */
    int64_t at_us;      /* CLOCK_MONOTONIC when it was received */
    int status;         /* what was answered */
} fake_request;

/* Copies request i (0-based, in arrival order) into out. Returns 0, or -1
 * if there is no such request. */
int fake_http_request(fake_http *f, size_t i, fake_request *out);

/* Forgets the requests received, the scripts, markers, delays and route. */
void fake_http_reset(fake_http *f);

#endif
