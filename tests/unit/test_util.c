/* Unit tests for common/util.c and common/mq.c's URL redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "mq.h"
#include "util.h"

static void test_strlist_split(void **state)
{
    (void)state;
    strlist l;
    assert_int_equal(strlist_split(" a, b ,,c ,", &l), 0);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[0], "a");
    assert_string_equal(l.items[1], "b");
    assert_string_equal(l.items[2], "c");
    strlist_free(&l);
    assert_int_equal(strlist_split("", &l), 0);
    assert_int_equal(l.count, 0);
    strlist_free(&l);
}

/* Every log entry stays one line: control characters become escapes,
 * trailing newlines go (libpq's messages end in one), and a cut never
 * splits an escape. */
static void test_str_trim(void **state)
{
    (void)state;
    char a[] = " \t key = v \r\n", b[] = "   ", c[] = "x";
    assert_string_equal(str_trim(a), "key = v");
    assert_string_equal(str_trim(b), "");
    assert_string_equal(str_trim(c), "x");
}

static void test_log_escape(void **state)
{
    (void)state;
    char out[512];
    const char *pq = "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
                     "\tIs the server running on that host and accepting TCP/IP connections?\n";
    log_escape(pq, strlen(pq), out, sizeof out);
    assert_null(strchr(out, '\n'));
    assert_non_null(strstr(out, "refused\\n\\tIs the server"));
    assert_int_equal(out[strlen(out) - 1], '?');
    assert_int_equal(log_escape("a\r\x01\x7f b", 6, out, sizeof out), 13);
    assert_string_equal(out, "a\\r\\x01\\x7f b");
    assert_int_equal(log_escape("ab\n\n", 4, out, 4), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(log_escape("a\nb", 3, out, 3), 1); /* "a\\n" would not fit */
    assert_string_equal(out, "a");
    assert_int_equal(log_escape("ünï", strlen("ünï"), out, sizeof out), strlen("ünï"));
}

static void test_strlist_push(void **state)
{
    (void)state;
    strlist l = {0};
    assert_int_equal(strlist_push(&l, "a"), 0);
    assert_int_equal(strlist_push(&l, "b"), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[1], "b");
    strlist_free(&l);
}

static void test_backoff_grows_and_is_bounded(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        long first = backoff_ms(0, 100, 5000);
        long later = backoff_ms(10, 100, 5000);
        assert_true(first >= 50 && first <= 100);
        assert_true(later >= 2500 && later <= 5000);
    }
}

static void test_redact_url(void **state)
{
    (void)state;
    char out[512];
    mq_redact_url("amqp://user:secret@host:5672/vh", out, sizeof out);
    assert_string_equal(out, "amqp://user@host:5672/vh");
    mq_redact_url("amqp://host/", out, sizeof out);
    assert_string_equal(out, "amqp://host/");
    mq_redact_url("amqps://u:p:q@h/", out, sizeof out);
    assert_string_equal(out, "amqps://u@h/");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t a = mono_us(), b = mono_us();
    assert_true(b >= a);
    assert_true(now_us() > INT64_C(1700000000000000)); /* after 2023 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlist_split),
        cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_str_trim),
        cmocka_unit_test(test_strlist_push),
        cmocka_unit_test(test_backoff_grows_and_is_bounded),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
