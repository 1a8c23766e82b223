/*
 * http_post: one HTTP POST of a JSON body through libcurl, and the rule
 * that turns its outcome into what a channel does next. Shared by the
 * telegram and webhook channels, so both retry alike:
 *
 *   2xx                  sent
 *   429                  retry after Retry-After / the API's retry_after
 *   5xx, network errors  retry with backoff (bounded by the caller)
 *   any other status     failed: not retried, dead-lettered with the reason
 */
#ifndef SLUICE_HTTP_POST_H
#define SLUICE_HTTP_POST_H

#include <stddef.h>

typedef enum { SEND_OK = 0, SEND_RETRY, SEND_FAIL } send_status;

typedef struct send_result {
    send_status status;
    long retry_after_ms; /* SEND_RETRY: the server's wait, or -1 (then back off) */
    char reason[512];    /* why, when not SEND_OK; never holds a secret */
} send_result;

typedef struct http_client http_client;

/* A client reusing one connection between requests; each request gives up
 * after timeout_ms. Free with http_client_free(). NULL on failure. */
http_client *http_client_new(long timeout_ms);
void http_client_free(http_client *c);

typedef struct http_reply {
    long status;        /* 0 if no response came */
    char *body;         /* malloc'd, NUL-terminated (possibly empty); free it */
    long retry_after_s; /* Retry-After header in seconds, -1 if none */
    char error[256];    /* transport error when status is 0 */
} http_reply;

/* POSTs body (application/json) to url with an optional extra header line
 * ("Name: value"). Returns 0 with reply filled (free reply->body), -1 on
 * allocation failure. A transport failure is status 0, not -1. */
int http_post_json(http_client *c, const char *url, const char *body, const char *header,
                   http_reply *reply);

/* Applies the rule above. `description` (may be NULL) and retry_after_s
 * (-1: none) come from the response. */
void http_classify(long status, const char *transport_error, const char *description,
                   long retry_after_s, send_result *out);

/* An attempt that could not be made for lack of memory: retry later. */
void send_out_of_memory(send_result *out);

#endif
