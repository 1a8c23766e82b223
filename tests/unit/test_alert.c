/* Unit tests for the alert contract (common/alert.c): what the worker
 * encodes, the notifier decodes to the same fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

    /* Each indexed field: at ALERT_FIELD_MAX bytes taken, one more refused. */
    static const char *const fields[] = {"alert_id", "rule", "source", "msg_id", "dedup_key"};
    char *long_value = malloc(ALERT_FIELD_MAX + 2), *body = malloc(ALERT_FIELD_MAX + 256);
    assert_non_null(long_value);
    assert_non_null(body);
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        for (size_t extra = 0; extra < 2; extra++) {
            memset(long_value, 'v', ALERT_FIELD_MAX + extra);
            long_value[ALERT_FIELD_MAX + extra] = '\0';
            const char *pick[5] = {"a", "r", "s", "m", "k"};
            pick[f] = long_value;
            snprintf(body, ALERT_FIELD_MAX + 256,
                     "{\"alert_id\":\"%s\",\"rule\":\"%s\",\"severity\":\"info\","
                     "\"source\":\"%s\",\"msg_id\":\"%s\",\"dedup_key\":\"%s\",\"message\":\"m\"}",
                     pick[0], pick[1], pick[2], pick[3], pick[4]);
            int rc = alert_decode(body, strlen(body), &out, &doc);
            alert_doc_free(doc);
            if (rc != (extra ? -1 : 0))
                fail_msg("%s of %zu bytes: decode gave %d", fields[f], ALERT_FIELD_MAX + extra, rc);
        }
    }
    free(long_value);
    free(body);
}

/* A message is cut at a character boundary, "…" inside the bound; a
 * short one is left alone. */
static void test_cut(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t max;
        const char *expect;
    } cases[] = {
        {"short", 16, "short"},
        {"exactly8", 8, "exactly8"},
        {"abcdefghij", 8, "abcde\xe2\x80\xa6"},
        /* "ü" is two bytes: the cut may not split it. */
        {"abcd\xc3\xbc"
         "efgh",
         8, "abcd\xe2\x80\xa6"},
        {"abcde\xc3\xbc"
         "fgh",
         8, "abcde\xe2\x80\xa6"},
        /* A 4-byte character at the cut goes whole. */
        {"ab\xf0\x9f\x98\x80"
         "cdefgh",
         8, "ab\xe2\x80\xa6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", cases[i].text);
        alert_cut_text(text, cases[i].max);
        assert_string_equal(text, cases[i].expect);
        assert_true(strlen(text) <= cases[i].max);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severities), cmocka_unit_test(test_id_and_routing_key),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
