/*
 * fakehttp: a small HTTP server on loopback for the notifier's tests,
 * standing in for the Telegram Bot API and for webhook receivers. It runs
 * in its own thread (libmicrohttpd), records every POST it receives (path,
 * body, X-Sluice-Alert-Id header, time) and answers from a script of canned
 * replies (status and body, each for a number of requests), then 200 with
 * {"ok":true}. Answers can also be chosen by content: a request whose body
 * contains a marker gets a fixed reply (a 400 for one alert, say).
 */
#ifndef SLUICE_FAKEHTTP_H
#define SLUICE_FAKEHTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fake_http fake_http;

/* Listens on 127.0.0.1:port; fails the test if it cannot. Stop with
 * fake_http_stop(). */
fake_http *fake_http_start(int port);
void fake_http_stop(fake_http *f);

/* The next `times` requests get `status` with `body`. Scripts queue up. */
void fake_http_script(fake_http *f, int status, const char *body, int times);

/* Every request whose body contains `marker` gets status and body. */
void fake_http_when(fake_http *f, const char *marker, int status, const char *body);

/* Every request whose body contains `marker` is answered only after
 * delay_ms (recorded on arrival): a request "in flight" for a while. */
void fake_http_delay(fake_http *f, const char *marker, long delay_ms);

/* Requests received so far. */
size_t fake_http_count(fake_http *f);

typedef struct fake_request {
    char path[256];
    char alert_id[256]; /* X-Sluice-Alert-Id, "" if none */
    char *body;         /* malloc'd copy: free it */
    int64_t at_us;      /* CLOCK_MONOTONIC when it was received */
    int status;         /* what was answered */
} fake_request;

/* Copies request i (0-based, in arrival order) into out. Returns 0, or -1
 * if there is no such request. */
int fake_http_request(fake_http *f, size_t i, fake_request *out);

/* Forgets the requests received and the scripts. */
void fake_http_reset(fake_http *f);

#endif
