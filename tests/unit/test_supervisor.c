/* Unit tests for the supervisor of worker processes (workers/supervisor.c),
 * with children that really crash. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "metrics.h"
#include "supervisor.h"

/* Children that really crash: the supervisor restarts them until they end
 * cleanly, and counts the restarts. Child 0 is killed by a signal twice,
 * child 1 exits with an error once; runs are counted in shared memory. */
static int *runs;

static int flaky_child(size_t index, void *arg)
{
    (void)arg;
    int run = __atomic_add_fetch(&runs[index], 1, __ATOMIC_SEQ_CST);
    if (index == 0 && run <= 2)
        raise(SIGKILL);
    if (index == 1 && run == 1)
        return 3;
    return 0;
}

static void test_supervisor_restarts_until_clean(void **state)
{
    (void)state;
    runs = mmap(NULL, 2 * sizeof *runs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(runs != MAP_FAILED);
    strlist sources;
    assert_int_equal(strlist_split("orders", &sources), 0);
    metrics *m = metrics_create(2, &sources);
    supervisor_config cfg = {.children = 2,
                             .run = flaky_child,
                             .m = m,
                             .restart_base_ms = 1,
                             .restart_max_ms = 10,
                             .shutdown_timeout_ms = 1000};
    assert_int_equal(supervisor_run(&cfg), 0);
    assert_int_equal(runs[0], 3);
    assert_int_equal(runs[1], 2);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_render(m, out);
    fclose(out);
    assert_non_null(strstr(text, "\nsluice_worker_restarts_total{worker=\"0\"} 2\n"));
    assert_non_null(strstr(text, "\nsluice_worker_restarts_total{worker=\"1\"} 1\n"));
    free(text);
    metrics_free(m);
    strlist_free(&sources);
    munmap(runs, 2 * sizeof *runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supervisor_restarts_until_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
