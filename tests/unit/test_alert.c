/* Unit tests for the alert contract (common/alert.c): what the worker
 * encodes, the notifier decodes to the same fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"

static void test_severities(void **state)
{
    (void)state;
    const char *w = alert_severity("warning");
    assert_non_null(w);
    assert_string_equal(w, "warning");
    assert_ptr_equal(w, alert_severity("warning")); /* statically allocated, one list */
    assert_non_null(alert_severity("info"));
    assert_non_null(alert_severity("critical"));
    assert_null(alert_severity("Warning"));
    assert_null(alert_severity("*"));
    assert_null(alert_severity(""));
    assert_null(alert_severity(NULL));
}

static void test_id_and_routing_key(void **state)
{
    (void)state;
    char *id = alert_make_id("big_order", "m-1");
    assert_string_equal(id, "big_order:m-1");
    alert a = {.rule = "big_order", .severity = "warning"};
    char rk[64];
    assert_int_equal(alert_routing_key(&a, rk, sizeof rk), 0);
    assert_string_equal(rk, "alert.warning.big_order");
    char small[8];
    assert_int_equal(alert_routing_key(&a, small, sizeof small), -1);
    free(id);
}

static void test_round_trip(void **state)
{
    (void)state;
    alert in = {.alert_id = "r:m-\"1\"",
                .rule = "r",
                .severity = "critical",
                .source = "orders",
                .msg_id = "m-\"1\"",
                .message = "total 950 \xe2\x82\xac\nnext line",
                .dedup_key = "",
                .raised_at_us = INT64_C(1764400000123456)};
    size_t len = 0;
    char *text = alert_encode(&in, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    alert out;
    alert_doc *doc = NULL;
    assert_int_equal(alert_decode(text, len, &out, &doc), 0);
    assert_string_equal(out.alert_id, in.alert_id);
    assert_string_equal(out.rule, in.rule);
    assert_string_equal(out.severity, in.severity);
    assert_string_equal(out.source, in.source);
    assert_string_equal(out.msg_id, in.msg_id);
    assert_string_equal(out.message, in.message);
    assert_string_equal(out.dedup_key, in.dedup_key);
    assert_true(out.raised_at_us == in.raised_at_us);
    assert_ptr_equal(out.body, text);
    assert_int_equal(out.body_len, len);
    alert_doc_free(doc);
    free(text);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "",
        "not json",
        "[1,2]",
        "{\"alert_id\":\"\",\"rule\":\"r\",\"severity\":\"info\",\"source\":\"s\",\"message\":"
        "\"m\"}",
        "{\"alert_id\":\"a\",\"rule\":\"r\",\"severity\":\"fatal\",\"source\":\"s\",\"message\":"
        "\"m\"}",
        "{\"alert_id\":\"a\",\"rule\":\"r\",\"severity\":\"info\",\"source\":\"s\"}",
        "{\"alert_id\":\"a\",\"rule\":1,\"severity\":\"info\",\"source\":\"s\",\"message\":\"m\"}",
        "{\"alert_id\":\"a\",\"rule\":\"r\",\"severity\":\"info\",\"source\":\"s\",\"message\":"
        "\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        alert out;
        alert_doc *doc = NULL;
        if (alert_decode(bodies[i], strlen(bodies[i]), &out, &doc) != -1)
            fail_msg("case %zu decoded: %s", i, bodies[i]);
        alert_doc_free(doc);
    }
    /* The smallest alert there is: the fields the notifier needs. */
    const char *ok = "{\"alert_id\":\"a\",\"rule\":\"r\",\"severity\":\"info\",\"source\":\"s\","
                     "\"message\":\"m\"}";
    alert out;
    alert_doc *doc = NULL;
    assert_int_equal(alert_decode(ok, strlen(ok), &out, &doc), 0);
    assert_null(out.msg_id);
    assert_true(out.raised_at_us == 0);
    alert_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severities),
        cmocka_unit_test(test_id_and_routing_key),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
