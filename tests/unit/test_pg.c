/* Unit tests for the pure parts of common/pg.c: libpq's messages made one
 * log line, and which SQLSTATEs mean "try again later". (Connecting and preparing are exercised by
 * every integration test against the real PostgreSQL.) */
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

static void test_sqlstate_is_transient(void **state)
{
    (void)state;
    static const struct {
        const char *state;
        int transient;
        const char *why;
    } cases[] = {
        {NULL, 1, "no SQLSTATE: libpq's own error"},
        {"", 1, "empty: libpq's own error"},
        {"08000", 1, "connection_exception"},
        {"08006", 1, "connection_failure"},
        {"08P01", 1, "protocol_violation"},
        {"40001", 1, "serialization_failure"},
        {"40P01", 1, "deadlock_detected"},
        {"40003", 1, "statement_completion_unknown"},
        {"53100", 1, "disk_full"},
        {"53200", 1, "out_of_memory"},
        {"53300", 1, "too_many_connections"},
        {"57P01", 1, "admin_shutdown"},
        {"57P02", 1, "crash_shutdown"},
        {"57P03", 1, "cannot_connect_now"},
        {"57014", 1, "query_canceled"},
        {"58030", 1, "io_error"},
        {"25006", 1, "read_only_sql_transaction: a standby after failover"},
        {"25001", 0, "active_sql_transaction: a bug of the caller"},
        {"25P02", 0, "in_failed_sql_transaction: a bug of the caller"},
        {"22P02", 0, "invalid_text_representation: the data"},
        {"22021", 0, "character_not_in_repertoire: the data"},
        {"23505", 0, "unique_violation: the data"},
        {"23514", 0, "check_violation: the data"},
        {"42P01", 0, "undefined_table: the schema"},
        {"42883", 0, "undefined_function: the schema"},
        {"P0001", 0, "raise_exception: a trigger's verdict"},
        {"XX000", 0, "internal_error"},
        {"00000", 0, "successful_completion"},
        {"0", 0, "one character"},
        {"4", 0, "first half of a class only"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (pg_sqlstate_is_transient(cases[i].state) != cases[i].transient)
            fail_msg("%s (%s): expected %s", cases[i].state ? cases[i].state : "NULL", cases[i].why,
                     cases[i].transient ? "transient" : "not transient");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_error_without_result),
        cmocka_unit_test(test_sqlstate_is_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
