/*
 * http_metrics: see http_metrics.h.
 */
#include "http_metrics.h"

#include <inttypes.h>

static const unsigned statuses[HTTP_METRICS_STATUSES] = {202, 400, 401, 404, 405,
                                                         413, 415, 429, 500, 503};
static const double buckets[HTTP_METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10};

void http_count_status(http_counters *c, unsigned status)
{
    for (size_t i = 0; i < HTTP_METRICS_STATUSES; i++) {
        if (statuses[i] == status) {
            atomic_fetch_add_explicit(&c->by_status[i], 1, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_add_explicit(&c->other_status, 1, memory_order_relaxed);
}

void http_count_accepted(http_counters *c, uint64_t events, int64_t confirm_us)
{
    if (confirm_us < 0)
        confirm_us = 0;
    double secs = (double)confirm_us / 1e6;
    for (size_t b = 0; b < HTTP_METRICS_BUCKETS; b++) {
        if (secs <= buckets[b]) {
            atomic_fetch_add_explicit(&c->confirm_hist[b], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&c->confirm_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->confirm_sum_us, (uint64_t)confirm_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->events_accepted, events, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void http_metrics_render(FILE *out, const http_metrics_row *rows, size_t n)
{
    fputs("# HELP sluice_http_requests_total Requests to the HTTP door by source and status.\n"
          "# TYPE sluice_http_requests_total counter\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const http_counters *c = rows[i].counters;
        for (size_t k = 0; k < HTTP_METRICS_STATUSES; k++)
            fprintf(out, "sluice_http_requests_total{source=\"%s\",code=\"%u\"} %" PRIu64 "\n",
                    rows[i].source, statuses[k], get(&c->by_status[k]));
        fprintf(out, "sluice_http_requests_total{source=\"%s\",code=\"other\"} %" PRIu64 "\n",
                rows[i].source, get(&c->other_status));
    }
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"sluice_http_events_accepted_total", "Events of requests answered 202.",
         offsetof(http_counters, events_accepted)},
        {"sluice_http_received_bytes_total", "Bytes of request bodies as sent.",
         offsetof(http_counters, bytes_received)},
        {"sluice_http_auth_failures_total", "Requests refused 401.",
         offsetof(http_counters, auth_failures)},
    };
    for (size_t k = 0; k < sizeof counters / sizeof *counters; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
                counters[k].name);
        for (size_t i = 0; i < n; i++) {
            const _Atomic uint64_t *v =
                (const _Atomic uint64_t *)((const char *)rows[i].counters + counters[k].offset);
            fprintf(out, "%s{source=\"%s\"} %" PRIu64 "\n", counters[k].name, rows[i].source,
                    get(v));
        }
    }
    fputs("# HELP sluice_http_requests_waiting Requests waiting for their confirms now.\n"
          "# TYPE sluice_http_requests_waiting gauge\n",
          out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "sluice_http_requests_waiting{source=\"%s\"} %zu\n", rows[i].source,
                rows[i].waiting);
    fputs("# HELP sluice_http_confirm_seconds From a request's admission to the broker's confirm "
          "of its last event, for requests answered 202.\n"
          "# TYPE sluice_http_confirm_seconds histogram\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const http_counters *c = rows[i].counters;
        const char *s = rows[i].source;
        uint64_t cumulative = 0;
        for (size_t b = 0; b < HTTP_METRICS_BUCKETS; b++) {
            cumulative += get(&c->confirm_hist[b]);
            fprintf(out,
                    "sluice_http_confirm_seconds_bucket{source=\"%s\",le=\"%g\"} %" PRIu64 "\n", s,
                    buckets[b], cumulative);
        }
        uint64_t count = get(&c->confirm_count);
        fprintf(out,
                "sluice_http_confirm_seconds_bucket{source=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
                "sluice_http_confirm_seconds_sum{source=\"%s\"} %.6f\n"
                "sluice_http_confirm_seconds_count{source=\"%s\"} %" PRIu64 "\n",
                s, count, s, (double)get(&c->confirm_sum_us) / 1e6, s, count);
    }
}
