/*
 * admin: the management API client (mgmt.h) of sluice-setup's RabbitMQ
 * parts that AMQP cannot do (policy.h, users.h), opened from setup's
 * settings the one way both need: the API at mgmt_url, else at amqp_url's
 * host; logged in with mgmt_url's own user information, else with
 * amqp_url's login (setup's administrator); on amqp_url's vhost.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <stddef.h>

#include "mgmt.h"
#include "mq.h"

/*
 * `api_url`: mgmt_url ("" or NULL: http://<amqp_url's host>:15672/, https
 * and 15671 for amqps://). `tls`: the mgmt_* TLS settings (NULL: the
 * system's CA store). Fills vhost (the vhost's name, unescaped) and, when
 * `login` is not NULL, the user setup logs in as ("" when mgmt_url carries
 * its own). Returns the client (free with mgmt_free()), or NULL with err
 * (no password in it).
 */
mgmt *admin_open(const char *api_url, const char *amqp_url, const mq_tls *tls, char *vhost,
                 size_t vhost_len, char *login, size_t login_len, char *err, size_t errlen);

#endif
