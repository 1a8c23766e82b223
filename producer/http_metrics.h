/*
 * http_metrics: the HTTP door's counters per source (adapter
 * http_server) and their Prometheus text: requests by status code, events
 * accepted, bytes received, refusals of credentials, requests waiting for
 * their confirms, and a histogram of the time from a request's admission
 * to the broker's confirm of its last event.
 *
 * Thread safety: the counting functions may be called from any thread
 * (relaxed atomics: counters need no ordering); rendering reads each
 * counter once.
 */
#ifndef SLUICE_HTTP_METRICS_H
#define SLUICE_HTTP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The statuses counted one by one; any other counts as code="other". */
#define HTTP_METRICS_STATUSES 10
/* The histogram's buckets (upper bounds, seconds), +Inf apart. */
#define HTTP_METRICS_BUCKETS 13

/* One source's counters. A zeroed struct is ready. */
typedef struct http_counters {
    _Atomic uint64_t by_status[HTTP_METRICS_STATUSES], other_status;
    _Atomic uint64_t events_accepted, bytes_received, auth_failures;
    _Atomic uint64_t confirm_hist[HTTP_METRICS_BUCKETS], confirm_count, confirm_sum_us;
} http_counters;

/* Counts an answer with this status. */
void http_count_status(http_counters *c, unsigned status);

/* Counts a request answered 202: its events, and the microseconds from
 * its admission to the confirm of its last event. */
void http_count_accepted(http_counters *c, uint64_t events, int64_t confirm_us);

/* What one source shows: its name, counters, and requests waiting now. */
typedef struct http_metrics_row {
    const char *source;
    const http_counters *counters;
    size_t waiting;
} http_metrics_row;

/* Writes the Prometheus text exposition of the rows' counters to out,
 * each family's HELP and TYPE once, then a line per source. */
void http_metrics_render(FILE *out, const http_metrics_row *rows, size_t n);

#endif
