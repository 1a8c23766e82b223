/*
 * metrics: the worker pool's counters, in memory shared between the
 * supervisor and its children (mapped before fork), so one /metrics
 * endpoint reports the whole pool and survives a child's crash.
 *
 * Children only add to their own slot (relaxed atomics: counters need no
 * ordering); the supervisor reads every slot to render Prometheus text.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

typedef enum {
    COUNT_CONSUMED,          /* deliveries taken from the queue */
    COUNT_STORED,            /* new rows in events */
    COUNT_DUPLICATES,        /* already stored: redeliveries, republished copies */
    COUNT_REJECTED,          /* recorded in ingest_errors */
    COUNT_DEAD_LETTERED,     /* published to sluice.dead after bounded retries */
    COUNT_ALERTS_RAISED,     /* alerts a rule raised on the source's events and published */
    COUNT_ALERTS_SUPPRESSED, /* rule matches inside their dedup window: no alert */
    COUNT_KINDS
} count_kind;

typedef struct metrics metrics;

/* Maps shared counters for `children` worker processes over `sources`
 * (copied). Returns NULL on failure. Free with metrics_free() in the
 * process that created it. */
metrics *metrics_create(size_t children, const strlist *sources);
void metrics_free(metrics *m);

/* Index of a source name in the metrics' list, or -1. */
int metrics_source_index(const metrics *m, const char *source);

/* Called by child `child` (0-based). */
void metrics_count(metrics *m, size_t child, int source, count_kind kind, uint64_t n);
void metrics_observe_batch(metrics *m, size_t child, size_t rows, int64_t commit_us);
void metrics_set_connected(metrics *m, size_t child, int amqp_up, int pg_up);
/* Whether child `child` consumes `source` now (its queue exists and its
 * consumer was not cancelled); cleared for all sources when AMQP is down. */
void metrics_set_consuming(metrics *m, size_t child, int source, int on);

/* Called by the supervisor. */
void metrics_set_pid(metrics *m, size_t child, int pid); /* 0 = not running */
void metrics_count_restart(metrics *m, size_t child);

/* 1 while every child runs with both its AMQP and PostgreSQL connections
 * up and every source is consumed by at least one of them, else 0; `why`
 * (may be NULL) gets a short reason when not ready. */
int metrics_ready(const metrics *m, char *why, size_t cap);

/* Writes the Prometheus text exposition of every counter to out. */
void metrics_render(const metrics *m, FILE *out);

/* The sum of one counter over all children and sources (for logs, tests). */
uint64_t metrics_total(const metrics *m, count_kind kind);

#endif
