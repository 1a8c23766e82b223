/*
 * admin: see admin.h.
 */
#include "admin.h"

#include "amqp_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mgmt *admin_open(const char *api_url, const char *amqp_url, const mq_tls *tls, char *vhost,
                 size_t vhost_len, char *login, size_t login_len, char *err, size_t errlen)
{
    mgmt *m = NULL;
    char *copy = strdup(amqp_url);
    struct amqp_connection_info info;
    if (!copy || amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
        char shown[512];
        mq_redact_url(amqp_url, shown, sizeof shown);
        snprintf(err, errlen, "cannot parse amqp_url %s", shown);
        goto done;
    }
    char base[512];
    if (api_url && *api_url)
        snprintf(base, sizeof base, "%s", api_url);
    else
        snprintf(base, sizeof base, "%s://%s:%d/", info.ssl ? "https" : "http", info.host,
                 info.ssl ? 15671 : 15672);
    const char *scheme_end = strstr(base, "://");
    int own_login = scheme_end && strchr(scheme_end, '@');
    m = mgmt_new(base, own_login ? NULL : info.user, info.password, info.vhost, tls, err, errlen);
    snprintf(vhost, vhost_len, "%s", info.vhost);
    if (login)
        snprintf(login, login_len, "%s", own_login ? "" : info.user);
done:
    free(copy);
    return m;
}
