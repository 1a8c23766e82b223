/* Unit tests for the growable byte buffer (common/buf.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A whole file, larger than one read, after what the buffer held; a
 * missing file says so through errno and leaves the buffer as it was. */
static void test_append_file(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-test-buf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char bytes[20000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    close(fd);
    buf b = {0};
    buf_append(&b, "head:", 5);
    assert_int_equal(buf_append_file(&b, path), 0);
    assert_int_equal(b.len, 5 + sizeof bytes);
    assert_memory_equal(b.data + 5, bytes, sizeof bytes);
    assert_int_equal(b.data[b.len], '\0');
    unlink(path);
    errno = 0;
    assert_int_equal(buf_append_file(&b, path), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(b.len, 5 + sizeof bytes);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_keeps_a_nul),
        cmocka_unit_test(test_grows_and_clear_keeps_memory),
        cmocka_unit_test(test_failure_is_sticky_until_clear),
        cmocka_unit_test(test_append_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
