/* Unit tests for common/outage.c: one warning when a server is lost, one
 * info line when it is back, debug lines between. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "outage.h"

static void test_fail_and_recover(void **state)
{
    (void)state;
    outage o = {0};
    unsigned attempts = 99;
    int64_t lasted = -1;
    /* A success with no outage before it ends none. */
    assert_int_equal(outage_recover(&o, 50, &attempts, &lasted), 0);
    assert_int_equal(attempts, 99);
    assert_int_equal(outage_fail(&o, 1000), 1);
    assert_int_equal(outage_fail(&o, 2000), 0);
    assert_int_equal(outage_fail(&o, 3000), 0);
    assert_int_equal(outage_recover(&o, 4500, &attempts, &lasted), 1);
    assert_int_equal(attempts, 3);
    assert_int_equal(lasted, 3500);
    /* Over: the next failure starts a new outage, timed from itself. */
    assert_int_equal(outage_recover(&o, 5000, &attempts, &lasted), 0);
    assert_int_equal(outage_fail(&o, 6000), 1);
    assert_int_equal(outage_recover(&o, 6100, &attempts, &lasted), 1);
    assert_int_equal(attempts, 1);
    assert_int_equal(lasted, 100);
}

/* Runs the attempts of two outages with stderr in a file; returns what
 * was logged. */
static char *log_two_outages(log_level level)
{
    char path[] = "/tmp/sluice-test-outage-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    log_init("test", level);
    outage o = {0};
    for (int outage_no = 0; outage_no < 2; outage_no++) {
        for (int i = 0; i < 5; i++)
            outage_log_failure(&o, "not ready, retrying", "session is read-only", 200);
        outage_log_recovery(&o, "connected again");
        outage_log_recovery(&o, "connected again"); /* no outage: nothing */
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    unlink(path);
    return text;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_one_warning_per_outage(void **state)
{
    (void)state;
    char *text = log_two_outages(LOG_INFO);
    assert_int_equal(count(text, "\n"), 4);
    assert_int_equal(count(text, " warn test: not ready, retrying error=\"session is read-only\" "
                                 "retry_in_ms=200\n"),
                     2);
    assert_int_equal(count(text, " info test: connected again attempts=5 outage_s="), 2);
    free(text);

    /* At debug level, every later attempt shows, numbered. */
    text = log_two_outages(LOG_DEBUG);
    assert_int_equal(count(text, "\n"), 12);
    assert_int_equal(count(text, " warn test: not ready, retrying error="), 2);
    assert_int_equal(count(text, " debug test: not ready, retrying attempt="), 8);
    assert_int_equal(count(text, "attempt=5 error=\"session is read-only\""), 2);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_and_recover),
        cmocka_unit_test(test_one_warning_per_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
