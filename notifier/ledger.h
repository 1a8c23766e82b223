/*
 * ledger: the notifier's outbox and record of deliveries in PostgreSQL
 * (tables alerts, alert_deliveries, alert_messages, alert_groups and the
 * functions of sql/003, sql/004 and sql/009). The consuming thread plans its
 * alerts here, a prefetch's worth in one statement (a 'pending' delivery
 * per destination), before acknowledging them; each destination then takes
 * its deliveries from here in messages, claiming a message ('sending')
 * before its request and recording the outcome after.
 * That is what keeps a crash from losing an alert or sending one twice.
 *
 * A ledger is one PostgreSQL connection: use it from one thread at a time.
 */
#ifndef SLUICE_LEDGER_H
#define SLUICE_LEDGER_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "buf.h"
#include "util.h"

typedef struct ledger ledger;

/* Connects; NULL with err (free with ledger_close(), accepts NULL). */
ledger *ledger_open(const char *dsn, char *err, size_t errlen);
void ledger_close(ledger *l);

/* A transaction around ledger_plan_batch(). 0, or -1 with err. */
int ledger_begin(ledger *l, char *err, size_t errlen);
int ledger_commit(ledger *l, char *err, size_t errlen);

/* Alerts gathered for ledger_plan_batch(): the parameters of its one
 * statement, built as they come, and after it what became of each alert.
 * A zeroed ledger_plans is empty and ready; free with ledger_plans_free(). */
typedef struct ledger_plans {
    buf arrays[8]; /* array literals, one element per alert */
    strlist ids;   /* the alerts' ids, in the order added */
    int *fresh;    /* after ledger_plan_batch(): per alert, its new deliveries
                      (0: a copy of an alert already planned) */
    size_t fresh_cap;
} ledger_plans;

/* Adds alert a (its strings are copied), to be planned with a pending
 * delivery for each destination of `channels` (comma-separated names);
 * `grouped` has a '1' or '0' per destination: in group `group_key`, or
 * alone. Returns 0, or -1 if memory ran out (the plans are then cleared). */
int ledger_plans_add(ledger_plans *p, const alert *a, const char *channels, const char *grouped,
                     const char *group_key);
/* Empties p for the next batch. */
void ledger_plans_clear(ledger_plans *p);
void ledger_plans_free(ledger_plans *p);

/* Records the alerts of p that are new and their pending deliveries, in
 * one statement (sql/009 sluice_plan_alerts), in the caller's transaction,
 * and fills p->fresh. Returns 0 or -1 with err. p keeps its alerts until
 * ledger_plans_clear(). */
int ledger_plan_batch(ledger *l, ledger_plans *p, char *err, size_t errlen);

/* Destinations with deliveries not yet final, into *out (free with
 * strlist_free): the work a notifier that stopped left behind. */
int ledger_open_channels(ledger *l, strlist *out, char *err, size_t errlen);

/* Takes the destination's lease (a session advisory lock): only its holder
 * sends to the destination, so two notifiers never pace one chat apart or
 * send one message twice. *got is 1 if taken (held until the connection
 * closes), 0 if another session holds it. */
int ledger_lease(ledger *l, const char *channel, int *got, char *err, size_t errlen);

/* Run once the lease is taken: what was 'sending' there belonged to a
 * notifier that is gone mid-request. With resend (the receiver
 * deduplicates) it is sent again; else it is recorded as failed
 * ("interrupted"), not sent again. *interrupted gets how many alerts. */
int ledger_recover(ledger *l, const char *channel, int resend, long *interrupted, char *err,
                   size_t errlen);

/* The destination's message left 'retrying' (0 if none) in *id. */
int ledger_retrying_message(ledger *l, const char *channel, int64_t *id, char *err, size_t errlen);

/* The group to send next on a grouped `channel`: the due ones first, of
 * those the most severe, then the oldest. A group is due group_wait_ms
 * after its oldest pending alert and group_interval_ms after its last
 * message. *found is 0 if nothing is pending; else key gets the group and
 * *due_in_ms the wait (<= 0: due now). */
int ledger_next_group(ledger *l, const char *channel, long group_wait_ms, long group_interval_ms,
                      char *key, size_t keylen, long *due_in_ms, int *found, char *err,
                      size_t errlen);

/* For a destination that takes alerts one by one: up to max of its
 * pending alerts, the most severe, then the oldest, become one message,
 * now 'sending' (sent one by one, recorded once); *id gets it, or 0 if
 * nothing is pending. */
int ledger_claim_many(ledger *l, const char *channel, long max, int64_t *id, char *err,
                      size_t errlen);

/* Puts up to max pending alerts of the group into a new message, now
 * 'sending'; *id gets it, or 0 if none was pending. remember: the group is
 * paced by group_interval. */
int ledger_claim_group(ledger *l, const char *channel, const char *key, long max, int remember,
                       int64_t *id, char *err, size_t errlen);

/* Another attempt at a 'retrying' message: 'sending' again. */
int ledger_reclaim(ledger *l, int64_t id, char *err, size_t errlen);

/* A message as the destination sends it. Alerts point into memory owned by
 * the message_info; free with message_info_free() (accepts a zeroed one). */
typedef struct message_info {
    int64_t id;
    char group_key[256];
    long alerts;     /* how many alerts it carries */
    long parts_sent; /* parts of its text already sent by an earlier attempt */
    double span_s;   /* from the first alert raised to the last */
    size_t nshown;   /* alerts loaded in full (most severe, then oldest first) */
    alert *shown;
    PGresult *rows;
} message_info;

/* Loads message id with up to `show` of its alerts in full, from the
 * `offset`-th (paging through a large message). A page past the end (or a
 * message whose alerts are gone) has nshown 0 and alerts 0. */
int ledger_message(ledger *l, int64_t id, long show, long offset, message_info *out, char *err,
                   size_t errlen);
void message_info_free(message_info *m);

/* Records an attempt's outcome for the message and each alert in it:
 * state "sending" (progress: parts_sent), "sent", "retrying" or "failed";
 * error may be NULL. */
int ledger_record_message(ledger *l, int64_t id, const char *state, const char *error, long parts,
                          long parts_sent, char *err, size_t errlen);

/* Deliveries of the destination not yet final, in *n. */
int ledger_backlog(ledger *l, const char *channel, long long *n, char *err, size_t errlen);

#endif
