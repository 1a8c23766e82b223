/*
 * mgmt: see mgmt.h.
 */
#include "mgmt.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define MAX_REPLY (4 << 20) /* a queue's JSON is a few kB */

struct mgmt {
    char *base, *user, *password, *vhost;
};

typedef buf reply; /* the answer's body, a NUL after it */

mgmt *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost)
{
    mgmt *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base = strdup(base_url);
    m->user = strdup(user);
    m->password = strdup(password);
    m->vhost = strdup(vhost);
    if (!m->base || !m->user || !m->password || !m->vhost) {
        mgmt_free(m);
        return NULL;
    }
    return m;
}

void mgmt_free(mgmt *m)
{
    if (!m)
        return;
    free(m->base);
    free(m->user);
    free(m->password);
    free(m->vhost);
    free(m);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    reply *r = arg;
    size_t n = size * nmemb;
    if (r->len + n > MAX_REPLY)
        return 0; /* makes curl fail: no queue answers that much */
    return buf_append(r, ptr, n) == 0 ? n : 0;
}

static double rate(json_object *q, const char *stat)
{
    json_object *stats, *details, *value;
    if (!json_object_object_get_ex(q, "message_stats", &stats) ||
        !json_object_object_get_ex(stats, stat, &details) ||
        !json_object_object_get_ex(details, "rate", &value))
        return 0.0;
    return json_object_get_double(value);
}

static long number(json_object *q, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(q, key, &v) ? (long)json_object_get_int64(v) : 0;
}

int mgmt_queue_get(mgmt *m, const char *name, mgmt_queue *q, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    int rc = -1;
    reply body = {0};
    char *vhost = NULL, *queue = NULL, url[1024];
    json_object *doc = NULL;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(err, errlen, "management API: cannot start libcurl");
        return -1;
    }
    vhost = curl_easy_escape(curl, m->vhost, 0);
    queue = curl_easy_escape(curl, name, 0);
    if (!vhost || !queue) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    size_t blen = strlen(m->base);
    snprintf(url, sizeof url, "%s%sapi/queues/%s/%s", m->base,
             blen && m->base[blen - 1] == '/' ? "" : "/", vhost, queue);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_USERNAME, m->user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, m->password);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "management API %s: %s", m->base, curl_easy_strerror(cc));
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 404) {
        rc = 0;
        goto done;
    }
    if (status != 200) {
        snprintf(err, errlen, "management API %s: HTTP %ld for queue %s%s", m->base, status, name,
                 status == 401 ? " (check mgmt_user and mgmt_password)" : "");
        goto done;
    }
    doc = body.data ? json_tokener_parse(body.data) : NULL;
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        snprintf(err, errlen, "management API %s: queue %s: not a JSON object", m->base, name);
        goto done;
    }
    q->found = 1;
    q->messages = number(doc, "messages");
    q->ready = number(doc, "messages_ready");
    q->consumers = number(doc, "consumers");
    q->publish_rate = rate(doc, "publish_details");
    q->deliver_rate = rate(doc, "deliver_get_details");
    rc = 0;
done:
    json_object_put(doc);
    curl_free(vhost);
    curl_free(queue);
    buf_free(&body);
    curl_easy_cleanup(curl);
    return rc;
}
