/*
 * alerting: the worker's event detection step, in three parts around the
 * batch's transaction (warehouse.h):
 *
 *   1. alerting_evaluate(), before the batch is stored: evaluates the rules
 *      (rules.h) on each valid event of a watched source and keeps the
 *      alerts they raise;
 *   2. alerting_record(), inside the batch's transaction on the warehouse's
 *      connection, once its events are stored: records the alerts of the
 *      events stored now or before in one statement, sluice_raise_alerts()
 *      (sql/008), which enforces each dedup window in the database, so it
 *      holds across worker processes and restarts;
 *   3. alerting_publish(), after the commit and before the ack: publishes
 *      the alerts recorded as 'raised' with publisher confirms to
 *      sluice.alerts, routing key alert.<severity>.<rule>.
 *
 * An alert's id is "<rule>:<msg_id>", so a redelivered event raises the
 * same alert: it is recorded once, and published again only while its
 * recorded state is still 'raised' (the notifier absorbs such copies).
 * That is what makes an alert committed but not yet published safe: if the
 * worker dies before the confirms, the batch was not acknowledged, its
 * events come back as duplicates, are evaluated again, and their alerts,
 * still 'raised', are published then.
 *
 * It keeps its own AMQP connection (in confirm mode), opened on first use
 * and dropped after any failure; it has no PostgreSQL connection of its own.
 */
#ifndef SLUICE_ALERTING_H
#define SLUICE_ALERTING_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "prefilter.h"
#include "rules.h"
#include "util.h"

typedef struct alerting alerting;

typedef struct alerting_stats {
    uint64_t raised;     /* alerts published (a redelivered event's again) */
    uint64_t suppressed; /* matches inside their dedup window */
    uint64_t parsed;     /* events parsed for the rules */
    uint64_t skipped;    /* valid events of watched sources no rule could fire on */
} alerting_stats;

/* Borrows rules and urls (both must outlive it). Free with
 * alerting_free(). Returns NULL on allocation failure. */
alerting *alerting_new(const rule_set *rules, const strlist *amqp_urls, int heartbeat_s);
void alerting_free(alerting *a);

/* Uses `rules` (borrowed; must outlive it or the next call) from the next
 * batch on: how the worker applies a rules file re-read on SIGHUP. */
void alerting_set_rules(alerting *a, const rule_set *rules);

/* Uses `pf` (borrowed, NULL: none; must outlive it or the next call) from
 * the next batch on to skip parsing events no rule can fire on. It must be
 * built from the same text as the rules in force (prefilter.h). */
void alerting_set_prefilter(alerting *a, const prefilter *pf);

/* Told about each alert raised (suppressed = 0) or suppressed by its dedup
 * window (suppressed = 1), with the delivery's source_index (batch.h). */
typedef void (*alerting_count_fn)(void *arg, int source_index, int suppressed);
void alerting_on_count(alerting *a, alerting_count_fn fn, void *arg);

/*
 * Evaluates the rules on every valid event of `b` (verdict EVENT_OK; parsed
 * only if its source is watched and the prefilter says a rule may fire) and
 * keeps the alerts they raise for alerting_record(), replacing those of
 * the last batch. Returns the number of alerts kept, or -1 with err (out
 * of memory).
 */
int alerting_evaluate(alerting *a, const batch *b, char *err, size_t errlen);

/*
 * Records the kept alerts whose event's outcome is OUTCOME_STORED or
 * OUTCOME_DUPLICATE, in one statement on `db`, which must be inside the
 * batch's open transaction. Returns 0, or -1 with err (the caller must
 * roll the transaction back: nothing of the batch is committed).
 */
int alerting_record(alerting *a, PGconn *db, const batch *b, char *err, size_t errlen);

/*
 * After the commit: publishes the recorded alerts whose state is 'raised'
 * and waits for the broker's confirms. Returns 0 once every one is
 * confirmed; -1 with err otherwise (the caller must not acknowledge the
 * batch: its redelivered events raise the same alerts again). Forgets the
 * kept alerts either way.
 */
int alerting_publish(alerting *a, char *err, size_t errlen);

const alerting_stats *alerting_get_stats(const alerting *a);

#endif
