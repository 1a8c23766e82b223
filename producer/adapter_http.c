/*
 * adapter_http: the "http" source adapter: polls a JSON endpoint with
 * libcurl every interval_ms and hands out the objects it returns.
 *
 * Settings: the table http_settings below. A header's ${VAR} is replaced
 * by the environment variable VAR, so a token never sits in the config file
 * or on the command line; an unset variable is a configuration error.
 * Without id_pointer an item's id derives from its bytes, so an item served
 * again by a later poll is stored once.
 *
 * Conditional requests: the ETag and Last-Modified of the last 200 go back
 * as If-None-Match / If-Modified-Since; a 304 means nothing new. Any other
 * 4xx (a wrong URL, a refused token) cannot be cured by asking again: the
 * source stops with one error line naming the URL and the status.
 *
 * The items are published byte for byte as served (json_scan.h finds
 * them), never re-encoded.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter.h"
#include "buf.h"
#include "json_scan.h"
#include "log.h"
#include "mq.h"
#include "util.h"

typedef enum { FMT_AUTO, FMT_ARRAY, FMT_OBJECT, FMT_NDJSON } http_format;

typedef struct http_state {
    char name[72];
    char *url;
    char safe_url[1024]; /* without a password, for messages */
    char *items_pointer;
    char *id_pointer;
    http_format format;
    long interval_ms, timeout_ms, connect_timeout_ms, retry_base_ms, retry_max_ms;
    size_t max_response;
    const atomic_int *stop;
    CURL *curl;
    struct curl_slist *headers;

    /* Response being handed out. */
    buf body;
    int too_large;
    http_format shape; /* of the current response */
    json_array_iter items;
    size_t line_pos; /* ndjson: next line start */
    int have_items;  /* items left to hand out */
    uint64_t response_no, item_no, position;

    char etag[512];
    char last_modified[128];
    char new_etag[512];
    char new_last_modified[128];

    int64_t next_poll_us;
    unsigned failures;
    char msg_id[320];
    char where[96];
} http_state;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_state *h = arg;
    size_t len = size * n;
    if (h->body.len + len > h->max_response) {
        h->too_large = 1;
        return 0; /* aborts the transfer */
    }
    return buf_append(&h->body, data, len) == 0 ? len : 0;
}

/* Copies the value of header `name` from a header line, if it is that one. */
static void take_header(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    http_state *h = arg;
    size_t len = size * n;
    take_header(data, len, "ETag", h->new_etag, sizeof h->new_etag);
    take_header(data, len, "Last-Modified", h->new_last_modified, sizeof h->new_last_modified);
    return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    http_state *h = arg;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(h->stop); /* nonzero aborts */
}

static void http_close(void *state)
{
    http_state *h = state;
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h->url);
    free(h->items_pointer);
    free(h->id_pointer);
    buf_free(&h->body);
    free(h);
}

typedef struct http_conf {
    char *url, *items_pointer, *id_pointer;
    int format; /* http_format */
    strlist headers;
    long interval_ms, timeout_ms, connect_timeout_ms, retry_base_ms, retry_max_ms;
    long max_response_bytes;
} http_conf;

static const char *const format_words[] = {"auto", "array", "object", "ndjson", NULL};

static const cfg_option http_settings[] = {
    {"url", CFG_STRING, offsetof(http_conf, url), NULL, 0, 0, "the endpoint (required)", NULL},
    {"interval_ms", CFG_INT, offsetof(http_conf, interval_ms), "5000", 10, 86400000,
     "time between polls", NULL},
    {"format", CFG_ENUM, offsetof(http_conf, format), "auto", 0, 0,
     "a JSON array of objects, an object holding the array at items_pointer, or one object per "
     "line",
     format_words},
    {"items_pointer", CFG_STRING, offsetof(http_conf, items_pointer), NULL, 0, 0,
     "JSON pointer to the array in an object, e.g. /data/items", NULL},
    {"header", CFG_LIST, offsetof(http_conf, headers), NULL, 0, 0,
     "'Name: value' sent with each request; ${VAR} is the environment's VAR", NULL},
    {"timeout_ms", CFG_INT, offsetof(http_conf, timeout_ms), "10000", 100, 3600000, "whole request",
     NULL},
    {"connect_timeout_ms", CFG_INT, offsetof(http_conf, connect_timeout_ms), "5000", 100, 3600000,
     "TCP and TLS connect", NULL},
    {"retry_base_ms", CFG_INT, offsetof(http_conf, retry_base_ms), "500", 1, 3600000,
     "first wait after a network error, 5xx, 408 or 429, doubling", NULL},
    {"retry_max_ms", CFG_INT, offsetof(http_conf, retry_max_ms), "30000", 1, 86400000,
     "longest wait between retries", NULL},
    {"max_response_bytes", CFG_INT, offsetof(http_conf, max_response_bytes), "67108864", 1024,
     1L << 34, "larger responses are an error", NULL},
    {"id_pointer", CFG_STRING, offsetof(http_conf, id_pointer), NULL, 0, 0,
     "JSON pointer to an item's identifying field, e.g. /id; without it ids come from the "
     "item's bytes",
     NULL},
    CFG_END,
};

/* What the table cannot check: the url is there, the pointers are JSON
 * pointers, and an object response says where its items are. */
static int check_conf(const source_spec *spec, const http_conf *conf, char *err, size_t errlen)
{
    if (!conf->url || !*conf->url) {
        spec_error(spec, NULL, err, errlen, "adapter http needs 'url = http://...'");
        return -1;
    }
    if (conf->items_pointer && !json_pointer_valid(conf->items_pointer)) {
        spec_error(spec, "items_pointer", err, errlen,
                   "items_pointer must be a JSON pointer like /data/items, got '%s'",
                   conf->items_pointer);
        return -1;
    }
    if (conf->format == FMT_OBJECT && !conf->items_pointer) {
        spec_error(spec, "format", err, errlen, "format object needs items_pointer");
        return -1;
    }
    if (conf->id_pointer && (!*conf->id_pointer || !json_pointer_valid(conf->id_pointer))) {
        spec_error(spec, "id_pointer", err, errlen,
                   "id_pointer must be a JSON pointer like /id, got '%s'", conf->id_pointer);
        return -1;
    }
    return 0;
}

/* Appends the configured headers, ${VAR} expanded, to h->headers. */
static int add_headers(http_state *h, const source_spec *spec, const strlist *headers, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < headers->count; i++) {
        char line[8192];
        if (spec_expand_env(spec, "header", headers->items[i], line, sizeof line, err, errlen) != 0)
            return -1;
        if (!strchr(line, ':')) {
            spec_error(spec, "header", err, errlen, "header must be 'Name: value'");
            return -1;
        }
        struct curl_slist *grown = curl_slist_append(h->headers, line);
        if (!grown) {
            spec_error(spec, NULL, err, errlen, "out of memory");
            return -1;
        }
        h->headers = grown;
    }
    return 0;
}

static int http_open(void **state, const source_spec *spec, const void *conf_, char *err,
                     size_t errlen)
{
    const http_conf *conf = conf_;
    if (check_conf(spec, conf, err, errlen) != 0)
        return -1;
    http_state *h = calloc(1, sizeof *h);
    if (!h) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    h->format = (http_format)conf->format;
    h->interval_ms = conf->interval_ms;
    h->timeout_ms = conf->timeout_ms;
    h->connect_timeout_ms = conf->connect_timeout_ms;
    h->retry_base_ms = conf->retry_base_ms;
    h->retry_max_ms = conf->retry_max_ms;
    h->max_response = (size_t)conf->max_response_bytes;
    snprintf(h->name, sizeof h->name, "%s", spec->name);
    mq_redact_url(conf->url, h->safe_url, sizeof h->safe_url);
    h->stop = spec->stop;
    h->url = strdup(conf->url);
    h->items_pointer = conf->items_pointer ? strdup(conf->items_pointer) : NULL;
    h->id_pointer = conf->id_pointer ? strdup(conf->id_pointer) : NULL;
    h->curl = curl_easy_init();
    if (!h->url || !h->curl || (conf->items_pointer && !h->items_pointer) ||
        (conf->id_pointer && !h->id_pointer)) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        goto fail;
    }
    if (add_headers(h, spec, &conf->headers, err, errlen) != 0)
        goto fail;
    *state = h;
    return 0;
fail:
    http_close(h);
    return -1;
}

/* Sends one request. Returns the HTTP status, or 0 with err for a failure
 * without one (network, timeout, too large). */
static long request(http_state *h, char *err, size_t errlen)
{
    struct curl_slist *headers = NULL;
    char cond[700];
    long status = 0;
    for (struct curl_slist *s = h->headers; s; s = s->next)
        headers = curl_slist_append(headers, s->data);
    if (h->etag[0]) {
        snprintf(cond, sizeof cond, "If-None-Match: %s", h->etag);
        headers = curl_slist_append(headers, cond);
    }
    if (h->last_modified[0]) {
        snprintf(cond, sizeof cond, "If-Modified-Since: %s", h->last_modified);
        headers = curl_slist_append(headers, cond);
    }
    buf_clear(&h->body);
    h->too_large = 0;
    h->new_etag[0] = h->new_last_modified[0] = '\0';
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-producer");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else if (h->too_large)
        snprintf(err, errlen, "response larger than max_response_bytes (%zu)", h->max_response);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return status;
}

/* Sets up handing out the items of the response in h->body. Returns 0, or
 * fills ev with a skip for a response whose shape is wrong and returns 1. */
static int start_items(http_state *h, source_event *ev)
{
    h->response_no++;
    h->item_no = 0;
    h->have_items = 0;
    size_t first = json_skip_ws(h->body.data, h->body.len, 0);
    http_format shape = h->format;
    if (shape == FMT_AUTO) {
        if (first < h->body.len && h->body.data[first] == '[')
            shape = FMT_ARRAY;
        else if (first < h->body.len && h->body.data[first] == '{' && h->items_pointer)
            shape = FMT_OBJECT;
        else
            shape = FMT_NDJSON; /* also a single object */
    }
    h->shape = shape;
    memset(ev, 0, sizeof *ev);
    snprintf(h->where, sizeof h->where, "response %" PRIu64, h->response_no);
    ev->where = h->where;
    ev->position = ++h->position;
    const char *arr = h->body.data;
    size_t arr_len = h->body.len;
    if (shape == FMT_OBJECT) {
        int rc = json_pointer_find(h->body.data, h->body.len, h->items_pointer, &arr, &arr_len);
        if (rc != 0) {
            ev->skip_reason = rc == -1 ? "items_pointer_not_found" : "malformed_response";
            ev->len = h->body.len;
            return 1;
        }
    }
    if (shape == FMT_ARRAY || shape == FMT_OBJECT) {
        if (json_array_begin(&h->items, arr, arr_len) != 0) {
            ev->skip_reason = shape == FMT_OBJECT ? "items_not_an_array" : "malformed_response";
            ev->len = h->body.len;
            return 1;
        }
    } else {
        h->line_pos = 0;
    }
    h->have_items = 1;
    return 0;
}

/* The next item of the current response: 1 with ev filled, 0 if none left. */
static int next_item(http_state *h, source_event *ev)
{
    const char *item = NULL;
    size_t len = 0;
    memset(ev, 0, sizeof *ev);
    for (;;) {
        if (h->shape == FMT_NDJSON) {
            if (h->line_pos >= h->body.len)
                return h->have_items = 0;
            const char *start = h->body.data + h->line_pos;
            const char *nl = memchr(start, '\n', h->body.len - h->line_pos);
            len = nl ? (size_t)(nl - start) : h->body.len - h->line_pos;
            h->line_pos += len + (nl ? 1 : 0);
            item = start;
            size_t lead = json_skip_ws(item, len, 0);
            if (lead == len)
                continue; /* blank line */
        } else {
            int rc = json_array_next(&h->items, &item, &len);
            if (rc == 0)
                return h->have_items = 0;
            if (rc < 0) {
                h->have_items = 0;
                h->item_no++;
                snprintf(h->where, sizeof h->where, "item %" PRIu64 " of response %" PRIu64,
                         h->item_no, h->response_no);
                ev->where = h->where;
                ev->skip_reason = "malformed_response";
                ev->position = ++h->position;
                return 1;
            }
        }
        break;
    }
    h->item_no++;
    snprintf(h->where, sizeof h->where, "item %" PRIu64 " of response %" PRIu64, h->item_no,
             h->response_no);
    source_item_id(h->name, "http", h->id_pointer, item, len, h->msg_id, sizeof h->msg_id);
    ev->body = item;
    ev->len = len;
    ev->msg_id = h->msg_id;
    ev->where = h->where;
    ev->position = ++h->position;
    return 1;
}

static void retry_later(http_state *h, const char *what)
{
    long delay = backoff_ms(h->failures++, h->retry_base_ms, h->retry_max_ms);
    log_warn("http poll failed, will retry source=%s url=%s error=\"%s\" attempt=%u "
             "retry_in_ms=%ld",
             h->name, h->safe_url, what, h->failures, delay);
    h->next_poll_us = mono_us() + (int64_t)delay * 1000;
}

static adapter_result http_next(void *state, source_event *ev, char *err, size_t errlen)
{
    http_state *h = state;
    if (h->have_items && next_item(h, ev))
        return ADAPTER_EVENT;
    int64_t wait_us = h->next_poll_us - mono_us();
    if (wait_us > 0) {
        source_sleep_ms(h->stop, wait_us > 100000 ? 100 : (long)(wait_us / 1000) + 1);
        return ADAPTER_IDLE;
    }
    char why[CURL_ERROR_SIZE + 256];
    long status = request(h, why, sizeof why);
    if (atomic_load(h->stop))
        return ADAPTER_IDLE;
    if (status == 0) {
        retry_later(h, why);
        return ADAPTER_IDLE;
    }
    if (status >= 500 || status == 408 || status == 429) {
        snprintf(why, sizeof why, "HTTP %ld", status);
        retry_later(h, why);
        return ADAPTER_IDLE;
    }
    h->next_poll_us = mono_us() + (int64_t)h->interval_ms * 1000;
    if (h->failures)
        log_info("http source recovered source=%s url=%s after_failures=%u", h->name, h->safe_url,
                 h->failures);
    h->failures = 0;
    if (status == 304)
        return ADAPTER_IDLE;
    if (status < 200 || status > 299) {
        snprintf(err, errlen,
                 "source %s: GET %s answered HTTP %ld: a client error is not retried; check the "
                 "url and the headers (credentials)",
                 h->name, h->safe_url, status);
        return ADAPTER_ERROR;
    }
    if (h->new_etag[0])
        snprintf(h->etag, sizeof h->etag, "%s", h->new_etag);
    if (h->new_last_modified[0])
        snprintf(h->last_modified, sizeof h->last_modified, "%s", h->new_last_modified);
    log_debug("http poll source=%s status=%ld bytes=%zu", h->name, status, h->body.len);
    if (start_items(h, ev))
        return ADAPTER_EVENT; /* a skip: the response has the wrong shape */
    if (next_item(h, ev))
        return ADAPTER_EVENT;
    return ADAPTER_IDLE;
}

const adapter_class http_adapter = {
    .name = "http",
    .summary = "polls a JSON endpoint with libcurl (conditional requests, retries with backoff)",
    .settings = http_settings,
    .settings_size = sizeof(http_conf),
    .open = http_open,
    .next = http_next,
    .checkpoint = NULL, /* items carry their own ids; a re-poll after a restart is absorbed */
    .close = http_close,
};
