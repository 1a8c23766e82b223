/* Unit tests for the pure part of common/pg.c: libpq's messages made one
 * log line. (Connecting and preparing are exercised by every integration
 * test against the real PostgreSQL.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pg.h"

static void test_flatten(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"one line", "one line"},
        {"ends with a newline\n", "ends with a newline"},
        {"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
         "\tIs the server running on that host and accepting TCP/IP connections?\n",
         "connection to server at \"127.0.0.1\", port 1 failed: Connection refused "
         "Is the server running on that host and accepting TCP/IP connections?"},
        {"ERROR:  syntax error at or near \"SELEC\"\nLINE 1: SELEC 1\n        ^\n",
         "ERROR:  syntax error at or near \"SELEC\" LINE 1: SELEC 1 ^"},
        {"crlf\r\nline  \r\n", "crlf line"},
        {"\nleading break", "leading break"},
        {"inner  blanks stay", "inner  blanks stay"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        if (strcmp(pg_flatten(buf), cases[i].out) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, buf, cases[i].out);
    }
}

static void test_error_without_result(void **state)
{
    (void)state;
    char err[128];
    /* No connection and no result: libpq had no memory for either. */
    assert_int_equal(pg_error(NULL, NULL, err, sizeof err, "preparing %s", "plan"), -1);
    assert_string_equal(err, "preparing plan: out of memory");
    char small[8];
    pg_error(NULL, NULL, small, sizeof small, "a long description");
    assert_string_equal(small, "a long"); /* cut, and its trailing blank dropped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_error_without_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
