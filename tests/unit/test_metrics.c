/* Unit tests for the workers' counters, their Prometheus text and
 * readiness (workers/metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static const char *find_line(const char *text, const char *line)
{
    const char *p = strstr(text, line);
    if (!p)
        fail_msg("missing line '%s' in:\n%s", line, text);
    return p;
}

static void test_metrics_render(void **state)
{
    (void)state;
    strlist sources;
    assert_int_equal(strlist_split("orders,sensors", &sources), 0);
    metrics *m = metrics_create(2, &sources);
    assert_non_null(m);
    metrics_count(m, 0, 0, COUNT_STORED, 5);
    metrics_count(m, 1, 0, COUNT_STORED, 7);
    metrics_count(m, 1, 1, COUNT_REJECTED, 2);
    metrics_observe_batch(m, 0, 300, 2000);   /* 300 rows, 2 ms */
    metrics_observe_batch(m, 0, 1000, 40000); /* 1000 rows, 40 ms */
    metrics_set_pid(m, 0, 100);
    metrics_set_connected(m, 0, 1, 1);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    find_line(text, "# TYPE sluice_events_stored_total counter\n");
    find_line(text, "sluice_events_stored_total{source=\"orders\"} 12\n");
    find_line(text, "sluice_events_stored_total{source=\"sensors\"} 0\n");
    find_line(text, "sluice_events_rejected_total{source=\"sensors\"} 2\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"250\"} 0\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"500\"} 1\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"1000\"} 2\n");
    find_line(text, "sluice_batch_rows_bucket{worker=\"0\",le=\"+Inf\"} 2\n");
    find_line(text, "sluice_batch_rows_sum{worker=\"0\"} 1300\n");
    find_line(text, "sluice_commit_seconds_bucket{worker=\"0\",le=\"0.0025\"} 1\n");
    find_line(text, "sluice_commit_seconds_bucket{worker=\"0\",le=\"0.05\"} 2\n");
    find_line(text, "sluice_worker_up{worker=\"0\"} 1\n");
    find_line(text, "sluice_worker_up{worker=\"1\"} 0\n");
    assert_int_equal(metrics_total(m, COUNT_STORED), 12);

    char why[128];
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not running");
    metrics_set_pid(m, 1, 101);
    metrics_set_connected(m, 1, 1, 0);
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: PostgreSQL not connected");
    metrics_set_connected(m, 1, 1, 1);
    /* Both connected, but a source nobody consumes (its queue missing or
     * its consumer cancelled) is not ready either. */
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    assert_non_null(strstr(why, "not consumed"));
    for (int s = 0; s < (int)sources.count; s++)
        metrics_set_consuming(m, 0, s, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 1);
    metrics_set_consuming(m, 0, 1, 0);
    metrics_set_consuming(m, 1, 1, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 1); /* worker 1 consumes it */
    metrics_set_connected(m, 1, 0, 1);                      /* ... until AMQP drops */
    metrics_set_connected(m, 1, 1, 1);
    assert_int_equal(metrics_ready(m, why, sizeof why), 0);
    char expected[256];
    snprintf(expected, sizeof expected,
             "source %s: not consumed (queue sluice.q.%s missing or its consumer cancelled)",
             sources.items[1], sources.items[1]);
    assert_string_equal(why, expected);
    free(text);
    out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    char line[128];
    snprintf(line, sizeof line, "sluice_source_consumers{source=\"%s\"} 0\n", sources.items[1]);
    find_line(text, line);
    snprintf(line, sizeof line, "sluice_source_consumers{source=\"%s\"} 1\n", sources.items[0]);
    find_line(text, line);
    free(text);
    metrics_free(m);
    strlist_free(&sources);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
