/*
 * mgmt: see mgmt.h. One libcurl handle per client, reset before each
 * request: the settings start afresh, the connection is kept for the next.
 */
#include "mgmt.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPLY (4 << 20) /* a queue's or an exchange's JSON is a few kB */

struct mgmt {
    CURL *curl;
    char *base;      /* ends in '/' */
    char shown[512]; /* base without a password, for messages */
    char *vhost;     /* URL-escaped */
    char *user, *password;
    char *ca_file, *cert_file, *key_file; /* NULL: not set */
    int verify_peer, verify_hostname;
};

/* strdup of a setting that may be unset: NULL for NULL or "". Sets *oom if
 * a string there could not be copied. */
static char *copy_opt(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = 1;
    return c;
}

mgmt *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost,
               const mq_tls *tls, char *err, size_t errlen)
{
    int oom = 0;
    mgmt *m = calloc(1, sizeof *m);
    if (!m)
        goto fail;
    size_t n = strlen(base_url);
    if (!(m->base = malloc(n + 2)))
        goto fail;
    snprintf(m->base, n + 2, "%s%s", base_url, n && base_url[n - 1] == '/' ? "" : "/");
    mq_redact_url(m->base, m->shown, sizeof m->shown);
    m->user = copy_opt(user, &oom);
    m->password = strdup(password ? password : "");
    m->verify_peer = m->verify_hostname = 1;
    if (tls) {
        m->ca_file = copy_opt(tls->ca_file, &oom);
        m->cert_file = copy_opt(tls->cert_file, &oom);
        m->key_file = copy_opt(tls->key_file, &oom);
        m->verify_peer = tls->verify_peer;
        m->verify_hostname = tls->verify_hostname;
    }
    if (oom || !m->password || !(m->curl = curl_easy_init()))
        goto fail;
    if (!(m->vhost = curl_easy_escape(m->curl, vhost && *vhost ? vhost : "/", 0)))
        goto fail;
    return m;
fail:
    snprintf(err, errlen, "management API %s: out of memory", base_url);
    mgmt_free(m);
    return NULL;
}

void mgmt_free(mgmt *m)
{
    if (!m)
        return;
    curl_free(m->vhost);
    curl_easy_cleanup(m->curl);
    free(m->base);
    free(m->user);
    free(m->password);
    free(m->ca_file);
    free(m->cert_file);
    free(m->key_file);
    free(m);
}

const char *mgmt_url(const mgmt *m)
{
    return m->shown;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buf *r = arg;
    size_t add = size * n;
    if (r->len + add > MAX_REPLY)
        return 0; /* makes curl fail: no answer of the API read here is that long */
    return buf_append(r, data, add) == 0 ? add : 0;
}

/* Why no answer came, in words that point at the setting to fix: curl's
 * own strings for TLS failures name no setting. `detail` is curl's error
 * buffer (may be empty). */
static void describe_failure(const mgmt *m, const char *url, CURLcode rc, const char *detail,
                             char *err, size_t errlen)
{
    const char *why = detail[0] ? detail : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (strstr(why, "host name") || strstr(why, "subjectAltName"))
            snprintf(err, errlen,
                     "management API %s: TLS: its certificate does not name the URL's host "
                     "(use the name it was issued for, or mgmt_verify_hostname=false): %s",
                     url, why);
        else
            snprintf(err, errlen,
                     "management API %s: TLS: its certificate is not signed by a CA in "
                     "mgmt_ca_file (%s): %s",
                     url, m->ca_file ? m->ca_file : "unset: the system's CA store", why);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        snprintf(err, errlen, "management API %s: %s%s", url, why,
                 !strncmp(m->base, "https:", 6) && !m->cert_file
                     ? " (the API may require a client certificate: mgmt_cert_file, "
                       "mgmt_key_file)"
                     : "");
        break;
    case CURLE_SSL_CERTPROBLEM:
        snprintf(err, errlen, "management API %s: mgmt_cert_file %s / mgmt_key_file %s: %s", url,
                 m->cert_file ? m->cert_file : "", m->key_file ? m->key_file : "", why);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(err, errlen, "management API %s: mgmt_ca_file %s: %s", url,
                 m->ca_file ? m->ca_file : "", why);
        break;
    default:
        snprintf(err, errlen, "management API %s: %s", url, why);
    }
}

/* mgmt_call() and mgmt_call_global(): `in_vhost` says whether the path
 * holds the client's vhost. */
static int request(mgmt *m, const char *method, const char *kind, int in_vhost, const char *name,
                   const char *body, long *status, buf *reply, char *err, size_t errlen)
{
    memset(reply, 0, sizeof *reply);
    *status = 0;
    char *escaped = curl_easy_escape(m->curl, name, 0);
    if (!escaped) {
        snprintf(err, errlen, "management API %s: out of memory", m->shown);
        return -1;
    }
    char url[2048], shown[1024], detail[CURL_ERROR_SIZE] = "";
    const char *vhost = in_vhost ? m->vhost : "", *slash = in_vhost ? "/" : "";
    snprintf(url, sizeof url, "%sapi/%s/%s%s%s", m->base, kind, vhost, slash, escaped);
    snprintf(shown, sizeof shown, "%sapi/%s/%s%s%s", m->shown, kind, vhost, slash, escaped);
    curl_free(escaped);

    CURL *c = m->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (m->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, m->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->password);
    }
    if (m->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, m->ca_file);
    if (m->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, m->cert_file);
        curl_easy_setopt(c, CURLOPT_SSLKEY, m->key_file);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, m->verify_peer ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, m->verify_hostname ? 2L : 0L);
    struct curl_slist *headers = NULL;
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    /* The buffer lives on this stack frame: no later call may write it. */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        describe_failure(m, shown, rc, detail, err, errlen);
        buf_free(reply);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int mgmt_call(mgmt *m, const char *method, const char *kind, const char *name, const char *body,
              long *status, buf *reply, char *err, size_t errlen)
{
    return request(m, method, kind, 1, name, body, status, reply, err, errlen);
}

int mgmt_call_global(mgmt *m, const char *method, const char *kind, const char *name,
                     const char *body, long *status, buf *reply, char *err, size_t errlen)
{
    return request(m, method, kind, 0, name, body, status, reply, err, errlen);
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
    long status = 0;
    buf body;
    if (mgmt_call(m, "GET", "queues", name, NULL, &status, &body, err, errlen) != 0)
        return -1;
    int rc = -1;
    json_object *doc = NULL;
    if (status == 404) {
        rc = 0;
        goto done;
    }
    if (status != 200) {
        snprintf(err, errlen, "management API %s: HTTP %ld for queue %s%s", m->shown, status, name,
                 status == 401 ? " (check mgmt_user and mgmt_password)" : "");
        goto done;
    }
    doc = body.data ? json_tokener_parse(body.data) : NULL;
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        snprintf(err, errlen, "management API %s: queue %s: not a JSON object", m->shown, name);
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
    buf_free(&body);
    return rc;
}
