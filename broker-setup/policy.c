/*
 * policy: see policy.h. Two calls of the management API (GET the exchange,
 * PUT the policy) and a GET to see that the policy is the one in force.
 */
#include "policy.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "buf.h"
#include "event.h"
#include "log.h"
#include "mgmt.h"
#include "mq.h"
#include "util.h"

/* Appended to a failure: the same step for an operator to take by hand. */
#define BY_HAND                                                                                    \
    "; or by hand: rabbitmqctl set_policy -p '%s' --apply-to exchanges " POLICY_NAME               \
    " '^sluice\\.ingest$' '{\"alternate-exchange\":\"" SLUICE_EXCHANGE_UNROUTED "\"}'"

typedef struct api {
    mgmt *m;
    char vhost_name[256];
} api;

/* The policy's name in force on sluice.ingest ("" if none) and its type,
 * durability and alternate-exchange argument, from GET exchanges/... */
typedef struct exchange_view {
    char type[32], policy[256], argument[256];
    int durable;
} exchange_view;

/* Says what the API answered, with the start of its body. */
static void answered(const api *a, const char *kind, const char *name, long status, const buf *r,
                     const char *advice, char *err, size_t errlen)
{
    snprintf(err, errlen, "management API %s: %s %s of vhost %s answered %ld%s%.200s%s",
             mgmt_url(a->m), kind, name, a->vhost_name, status, r->data ? ": " : "",
             r->data ? r->data : "", advice);
}

static int get_exchange(api *a, exchange_view *v, char *err, size_t errlen)
{
    long status = 0;
    buf r;
    if (mgmt_call(a->m, "GET", "exchanges", SLUICE_EXCHANGE_INGEST, NULL, &status, &r, err,
                  errlen) != 0)
        return -1;
    int rc = -1;
    json_object *doc = r.data ? json_tokener_parse(r.data) : NULL, *x;
    if (status != 200 || !doc) {
        answered(a, "exchange", SLUICE_EXCHANGE_INGEST, status, &r, "", err, errlen);
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
    static const char body[] =
        "{\"pattern\":\"^sluice\\\\.ingest$\",\"apply-to\":\"exchanges\","
        "\"priority\":0,\"definition\":{\"alternate-exchange\":\"" SLUICE_EXCHANGE_UNROUTED "\"}}";
    long status = 0;
    buf r;
    if (mgmt_call(a->m, "PUT", "policies", POLICY_NAME, body, &status, &r, err, errlen) != 0)
        return -1;
    int rc = status == 201 || status == 204 ? 0 : -1;
    if (rc != 0)
        answered(a, "policy", POLICY_NAME, status, &r,
                 status == 401 ? " (setup needs a user with the policymaker or administrator tag)"
                               : "",
                 err, errlen);
    buf_free(&r);
    return rc;
}

int policy_ensure_alternate(const char *api_url, const char *amqp_url, const mq_tls *tls, char *err,
                            size_t errlen)
{
    api a = {0};
    exchange_view v;
    int rc = POLICY_FAILED;
    if (!(a.m = admin_open(api_url, amqp_url, tls, a.vhost_name, sizeof a.vhost_name, NULL, 0,
                           err, errlen)) ||
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
                 mgmt_url(a.m));
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
    if (rc == POLICY_FAILED && a.m) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, BY_HAND, a.vhost_name);
    }
    mgmt_free(a.m);
    return rc;
}
