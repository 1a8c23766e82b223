/* Unit tests for the worker pool's supervisor (workers/supervisor.c):
 * children that really crash are restarted until they end cleanly; every
 * child that fails says so in its own log line before the supervisor's, and
 * a pool of children that end cleanly ends cleanly. Whether a supervisor
 * running as PID 1 starts its workers is tested on the real binary in
 * tests/integration/test_supervisor_parents.sh (it needs a PID namespace). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "metrics.h"
#include "supervisor.h"
#include "util.h"

static int log_fd = -1; /* the temporary log of run_logged */

/* Runs the pool with stderr (the log, inherited by the children) sent to a
 * temporary file; returns supervisor_run's result and the log's text (free
 * with free()). */
static int run_logged(supervisor_config *cfg, char **log_text)
{
    char path[] = "/tmp/sluice-test-supervisor-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    log_fd = fd;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    int rc = supervisor_run(cfg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    fputs(text, stderr); /* visible with --output-on-failure */
    *log_text = text;
    return rc;
}

/* Child 0 ends cleanly; child 1 fails with 3 without logging anything
 * itself, as a body failing on a path that forgot to say why would. */
static int silent_failure(size_t index, void *arg)
{
    (void)arg;
    return index == 1 ? 3 : 0;
}

/* Stops the pool (as SIGTERM would) once the supervisor has logged child
 * 1's failure, or after about 5 s (the test then fails on the log): the
 * wait hook runs between the supervisor's checks on its children. */
static void stop_after_failure(void *arg, long ms)
{
    (void)arg;
    static int calls;
    usleep((useconds_t)ms * 1000);
    char buf[8192] = {0};
    ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
    if ((n > 0 && strstr(buf, "worker failed worker=1")) || ++calls > 100)
        shutdown_requested = 1;
}

static void test_failing_child_says_why(void **state)
{
    (void)state;
    shutdown_requested = 0;
    supervisor_config cfg = {.children = 2,
                             .run = silent_failure,
                             .restart_base_ms = 1000,
                             .restart_max_ms = 1000,
                             .shutdown_timeout_ms = 1000,
                             .wait = stop_after_failure};
    char *text = NULL;
    int rc = run_logged(&cfg, &text);
    shutdown_requested = 0;
    assert_int_equal(rc, 1);
    /* The child's own line, then the supervisor's. */
    const char *own = strstr(text, "worker exiting worker=1 exit=3");
    assert_non_null(own);
    const char *sup = strstr(text, "worker failed worker=1 exit=3");
    assert_non_null(sup);
    assert_true(own < sup);
    /* A clean end is not reported as a failure. */
    assert_null(strstr(text, "worker exiting worker=0"));
    assert_non_null(strstr(text, "worker finished worker=0"));
    free(text);
}

static int clean_child(size_t index, void *arg)
{
    (void)index;
    (void)arg;
    return 0;
}

static void test_clean_children_end_the_pool(void **state)
{
    (void)state;
    supervisor_config cfg = {.children = 3,
                             .run = clean_child,
                             .restart_base_ms = 1,
                             .restart_max_ms = 10,
                             .shutdown_timeout_ms = 1000};
    char *text = NULL;
    assert_int_equal(run_logged(&cfg, &text), 0);
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "worker finished worker=%d", i);
        assert_non_null(strstr(text, want));
    }
    assert_null(strstr(text, "failed"));
    assert_null(strstr(text, "supervisor gone"));
    free(text);
}

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
    log_init("supervisor", LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supervisor_restarts_until_clean),
        cmocka_unit_test(test_failing_child_says_why),
        cmocka_unit_test(test_clean_children_end_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
