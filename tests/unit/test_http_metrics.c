/* Unit tests for the HTTP door's counters and their Prometheus text
 * (producer/http_metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_metrics.h"

static char *render(const http_metrics_row *rows, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    http_metrics_render(out, rows, n);
    fclose(out);
    return text;
}

/* Not inlined: gcc 12 at -O2 then takes the buffer open_memstream() filled
 * through render()'s local for that local itself and warns of a dangling
 * pointer (-Wdangling-pointer), wrongly. */
__attribute__((noinline)) static size_t occurrences(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_render(void **state)
{
    (void)state;
    static http_counters a, b; /* zeroed: ready */
    http_count_status(&a, 202);
    http_count_status(&a, 202);
    http_count_status(&a, 418);
    http_count_status(&b, 503);
    http_count_accepted(&a, 3, 4000);     /* 4 ms: the 0.005 s bucket */
    http_count_accepted(&a, 1, 2000000);  /* 2 s: the 2.5 s bucket */
    http_count_accepted(&a, 1, 60000000); /* 60 s: +Inf only */
    atomic_fetch_add(&a.auth_failures, 4);
    atomic_fetch_add(&b.bytes_received, 1234);
    http_metrics_row rows[] = {{"shop", &a, 5}, {"hook", &b, 0}};
    char *text = render(rows, 2);
    static const char *const want[] = {
        "sluice_http_requests_total{source=\"shop\",code=\"202\"} 2\n",
        "sluice_http_requests_total{source=\"shop\",code=\"other\"} 1\n",
        "sluice_http_requests_total{source=\"shop\",code=\"503\"} 0\n",
        "sluice_http_requests_total{source=\"hook\",code=\"503\"} 1\n",
        "sluice_http_events_accepted_total{source=\"shop\"} 5\n",
        "sluice_http_auth_failures_total{source=\"shop\"} 4\n",
        "sluice_http_received_bytes_total{source=\"hook\"} 1234\n",
        "sluice_http_requests_waiting{source=\"shop\"} 5\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"0.0025\"} 0\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"0.005\"} 1\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"1\"} 1\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"2.5\"} 2\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"10\"} 2\n",
        "sluice_http_confirm_seconds_bucket{source=\"shop\",le=\"+Inf\"} 3\n",
        "sluice_http_confirm_seconds_sum{source=\"shop\"} 62.004000\n",
        "sluice_http_confirm_seconds_count{source=\"shop\"} 3\n",
        "sluice_http_confirm_seconds_count{source=\"hook\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!strstr(text, want[i]))
            fail_msg("no line %s in:\n%s", want[i], text);
    }
    /* Each family's HELP and TYPE once, whatever the number of sources. */
    assert_int_equal(occurrences(text, "# TYPE sluice_http_requests_total counter\n"), 1);
    assert_int_equal(occurrences(text, "# TYPE sluice_http_confirm_seconds histogram\n"), 1);
    assert_int_equal(occurrences(text, "# HELP "), 6);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
