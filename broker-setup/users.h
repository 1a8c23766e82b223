/*
 * users: a RabbitMQ part of sluice-setup (main.c lists both servers'
 * parts). Creates each component's RabbitMQ user and gives it the least
 * its AMQP operations need on setup's vhost, through the management API
 * (admin.h), so a leaked password reaches only that component's part of
 * the topology:
 *   producer  write sluice.ingest; nothing else (its check of which
 *             sources have a queue is a passive declare, which needs no
 *             permission, and so are publisher confirms and returns)
 *   worker    read sluice.q.* except sluice.q.notifier; write sluice.dlx
 *             (dead letters, which the broker routes on to sluice.dead)
 *             and sluice.alerts
 *   notifier  read sluice.q.notifier; write sluice.dlx
 * None may configure (declare, delete, bind) anything: setup declares the
 * topology as the administrator of amqp_url, and sluice-ctl works as an
 * administrator too. A queue's own dead-lettering needs no permission of
 * the user whose message it drops.
 *
 * Idempotent: a user's password and permissions are set on every run, so
 * a changed password (a rotation) takes effect the next time setup runs.
 */
#ifndef SLUICE_USERS_H
#define SLUICE_USERS_H

#include <stddef.h>

#include "mq.h"

typedef enum { USERS_PRODUCER, USERS_WORKER, USERS_NOTIFIER, USERS_COUNT } users_kind;

/* The regexes of each kind (RabbitMQ's configure, write and read
 * permissions); statically allocated. */
typedef struct users_grant {
    const char *kind; /* "producer" */
    const char *configure, *write, *read;
} users_grant;
extern const users_grant users_grants[USERS_COUNT];

typedef struct users_account {
    const char *name;     /* the RabbitMQ user */
    const char *password; /* NULL or "": the account is left as it is */
} users_account;

#define USERS_OK 0
#define USERS_FAILED (-1)   /* the API could not be reached or refused */
#define USERS_CONFLICT (-2) /* bad settings: an account named like setup's own login */

/*
 * Creates or updates each account of `accounts` (indexed by users_kind)
 * that has a password, with no tags and its kind's permissions on
 * amqp_url's vhost. `api_url`, `amqp_url` and `tls` are as admin_open()'s.
 * *done counts the accounts set. Returns USERS_OK, USERS_CONFLICT (err
 * names the setting), or USERS_FAILED with err naming the URL (never a
 * password) and the answer.
 */
int users_ensure(const char *api_url, const char *amqp_url, const mq_tls *tls,
                 const users_account accounts[USERS_COUNT], int *done, char *err, size_t errlen);

#endif
