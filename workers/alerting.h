/*
 * alerting: the worker's event detection step. After a batch is committed
 * (and before it is acknowledged), evaluates the rules (rules.h) on each
 * valid event of the batch, records each alert in PostgreSQL through
 * sluice_raise_alert() (sql/003), which enforces the dedup window in the
 * database, so it holds across worker processes and restarts, and
 * publishes it with publisher confirms to sluice.alerts with routing key
 * alert.<severity>.<rule>.
 *
 * An alert's id is "<rule>:<msg_id>", so a redelivered event raises the
 * same alert: it is recorded once, and published again only while its
 * recorded state is still 'raised' (the notifier absorbs such copies).
 * It keeps its own PostgreSQL connection and AMQP connection (in confirm
 * mode), opened on first use and dropped after any failure.
 */
#ifndef SLUICE_ALERTING_H
#define SLUICE_ALERTING_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rules.h"
#include "util.h"

typedef struct alerting alerting;

typedef struct alerting_stats {
    uint64_t raised;     /* alerts published (a redelivered event's again) */
    uint64_t suppressed; /* matches inside their dedup window */
} alerting_stats;

/* Borrows rules and urls (both must outlive it). Free with
 * alerting_free(). Returns NULL on allocation failure. */
alerting *alerting_new(const rule_set *rules, const strlist *amqp_urls, const char *pg_dsn,
                       int heartbeat_s);
void alerting_free(alerting *a);

/* Uses `rules` (borrowed; must outlive it or the next call) from the next
 * batch on: how the worker applies a rules file re-read on SIGHUP. */
void alerting_set_rules(alerting *a, const rule_set *rules);

/* Told about each alert raised (suppressed = 0) or suppressed by its dedup
 * window (suppressed = 1), with the delivery's source_index (batch.h). */
typedef void (*alerting_count_fn)(void *arg, int source_index, int suppressed);
void alerting_on_count(alerting *a, alerting_count_fn fn, void *arg);

/*
 * Evaluates the rules on every stored or duplicate event of the committed
 * batch `b`, records and publishes the alerts, and waits for the broker's
 * confirms. Returns 0 once every alert is recorded and confirmed; -1 with
 * err otherwise (the caller must not acknowledge the batch: the redelivered
 * events raise the same alerts again).
 */
int alerting_process(alerting *a, const batch *b, char *err, size_t errlen);

const alerting_stats *alerting_get_stats(const alerting *a);

#endif
