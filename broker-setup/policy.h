/*
 * policy: a RabbitMQ part of sluice-setup (main.c lists both servers'
 * parts). Sets sluice.ingest's alternate exchange by a RabbitMQ policy,
 * through the management HTTP API, for a broker whose sluice.ingest was
 * declared by a setup older than the alternate exchange.
 *
 * RabbitMQ refuses to redeclare an exchange with other arguments, and
 * deleting sluice.ingest to declare it again would lose its bindings and
 * whatever foreign publishers send meanwhile. A policy adds the alternate
 * exchange to the exchange in place, at once, on RabbitMQ 3.x and 4.x
 * alike; the broker applies it to every node of a cluster.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <stddef.h>

#include "mq.h"

#define POLICY_NAME "sluice-ingest-unrouted"

#define POLICY_OK 0
#define POLICY_FAILED (-1)   /* the API could not be reached or refused the request */
#define POLICY_CONFLICT (-2) /* sluice.ingest or another policy stands in the way */

/*
 * Makes sure policy POLICY_NAME (pattern ^sluice\.ingest$, exchanges,
 * alternate-exchange sluice.unrouted) exists in the vhost of `amqp_url`
 * and is the policy in force on sluice.ingest, through the management API
 * (mgmt.h). `api_url` is the API's base URL (http://host:15672/); empty:
 * derived from amqp_url's host (https and port 15671 for amqps://).
 * Without user information of its own it logs in with amqp_url's user and
 * password. `tls` (the mgmt_* TLS settings; NULL: the system's CA store)
 * verifies an https API.
 *
 * Returns POLICY_OK; POLICY_CONFLICT with err saying what stands in the
 * way (sluice.ingest is not a durable topic exchange, has another
 * alternate exchange as an argument, or another policy wins); or
 * POLICY_FAILED with err naming the URL (no password) and the answer, and
 * the rabbitmqctl command that does the same by hand.
 */
int policy_ensure_alternate(const char *api_url, const char *amqp_url, const mq_tls *tls, char *err,
                            size_t errlen);

#endif
