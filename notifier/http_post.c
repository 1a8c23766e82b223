/*
 * http_post: see http_post.h.
 */
#include "http_post.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

struct http_client {
    CURL *curl;
    long timeout_ms;
};

typedef buf buffer; /* the answer's body, a NUL after it */

http_client *http_client_new(long timeout_ms)
{
    http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->curl = curl_easy_init();
    c->timeout_ms = timeout_ms;
    if (!c->curl) {
        free(c);
        return NULL;
    }
    return c;
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    buffer *b = arg;
    size_t take = size * n;
    if (b->len + take > 1024 * 1024)
        return take; /* enough to read an error description */
    return buf_append(b, data, take) == 0 ? take : 0;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    long *retry_after_s = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
        char text[32];
        size_t k = len - 12 < sizeof text - 1 ? len - 12 : sizeof text - 1;
        memcpy(text, line + 12, k);
        text[k] = '\0';
        char *end;
        long v = strtol(text, &end, 10);
        if (end != text && v >= 0)
            *retry_after_s = v;
    }
    return len;
}

int http_post_json(http_client *c, const char *url, const char *body, const char *header,
                   http_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    reply->retry_after_s = -1;
    buffer b = {0};
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (headers && header)
        headers = curl_slist_append(headers, header);
    if (!headers)
        return -1;
    CURL *h = c->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &reply->retry_after_s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-notifier");
    /* The URL may hold a secret (the bot token): never follow it elsewhere. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (b.failed) {
        buf_free(&b);
        return -1;
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->status);
    } else {
        /* curl_easy_strerror, not errbuf: errbuf can quote the URL. */
        snprintf(reply->error, sizeof reply->error, "%s", curl_easy_strerror(rc));
    }
    reply->body = b.data ? b.data : strdup("");
    return reply->body ? 0 : -1;
}

void http_classify(long status, const char *transport_error, const char *description,
                   long retry_after_s, send_result *out)
{
    out->retry_after_ms = -1;
    out->reason[0] = '\0';
    if (status == 0) {
        out->status = SEND_RETRY;
        snprintf(out->reason, sizeof out->reason, "network: %s",
                 transport_error ? transport_error : "no response");
        return;
    }
    if (status >= 200 && status < 300) {
        out->status = SEND_OK;
        return;
    }
    snprintf(out->reason, sizeof out->reason, "HTTP %ld%s%.400s", status,
             description && *description ? ": " : "", description ? description : "");
    if (status == 429) {
        out->status = SEND_RETRY;
        out->retry_after_ms = retry_after_s >= 0 ? retry_after_s * 1000 : 1000;
    } else if (status >= 500) {
        out->status = SEND_RETRY;
    } else {
        out->status = SEND_FAIL;
    }
}

void send_out_of_memory(send_result *out)
{
    out->status = SEND_RETRY;
    out->retry_after_ms = -1;
    snprintf(out->reason, sizeof out->reason, "out of memory");
}
