/*
 * http_server: see http_server.h.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PATHS 32

typedef struct path_record {
    char path[128];
    unsigned hits;
    char *headers; /* all header lines seen, concatenated */
} path_record;

struct http_server {
    int fd, port, stopping;
    int active; /* connection threads still running; guarded by mu */
    pthread_t thread;
    pthread_mutex_t mu;
    http_route_fn route;
    path_record paths[MAX_PATHS];
    size_t npaths;
};

static path_record *record_locked(http_server *s, const char *path)
{
    for (size_t i = 0; i < s->npaths; i++) {
        if (strcmp(s->paths[i].path, path) == 0)
            return &s->paths[i];
    }
    if (s->npaths == MAX_PATHS)
        return NULL;
    path_record *r = &s->paths[s->npaths++];
    snprintf(r->path, sizeof r->path, "%s", path);
    return r;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* the client may have given up */
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void serve(http_server *s, int fd)
{
    char req[16384];
    size_t len = 0;
    while (len < sizeof req - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            return;
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char method[16], path[128];
    if (sscanf(req, "%15s %127s", method, path) != 2)
        return;
    const char *headers = strstr(req, "\r\n");
    headers = headers ? headers + 2 : "";

    pthread_mutex_lock(&s->mu);
    path_record *r = record_locked(s, path);
    unsigned hit = 0;
    if (r) {
        hit = ++r->hits;
        size_t old = r->headers ? strlen(r->headers) : 0;
        char *grown = realloc(r->headers, old + strlen(headers) + 1);
        if (grown) {
            memcpy(grown + old, headers, strlen(headers) + 1);
            r->headers = grown;
        }
    }
    pthread_mutex_unlock(&s->mu);

    http_request rq = {.path = path, .headers = headers, .hit = hit};
    http_response resp = {.status = 404, .extra_headers = "", .body = NULL};
    s->route(&rq, &resp);
    const char *body = resp.body ? resp.body : "";
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\n%s\r\n",
                     resp.status, reason(resp.status), resp.status == 304 ? 0 : strlen(body),
                     resp.extra_headers ? resp.extra_headers : "");
    write_all(fd, head, (size_t)n);
    if (resp.status != 304)
        write_all(fd, body, strlen(body));
}

typedef struct connection {
    http_server *s;
    int fd;
} connection;

static void *connection_main(void *arg)
{
    connection *c = arg;
    serve(c->s, c->fd);
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    pthread_mutex_lock(&c->s->mu);
    c->s->active--;
    pthread_mutex_unlock(&c->s->mu);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    http_server *s = arg;
    while (!__atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        connection *c = malloc(sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        *c = (connection){s, fd};
        pthread_mutex_lock(&s->mu);
        s->active++;
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&t, NULL, connection_main, c) != 0) {
            pthread_mutex_lock(&s->mu);
            s->active--;
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

http_server *http_server_start(http_route_fn route)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->route = route;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(s->fd, 64) != 0 || getsockname(s->fd, (struct sockaddr *)&addr, &alen) != 0 ||
        pthread_create(&s->thread, NULL, accept_loop, s) != 0) {
        if (s->fd >= 0)
            close(s->fd);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    s->port = ntohs(addr.sin_port);
    return s;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

unsigned http_server_hits(http_server *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = 0;
    for (size_t i = 0; i < s->npaths; i++) {
        if (strcmp(s->paths[i].path, path) == 0)
            n = s->paths[i].hits;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

int http_server_saw_header(http_server *s, const char *path, const char *text)
{
    pthread_mutex_lock(&s->mu);
    int seen = 0;
    for (size_t i = 0; i < s->npaths; i++) {
        if (strcmp(s->paths[i].path, path) == 0 && s->paths[i].headers)
            seen = strstr(s->paths[i].headers, text) != NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return seen;
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_join(s->thread, NULL);
    for (;;) { /* connection threads are detached: wait for them to end */
        pthread_mutex_lock(&s->mu);
        int active = s->active;
        pthread_mutex_unlock(&s->mu);
        if (active == 0)
            break;
        usleep(10000);
    }
    close(s->fd);
    for (size_t i = 0; i < s->npaths; i++)
        free(s->paths[i].headers);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
