/* Unit tests for the token buckets (notifier/ratelimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_token_bucket(void **state)
{
    (void)state;
    token_bucket b;
    bucket_init(&b, 2.0, 1, 0); /* 2 per second, burst 1 */
    assert_int_equal(bucket_wait_us(&b, 0), 0);
    bucket_take(&b, 0);
    int64_t wait = bucket_wait_us(&b, 0);
    assert_true(wait >= 499999 && wait <= 500001);
    assert_true(bucket_wait_us(&b, 250000) > 0);
    assert_int_equal(bucket_wait_us(&b, 500001), 0);
    bucket_take(&b, 500001);
    /* A long pause refills to the burst, no more. */
    assert_int_equal(bucket_wait_us(&b, 10000000), 0);
    bucket_take(&b, 10000000);
    assert_true(bucket_wait_us(&b, 10000000) > 0);

    /* Taking whenever allowed over 10 s gives rate * 10 + burst tokens. */
    token_bucket t;
    bucket_init(&t, 30.0, 30, 0);
    int taken = 0;
    for (int64_t now = 0; now <= 10000000; now += 1000) {
        while (bucket_wait_us(&t, now) == 0) {
            bucket_take(&t, now);
            taken++;
        }
    }
    assert_in_range(taken, 329, 331);

    bucket_map m;
    assert_int_equal(bucket_map_init(&m, 2, 1.0, 1), 0);
    bucket_take(bucket_map_get(&m, "a", 0), 0);
    assert_true(bucket_wait_us(bucket_map_get(&m, "a", 0), 0) > 0);
    assert_int_equal(bucket_wait_us(bucket_map_get(&m, "b", 0), 0), 0); /* its own bucket */
    bucket_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
