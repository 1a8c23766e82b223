/*
 * metrics: see metrics.h. Layout of the shared mapping: one child_slot per
 * child, then children x sources counter rows.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "event.h"

static const uint64_t batch_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
static const int64_t commit_bounds_us[] = {1000,   2500,   5000,   10000,   25000,  50000,
                                           100000, 250000, 500000, 1000000, 2500000};
#define BATCH_BUCKETS (sizeof batch_bounds / sizeof *batch_bounds)
#define COMMIT_BUCKETS (sizeof commit_bounds_us / sizeof *commit_bounds_us)

typedef struct child_slot {
    atomic_int pid;
    atomic_int amqp_up, pg_up;
    atomic_uint_fast64_t restarts;
    atomic_uint_fast64_t batch_buckets[BATCH_BUCKETS + 1]; /* last: +Inf */
    atomic_uint_fast64_t batch_count, batch_rows;
    atomic_uint_fast64_t commit_buckets[COMMIT_BUCKETS + 1];
    atomic_uint_fast64_t commit_us_sum;
} child_slot;

typedef struct source_row {
    atomic_uint_fast64_t counts[COUNT_KINDS];
    atomic_int consuming; /* this child consumes this source's queue now */
} source_row;

struct metrics {
    size_t nchildren;
    strlist sources;
    child_slot *slots; /* shared */
    source_row *rows;  /* shared: [child * nsources + source] */
    size_t map_len;
};

static const char *const count_names[COUNT_KINDS] = {
    "sluice_events_consumed_total",      "sluice_events_stored_total",
    "sluice_events_duplicate_total",     "sluice_events_rejected_total",
    "sluice_events_dead_lettered_total", "sluice_alerts_raised_total",
    "sluice_alerts_suppressed_total"};
static const char *const count_help[COUNT_KINDS] = {
    "Deliveries taken from the source queues.",
    "Events newly stored in the events table.",
    "Events already stored (redeliveries, republished copies), absorbed by msg_id.",
    "Events recorded in ingest_errors (invalid or refused by the database).",
    "Messages published to sluice.dead after bounded retries.",
    "Alerts raised by rules on the source's events and published to sluice.alerts (an event "
    "redelivered before its alert was delivered publishes it again).",
    "Rule matches on the source's events not alerted: inside their dedup window."};

metrics *metrics_create(size_t children, const strlist *sources)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nchildren = children;
    for (size_t i = 0; i < sources->count; i++) {
        char **grown = realloc(m->sources.items, (i + 1) * sizeof *grown);
        if (!grown)
            goto fail;
        m->sources.items = grown;
        if (!(m->sources.items[i] = strdup(sources->items[i])))
            goto fail;
        m->sources.count++;
    }
    size_t slots_len = children * sizeof(child_slot);
    m->map_len = slots_len + children * sources->count * sizeof(source_row);
    void *map = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        goto fail;
    m->slots = map; /* anonymous mappings start zeroed: all counters 0 */
    m->rows = (source_row *)(void *)((char *)map + slots_len);
    return m;
fail:
    metrics_free(m);
    return NULL;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    if (m->slots)
        munmap(m->slots, m->map_len);
    strlist_free(&m->sources);
    free(m);
}

int metrics_source_index(const metrics *m, const char *source)
{
    for (size_t i = 0; i < m->sources.count; i++) {
        if (strcmp(m->sources.items[i], source) == 0)
            return (int)i;
    }
    return -1;
}

void metrics_count(metrics *m, size_t child, int source, count_kind kind, uint64_t n)
{
    if (!m || source < 0 || child >= m->nchildren)
        return;
    source_row *row = &m->rows[child * m->sources.count + (size_t)source];
    atomic_fetch_add_explicit(&row->counts[kind], n, memory_order_relaxed);
}

void metrics_observe_batch(metrics *m, size_t child, size_t rows, int64_t commit_us)
{
    if (!m || child >= m->nchildren)
        return;
    child_slot *s = &m->slots[child];
    size_t b = 0;
    while (b < BATCH_BUCKETS && rows > batch_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->batch_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->batch_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->batch_rows, rows, memory_order_relaxed);
    size_t c = 0;
    while (c < COMMIT_BUCKETS && commit_us > commit_bounds_us[c])
        c++;
    atomic_fetch_add_explicit(&s->commit_buckets[c], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->commit_us_sum, (uint64_t)commit_us, memory_order_relaxed);
}

void metrics_set_connected(metrics *m, size_t child, int amqp_up, int pg_up)
{
    if (!m || child >= m->nchildren)
        return;
    atomic_store(&m->slots[child].amqp_up, amqp_up);
    atomic_store(&m->slots[child].pg_up, pg_up);
    for (size_t s = 0; !amqp_up && s < m->sources.count; s++)
        atomic_store(&m->rows[child * m->sources.count + s].consuming, 0);
}

void metrics_set_consuming(metrics *m, size_t child, int source, int on)
{
    if (!m || child >= m->nchildren || source < 0 || (size_t)source >= m->sources.count)
        return;
    atomic_store(&m->rows[child * m->sources.count + (size_t)source].consuming, on);
}

/* Running children that consume source s now. */
static size_t consumers_of(const metrics *m, size_t s)
{
    size_t n = 0;
    for (size_t c = 0; c < m->nchildren; c++)
        n += atomic_load(&m->slots[c].pid) != 0 &&
             atomic_load(&m->rows[c * m->sources.count + s].consuming) != 0;
    return n;
}

void metrics_set_pid(metrics *m, size_t child, int pid)
{
    if (!m || child >= m->nchildren)
        return;
    atomic_store(&m->slots[child].pid, pid);
    if (pid == 0)
        metrics_set_connected(m, child, 0, 0);
}

void metrics_count_restart(metrics *m, size_t child)
{
    if (m && child < m->nchildren)
        atomic_fetch_add(&m->slots[child].restarts, 1);
}

int metrics_ready(const metrics *m, char *why, size_t cap)
{
    for (size_t i = 0; i < m->nchildren; i++) {
        child_slot *s = &m->slots[i];
        const char *problem = NULL;
        if (atomic_load(&s->pid) == 0)
            problem = "not running";
        else if (!atomic_load(&s->amqp_up))
            problem = "RabbitMQ not connected";
        else if (!atomic_load(&s->pg_up))
            problem = "PostgreSQL not connected";
        if (problem) {
            if (why)
                snprintf(why, cap, "worker %zu: %s", i, problem);
            return 0;
        }
    }
    for (size_t s = 0; s < m->sources.count; s++) {
        if (consumers_of(m, s) == 0) {
            if (why)
                snprintf(why, cap,
                         "source %s: not consumed (queue " SLUICE_QUEUE_PREFIX
                         "%s missing or its consumer cancelled)",
                         m->sources.items[s], m->sources.items[s]);
            return 0;
        }
    }
    return 1;
}

uint64_t metrics_total(const metrics *m, count_kind kind)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->nchildren * m->sources.count; i++)
        total += atomic_load_explicit(&m->rows[i].counts[kind], memory_order_relaxed);
    return total;
}

static void render_histogram(FILE *out, const char *name, const char *help, const char *worker,
                             const atomic_uint_fast64_t *buckets, size_t nbounds,
                             const uint64_t *ubounds, const int64_t *us_bounds, double sum,
                             uint64_t count, int first)
{
    if (first)
        fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= nbounds; b++) {
        cumulative += atomic_load_explicit(&buckets[b], memory_order_relaxed);
        if (b == nbounds)
            fprintf(out, "%s_bucket{worker=\"%s\",le=\"+Inf\"} %llu\n", name, worker,
                    (unsigned long long)cumulative);
        else if (ubounds)
            fprintf(out, "%s_bucket{worker=\"%s\",le=\"%llu\"} %llu\n", name, worker,
                    (unsigned long long)ubounds[b], (unsigned long long)cumulative);
        else
            fprintf(out, "%s_bucket{worker=\"%s\",le=\"%g\"} %llu\n", name, worker,
                    (double)us_bounds[b] / 1e6, (unsigned long long)cumulative);
    }
    fprintf(out, "%s_sum{worker=\"%s\"} %g\n%s_count{worker=\"%s\"} %llu\n", name, worker, sum,
            name, worker, (unsigned long long)count);
}

void metrics_render(const metrics *m, FILE *out)
{
    size_t ns = m->sources.count;
    for (int k = 0; k < COUNT_KINDS; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", count_names[k], count_help[k],
                count_names[k]);
        for (size_t s = 0; s < ns; s++) {
            uint64_t total = 0;
            for (size_t c = 0; c < m->nchildren; c++)
                total += atomic_load_explicit(&m->rows[c * ns + s].counts[k], memory_order_relaxed);
            fprintf(out, "%s{source=\"%s\"} %llu\n", count_names[k], m->sources.items[s],
                    (unsigned long long)total);
        }
    }
    fprintf(out, "# HELP sluice_source_consumers Worker processes consuming the source's queue "
                 "now (0: missing queue or cancelled consumer).\n"
                 "# TYPE sluice_source_consumers gauge\n");
    for (size_t s = 0; s < ns; s++)
        fprintf(out, "sluice_source_consumers{source=\"%s\"} %zu\n", m->sources.items[s],
                consumers_of(m, s));
    fprintf(out, "# HELP sluice_worker_up Whether the worker process runs with both connections "
                 "up.\n# TYPE sluice_worker_up gauge\n");
    for (size_t c = 0; c < m->nchildren; c++) {
        const child_slot *s = &m->slots[c];
        int up = atomic_load(&s->pid) && atomic_load(&s->amqp_up) && atomic_load(&s->pg_up);
        fprintf(out, "sluice_worker_up{worker=\"%zu\"} %d\n", c, up);
    }
    fprintf(out, "# HELP sluice_worker_restarts_total Times the supervisor restarted the "
                 "worker.\n# TYPE sluice_worker_restarts_total counter\n");
    for (size_t c = 0; c < m->nchildren; c++)
        fprintf(out, "sluice_worker_restarts_total{worker=\"%zu\"} %llu\n", c,
                (unsigned long long)atomic_load(&m->slots[c].restarts));
    for (size_t c = 0; c < m->nchildren; c++) {
        child_slot *s = &m->slots[c];
        char worker[24];
        snprintf(worker, sizeof worker, "%zu", c);
        render_histogram(out, "sluice_batch_rows", "Events per committed batch.", worker,
                         s->batch_buckets, BATCH_BUCKETS, batch_bounds, NULL,
                         (double)atomic_load(&s->batch_rows), atomic_load(&s->batch_count), c == 0);
    }
    for (size_t c = 0; c < m->nchildren; c++) {
        child_slot *s = &m->slots[c];
        char worker[24];
        snprintf(worker, sizeof worker, "%zu", c);
        render_histogram(
            out, "sluice_commit_seconds", "Time to store and commit one batch in PostgreSQL.",
            worker, s->commit_buckets, COMMIT_BUCKETS, NULL, commit_bounds_us,
            (double)atomic_load(&s->commit_us_sum) / 1e6, atomic_load(&s->batch_count), c == 0);
    }
}
