/*
 * worker: one worker process's loop. Consumes its source queues, stores
 * the events in batches (warehouse.h), acknowledges each batch only after
 * its commit, retries what failed and dead-letters it after a bound. Any
 * failure of the broker or the database drops both connections (the
 * broker redelivers whatever was not acknowledged, and the warehouse
 * absorbs the copies) and reconnects with backoff.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stddef.h>

#include "metrics.h"
#include "rules.h"
#include "util.h"

typedef struct worker_config {
    const strlist *amqp_urls;
    const char *pg_dsn;
    long prefetch;
    long batch_size;
    long batch_max_bytes; /* a batch is committed once it holds this many bytes */
    long flush_interval_ms;
    long heartbeat;
    long max_message_bytes;
    long max_retries;
    long stats_interval_ms;
    long idle_exit_ms;
    const rule_set *rules;  /* NULL: no event detection (nothing parsed) */
    const char *rules_path; /* the file `rules` came from, re-read on SIGHUP; NULL: none */
} worker_config;

/*
 * Runs until SIGTERM/SIGINT (commits and acknowledges the batch in hand,
 * hands back the rest) or, with idle_exit_ms, until nothing arrived for
 * that long. `sources` are the queues to consume (sluice.q.<source>);
 * counters go to slot `child` of `m` (which may be NULL). Returns the exit
 * code: 0 after a clean stop, 1 if it could not start.
 *
 * On SIGHUP (reload_requested, util.h) it re-reads rules_path between
 * batches: the batch in hand is stored, alerted and acknowledged under the
 * rules it was read with, the next one under the new rules. A file that
 * does not load is refused with the line sluice-worker prints at start and
 * the rules in force stay.
 */
int worker_run(const worker_config *cfg, const strlist *sources, metrics *m, size_t child);

#endif
