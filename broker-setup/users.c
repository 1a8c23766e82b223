/*
 * users: see users.h. Two PUTs per account: the user (password, no
 * tags), then its permissions on the vhost.
 */
#include "users.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "buf.h"
#include "log.h"
#include "mgmt.h"

const users_grant users_grants[USERS_COUNT] = {
    [USERS_PRODUCER] = {"producer", "^$", "^sluice\\.ingest$", "^$"},
    [USERS_WORKER] = {"worker", "^$", "^sluice\\.(dlx|alerts)$", "^sluice\\.q\\.(?!notifier$)"},
    [USERS_NOTIFIER] = {"notifier", "^$", "^sluice\\.dlx$", "^sluice\\.q\\.notifier$"},
};

/* PUTs `body` (freed here) to api/<kind>/[vhost/]<name>; 0 if the API
 * answered 201 or 204. */
static int put(mgmt *m, const char *kind, int in_vhost, const char *name, json_object *body,
               const char *vhost, char *err, size_t errlen)
{
    long status = 0;
    buf r;
    const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    int rc = in_vhost ? mgmt_call(m, "PUT", kind, name, text, &status, &r, err, errlen)
                      : mgmt_call_global(m, "PUT", kind, name, text, &status, &r, err, errlen);
    json_object_put(body);
    if (rc != 0)
        return -1;
    if (status != 201 && status != 204) {
        snprintf(err, errlen, "management API %s: PUT %s %s%s%s answered %ld%s%.200s%s",
                 mgmt_url(m), kind, in_vhost ? vhost : "", in_vhost ? "/" : "", name, status,
                 r.data ? ": " : "", r.data ? r.data : "",
                 status == 401 || status == 403
                     ? " (setup's user needs RabbitMQ's administrator tag to manage users)"
                     : "");
        rc = -1;
    }
    buf_free(&r);
    return rc;
}

static json_object *user_body(const char *password)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "password", json_object_new_string(password));
    json_object_object_add(o, "tags", json_object_new_string(""));
    return o;
}

static json_object *permissions_body(const users_grant *g)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "configure", json_object_new_string(g->configure));
    json_object_object_add(o, "write", json_object_new_string(g->write));
    json_object_object_add(o, "read", json_object_new_string(g->read));
    return o;
}

int users_ensure(const char *api_url, const char *amqp_url, const mq_tls *tls,
                 const users_account accounts[USERS_COUNT], int *done, char *err, size_t errlen)
{
    char vhost[256], login[256];
    *done = 0;
    int wanted = 0;
    for (int k = 0; k < USERS_COUNT; k++)
        wanted += accounts[k].password && *accounts[k].password;
    if (!wanted)
        return USERS_OK;
    mgmt *m =
        admin_open(api_url, amqp_url, tls, vhost, sizeof vhost, login, sizeof login, err, errlen);
    if (!m)
        return USERS_FAILED;
    int rc = USERS_OK;
    for (int k = 0; k < USERS_COUNT && rc == USERS_OK; k++) {
        const users_account *a = &accounts[k];
        const users_grant *g = &users_grants[k];
        if (!a->password || !*a->password)
            continue;
        /* Setting the permissions of setup's own login would take away
         * its administrator tag and its rights. */
        if (!a->name || !*a->name || strcmp(a->name, login) == 0) {
            snprintf(err, errlen,
                     "amqp_%s_user '%s' must name a user of its own, not amqp_url's "
                     "administrator",
                     g->kind, a->name ? a->name : "");
            rc = USERS_CONFLICT;
            break;
        }
        if (put(m, "users", 0, a->name, user_body(a->password), vhost, err, errlen) != 0 ||
            put(m, "permissions", 1, a->name, permissions_body(g), vhost, err, errlen) != 0) {
            rc = USERS_FAILED;
            break;
        }
        log_info("rabbitmq user ready name=%s kind=%s vhost=%s configure=%s write=%s read=%s",
                 a->name, g->kind, vhost, g->configure, g->write, g->read);
        (*done)++;
    }
    mgmt_free(m);
    return rc;
}
