/* Unit tests for the failure counts of messages (workers/retries.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retries.h"

static void test_retries_count_and_forget(void **state)
{
    (void)state;
    retries *r = retries_new(4);
    assert_int_equal(retries_bump(r, "a"), 1);
    assert_int_equal(retries_bump(r, "a"), 2);
    assert_int_equal(retries_bump(r, "b"), 1);
    assert_int_equal(retries_bump(r, "a"), 3);
    retries_forget(r, "a");
    assert_int_equal(retries_bump(r, "a"), 1);
    /* Far more ids than capacity: the table starts afresh instead of
     * growing, and counts stay bounded. */
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        assert_true(retries_bump(r, id) <= 2);
    }
    retries_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_count_and_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
