/* Unit tests for the growable byte buffer (common/buf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void test_append_keeps_a_nul(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, "c\0d", 3), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "abc\0d", 6); /* and the NUL after */
    assert_true(b.cap > b.len);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_grows_and_clear_keeps_memory(void **state)
{
    (void)state;
    buf b = {0};
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 300; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 300000);
    assert_int_equal(b.data[299999], 'x');
    assert_int_equal(b.data[300000], '\0');
    size_t cap = b.cap;
    char *data = b.data;
    buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "y", 1), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    buf_free(&b);
}

static void test_failure_is_sticky_until_clear(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(buf_append(&b, "ok", 2), 0);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), -1);
    assert_true(b.failed);
    assert_int_equal(buf_append(&b, "more", 4), -1);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ok");
    buf_clear(&b);
    assert_false(b.failed);
    assert_int_equal(buf_append(&b, "again", 5), 0);
    assert_string_equal(b.data, "again");
    buf_free(&b);
    buf_free(&b); /* a freed buf is a zeroed one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_keeps_a_nul),
        cmocka_unit_test(test_grows_and_clear_keeps_memory),
        cmocka_unit_test(test_failure_is_sticky_until_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
