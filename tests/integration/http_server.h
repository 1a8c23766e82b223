/*
 * http_server: a small HTTP/1.1 server on 127.0.0.1 for the integration
 * tests of the http adapter: a real server on a real socket (libcurl is
 * never mocked), whose answers the test scripts per path, and which
 * records what it was asked.
 *
 * One thread accepts and answers one request per connection
 * (Connection: close). Free with http_server_stop().
 */
#ifndef SLUICE_HTTP_SERVER_H
#define SLUICE_HTTP_SERVER_H

#include <stddef.h>

/* What the server saw of one request, handed to the route. */
typedef struct http_request {
    const char *path;
    const char *headers; /* the raw header lines */
    unsigned hit;        /* 1 for the first request to this path */
} http_request;

/* What a route answers. `extra_headers` are whole lines, each ending in
 * "\r\n" (may be ""). body may be NULL for none. */
typedef struct http_response {
    int status;
    const char *extra_headers;
    const char *body;
} http_response;

typedef void (*http_route_fn)(const http_request *req, http_response *resp);

typedef struct http_server http_server;

/* Starts a server on a free loopback port; each request is answered by
 * route(). Returns NULL if the socket cannot be set up. */
http_server *http_server_start(http_route_fn route);
int http_server_port(const http_server *s);

/* Requests seen for `path` so far (thread-safe). */
unsigned http_server_hits(http_server *s, const char *path);

/* Whether any request to `path` carried a header line containing `text`. */
int http_server_saw_header(http_server *s, const char *path, const char *text);

void http_server_stop(http_server *s);

#endif
