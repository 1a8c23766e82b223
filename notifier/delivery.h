/*
 * delivery: what the notifier does with the alerts it consumes. Taking an
 * alert (deliver()) only plans it: its route's destinations each are to
 * get a 'pending' delivery in the outbox (ledger.h), in the alert's group;
 * deliverer_plan() records the alerts taken so far in one statement, in
 * the caller's transaction; once that commits, the caller acknowledges the
 * messages and wakes the destinations (deliverer_wake_all()). Each
 * destination is served by its own thread (destination.h), so a slow or
 * blocked one holds back no other. A message that is no alert is
 * dead-lettered with the reason.
 */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "destination.h"
#include "grouping.h"
#include "ledger.h"
#include "routes.h"

typedef struct delivery_config {
    dest_config dest;       /* what every destination reads */
    long rate_total;        /* Telegram messages per second, across chats */
    size_t max_alert_bytes; /* a larger message is dead-lettered, not decoded */
    grouping group;         /* at start; deliverer_set_grouping() changes it */
} delivery_config;

typedef struct delivery_stats {
    uint64_t alerts, planned, copies, dead_lettered;
} delivery_stats;

typedef struct deliverer deliverer;

/* Borrows cfg, and urls for dead letters. Free with deliverer_free(), which
 * stops and joins every destination first. */
deliverer *deliverer_new(const delivery_config *cfg, const strlist *urls, int heartbeat_s);
void deliverer_free(deliverer *d);

/* Starts a destination for each channel the outbox still has work for
 * (what a notifier that stopped left behind). Returns 0, or -1 with err. */
int deliverer_resume(deliverer *d, ledger *l, char *err, size_t errlen);

typedef enum {
    DELIVERY_DONE,  /* planned (or dead-lettered): acknowledge once committed */
    DELIVERY_ERROR, /* the ledger or the broker failed (err): reconnect */
    DELIVERY_HELD   /* not an alert, and it could not be dead-lettered (err): not
                       acknowledged; reconnect, backing off while this lasts */
} delivery_result;

/* Takes one message of sluice.q.notifier (routing key rk) and routes it by
 * r, for the next deliverer_plan(); a message that is no alert, or larger
 * than cfg->max_alert_bytes, is dead-lettered at once with the reason. */
delivery_result deliver(deliverer *d, const routes *r, const char *rk, const char *body, size_t len,
                        char *err, size_t errlen);

/* Plans the alerts taken since the last call, in one statement in l's
 * transaction (the caller's to commit). Returns 0, or -1 with err (the
 * ledger failed: reconnect; the alerts taken are forgotten). */
int deliverer_plan(deliverer *d, ledger *l, char *err, size_t errlen);

/* Forgets the alerts taken and not planned (after a failure). */
void deliverer_forget(deliverer *d);

/* After the commit: the destinations look for their new alerts. */
void deliverer_wake_all(deliverer *d);

/* A reload's new grouping; messages already claimed keep theirs. */
void deliverer_set_grouping(deliverer *d, const grouping *g);

/* Asks every destination to stop: a message under way is finished, one
 * waiting is handed back ('retrying'). deliverer_free() joins them. */
void deliverer_stop(deliverer *d);

/* Writes the counters in Prometheus' text format. Thread-safe. */
void deliverer_render_metrics(deliverer *d, FILE *out);

const delivery_stats *deliverer_stats(const deliverer *d);

#endif
