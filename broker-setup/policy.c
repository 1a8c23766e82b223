/*
 * policy: see policy.h. Two calls of the management API (GET the exchange,
 * PUT the policy) and a GET to see that the policy is the one in force.
 */
#include "policy.h"

#include "amqp_api.h"
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "event.h"
#include "log.h"
#include "mq.h"
#include "util.h"

/* Appended to a failure: the same step for an operator to take by hand. */
#define BY_HAND                                                                                    \
    "; or by hand: rabbitmqctl set_policy -p '%s' --apply-to exchanges " POLICY_NAME               \
    " '^sluice\\.ingest$' '{\"alternate-exchange\":\"" SLUICE_EXCHANGE_UNROUTED "\"}'"

typedef struct api {
    CURL *curl;
    char base[512];  /* ends in '/' */
    char shown[512]; /* base without a password, for messages */
    char *vhost;     /* URL-escaped */
    char vhost_name[256];
    char *user, *password;
    const char *ca_file;
} api;

/* The answer's body (text: a buf ends in a NUL). */
typedef buf reply;

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t add = size * n;
    if (r->len + add > 1 << 20)
        return 0; /* an exchange's description is small: stop a runaway answer */
    return buf_append(r, data, add) == 0 ? add : 0;
}

/* One request; fills *status and *out (free it). Returns 0, or -1 with err
 * if no answer came. */
static int request(api *a, const char *method, const char *path, const char *body, long *status,
                   reply *out, char *err, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", a->base, path);
    memset(out, 0, sizeof *out);
    CURL *c = a->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (a->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, a->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, a->password ? a->password : "");
    }
    if (a->ca_file && *a->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
    struct curl_slist *headers = NULL;
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "management API %s%s: %s", a->shown, path, curl_easy_strerror(rc));
        buf_free(out);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

/* The policy's name in force on sluice.ingest ("" if none) and its type,
 * durability and alternate-exchange argument, from GET exchanges/... */
typedef struct exchange_view {
    char type[32], policy[256], argument[256];
    int durable;
} exchange_view;

static int get_exchange(api *a, exchange_view *v, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "api/exchanges/%s/" SLUICE_EXCHANGE_INGEST, a->vhost);
    long status = 0;
    reply r;
    if (request(a, "GET", path, NULL, &status, &r, err, errlen) != 0)
        return -1;
    int rc = -1;
    json_object *doc = r.data ? json_tokener_parse(r.data) : NULL, *x;
    if (status != 200 || !doc) {
        snprintf(err, errlen, "management API %s%s answered %ld%s%.200s", a->shown, path, status,
                 r.data ? ": " : "", r.data ? r.data : "");
        goto done;
    }
    memset(v, 0, sizeof *v);
    if (json_object_object_get_ex(doc, "type", &x))
        snprintf(v->type, sizeof v->type, "%s", json_object_get_string(x));
    if (json_object_object_get_ex(doc, "durable", &x))
        v->durable = json_object_get_boolean(x);
    if (json_object_object_get_ex(doc, "policy", &x) && json_object_is_type(x, json_type_string))
        snprintf(v->policy, sizeof v->policy, "%s", json_object_get_string(x));
    json_object *args;
    if (json_object_object_get_ex(doc, "arguments", &args) &&
        json_object_object_get_ex(args, "alternate-exchange", &x))
        snprintf(v->argument, sizeof v->argument, "%s", json_object_get_string(x));
    rc = 0;
done:
    json_object_put(doc);
    buf_free(&r);
    return rc;
}

static int put_policy(api *a, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "api/policies/%s/" POLICY_NAME, a->vhost);
    static const char body[] =
        "{\"pattern\":\"^sluice\\\\.ingest$\",\"apply-to\":\"exchanges\","
        "\"priority\":0,\"definition\":{\"alternate-exchange\":\"" SLUICE_EXCHANGE_UNROUTED "\"}}";
    long status = 0;
    reply r;
    if (request(a, "PUT", path, body, &status, &r, err, errlen) != 0)
        return -1;
    int rc = status == 201 || status == 204 ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "management API %s%s answered %ld%s%.200s%s", a->shown, path, status,
                 r.data ? ": " : "", r.data ? r.data : "",
                 status == 401 ? " (setup needs a user with the policymaker or administrator tag)"
                               : "");
    buf_free(&r);
    return rc;
}

/* Fills the API's base URL, login and vhost from the settings. */
static int api_init(api *a, const char *mgmt_url, const char *amqp_url, char *err, size_t errlen)
{
    char *copy = strdup(amqp_url);
    struct amqp_connection_info info;
    if (!copy || amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
        char shown[512];
        mq_redact_url(amqp_url, shown, sizeof shown);
        snprintf(err, errlen, "cannot parse amqp_url %s", shown);
        free(copy);
        return -1;
    }
    if (mgmt_url && *mgmt_url) {
        size_t n = strlen(mgmt_url);
        snprintf(a->base, sizeof a->base, "%s%s", mgmt_url, mgmt_url[n - 1] == '/' ? "" : "/");
    } else {
        snprintf(a->base, sizeof a->base, "%s://%s:%d/", info.ssl ? "https" : "http", info.host,
                 info.ssl ? 15671 : 15672);
    }
    mq_redact_url(a->base, a->shown, sizeof a->shown);
    /* userinfo in mgmt_url wins; otherwise the broker's own login. */
    const char *scheme_end = strstr(a->base, "://");
    if (!(scheme_end && strchr(scheme_end, '@'))) {
        a->user = strdup(info.user);
        a->password = strdup(info.password);
    }
    a->curl = curl_easy_init();
    a->vhost = a->curl ? curl_easy_escape(a->curl, info.vhost, 0) : NULL;
    snprintf(a->vhost_name, sizeof a->vhost_name, "%s", info.vhost);
    free(copy);
    if (!a->curl || !a->vhost) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void api_free(api *a)
{
    curl_free(a->vhost);
    curl_easy_cleanup(a->curl);
    free(a->user);
    free(a->password);
}

int policy_ensure_alternate(const char *mgmt_url, const char *amqp_url, const char *ca_file,
                            char *err, size_t errlen)
{
    api a = {.ca_file = ca_file};
    exchange_view v;
    int rc = POLICY_FAILED;
    if (api_init(&a, mgmt_url, amqp_url, err, errlen) != 0 ||
        get_exchange(&a, &v, err, errlen) != 0)
        goto done;
    if (strcmp(v.type, "topic") != 0 || !v.durable) {
        snprintf(err, errlen,
                 "exchange " SLUICE_EXCHANGE_INGEST " exists with other arguments: type %s, %s "
                 "(sluice needs a durable topic exchange)",
                 v.type, v.durable ? "durable" : "not durable");
        rc = POLICY_CONFLICT;
        goto done;
    }
    if (*v.argument && strcmp(v.argument, SLUICE_EXCHANGE_UNROUTED) != 0) {
        snprintf(err, errlen,
                 "exchange " SLUICE_EXCHANGE_INGEST " was declared with alternate exchange '%s' "
                 "(an argument, which no policy overrides); sluice needs " SLUICE_EXCHANGE_UNROUTED,
                 v.argument);
        rc = POLICY_CONFLICT;
        goto done;
    }
    if (strcmp(v.policy, POLICY_NAME) != 0) {
        if (put_policy(&a, err, errlen) != 0)
            goto done;
        log_info("policy set name=" POLICY_NAME " exchange=" SLUICE_EXCHANGE_INGEST
                 " alternate_exchange=" SLUICE_EXCHANGE_UNROUTED " api=%s",
                 a.shown);
        /* The broker applies a policy as it stores it; looking again shows
         * whether a policy of a higher priority keeps ours out. */
        int64_t deadline = mono_us() + 5000000;
        while (get_exchange(&a, &v, err, errlen) == 0 && strcmp(v.policy, POLICY_NAME) != 0 &&
               mono_us() < deadline)
            sleep_interruptible_ms(100);
        if (strcmp(v.policy, POLICY_NAME) != 0) {
            if (*v.policy)
                snprintf(err, errlen,
                         "policy '%s' applies to exchange " SLUICE_EXCHANGE_INGEST
                         " instead of " POLICY_NAME
                         ": add \"alternate-exchange\": \"" SLUICE_EXCHANGE_UNROUTED
                         "\" to its definition, or give it a lower priority",
                         v.policy);
            rc = *v.policy ? POLICY_CONFLICT : POLICY_FAILED;
            goto done;
        }
    }
    rc = POLICY_OK;
done:
    if (rc == POLICY_FAILED && a.vhost) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, BY_HAND, a.vhost_name);
    }
    api_free(&a);
    return rc;
}
