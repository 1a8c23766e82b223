/* Unit tests for the message contract's rules (common/event.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

static void test_source_names(void **state)
{
    (void)state;
    assert_true(source_name_valid("orders"));
    assert_true(source_name_valid("sensor_eu-1"));
    assert_true(
        source_name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
    assert_false(source_name_valid(""));
    assert_false(source_name_valid("Orders"));
    assert_false(source_name_valid("a.b"));
    assert_false(source_name_valid("a b"));
    assert_false(
        source_name_valid("01234567890123456789012345678901234567890123456789012345678901234"));
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int valid;
    } cases[] = {
        {"plain", 1},
        {"Zo\xc3\xab", 1},       /* ë */
        {"\xe2\x82\xac", 1},     /* € */
        {"\xf0\x9f\x98\x80", 1}, /* emoji */
        {"\xc3", 0},             /* truncated */
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"\xed\xa0\x80", 0},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"\xff", 0},
        {"ok\x80", 0}, /* stray continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (utf8_valid(cases[i].text, strlen(cases[i].text)) != cases[i].valid)
            fail_msg("case %zu (%s) expected %d", i, cases[i].text, cases[i].valid);
    }
}

static void test_verdicts(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        event_verdict verdict;
    } cases[] = {
        {"{\"a\":1}", EVENT_OK},
        {"  {\"a\": [1, 2, {\"b\": null}]}\n", EVENT_OK},
        {"{\"name\":\"Zo\xc3\xab\"}", EVENT_OK},
        {"{\"text\":\"\\\\u0000 is literal here\"}", EVENT_OK},
        {"{\"a\":\"x\\u0000y\"}", EVENT_NUL_CHAR},
        {"{\"a\\u0000\":1}", EVENT_NUL_CHAR},
        {"{\"a\":\"\\\\\\u0000\"}", EVENT_NUL_CHAR}, /* escaped backslash, then \u0000 */
        {"[1,2]", EVENT_NOT_OBJECT},
        {"\"text\"", EVENT_NOT_OBJECT},
        {"42", EVENT_NOT_OBJECT},
        {"{\"a\":1", EVENT_BAD_JSON},
        {"{\"a\":1} trailing", EVENT_BAD_JSON},
        {"{'a':1}", EVENT_BAD_JSON},
        {"", EVENT_BAD_JSON},
        {"{\"a\":NaN}", EVENT_BAD_JSON},
        {"{\"a\":\"\xff\"}", EVENT_BAD_UTF8},
        {"{\"a\":\"\xc3\"}", EVENT_BAD_UTF8},
        {"{\"a\":\"\\ud83d\\ude00\"}", EVENT_OK},  /* surrogate pair */
        {"{\"a\":\"\\ud83d\"}", EVENT_BAD_JSON},   /* lone high surrogate */
        {"{\"a\":\"\\ude00\"}", EVENT_BAD_JSON},   /* lone low surrogate */
        {"{\"a\":\"tab\there\"}", EVENT_BAD_JSON}, /* raw control character */
        {"{\"a\":\"\\x\"}", EVENT_BAD_JSON},       /* unknown escape */
        {"{\"a\":01}", EVENT_BAD_JSON},
        {"{\"a\":-1.5e+3,\"b\":0.25,\"c\":true,\"d\":false}", EVENT_OK},
        {"{\"a\":1.}", EVENT_BAD_JSON},
        {"{\"a\":tru}", EVENT_BAD_JSON},
        {"{\"a\":1,}", EVENT_BAD_JSON},
        {"{,}", EVENT_BAD_JSON},
        {"{}", EVENT_OK},
        {"{\"a\" 1}", EVENT_BAD_JSON},
    };
    event_validator *v = event_validator_new(64);
    assert_non_null(v);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        event_verdict got = event_validate(v, cases[i].body, strlen(cases[i].body));
        if (got != cases[i].verdict)
            fail_msg("case %zu (%s): got %s, expected %s", i, cases[i].body,
                     event_verdict_reason(got), event_verdict_reason(cases[i].verdict));
    }
    /* A raw NUL byte inside the body. */
    assert_int_equal(event_validate(v, "{\"a\":\"\0\"}", 9), EVENT_BAD_JSON);
    /* Over the limit, whatever the content. */
    char big[80];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    assert_int_equal(event_validate(v, big, sizeof big), EVENT_TOO_LARGE);
    event_validator_free(v);
}

static void test_deep_nesting_is_valid(void **state)
{
    (void)state;
    char body[1024];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "{\"a\":");
    body[n++] = '1';
    for (int i = 0; i < 100; i++)
        body[n++] = '}';
    event_validator *v = event_validator_new(sizeof body);
    assert_int_equal(event_validate(v, body, n), EVENT_OK);
    event_validator_free(v);
}

static void test_derived_id(void **state)
{
    (void)state;
    char a[EVENT_DERIVED_ID_LEN + 1], b[EVENT_DERIVED_ID_LEN + 1], c[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id("orders", "{}", 2, a);
    event_derive_id("orders", "{}", 2, b);
    event_derive_id("profiles", "{}", 2, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), EVENT_DERIVED_ID_LEN);
    assert_memory_equal(a, "sha256:", 7);
    /* With source "" the digest is that of "\0abc" (printf '\0abc' | sha256sum). */
    event_derive_id("", "abc", 3, a);
    assert_string_equal(a,
                        "sha256:609f6e36d2405585188d5cfd761f407c7cc46a7d3f314c88270469dde315fcd1");
}

/* A message whose one header is x-produced-at-us with value v, and whose
 * timestamp property (seconds) is ts (0: none). */
static int64_t produced_at_of(amqp_field_value_t v, uint64_t ts)
{
    amqp_table_entry_t e = {.key = amqp_cstring_bytes("x-produced-at-us"), .value = v};
    amqp_basic_properties_t p = {._flags = AMQP_BASIC_HEADERS_FLAG, .headers = {1, &e}};
    if (ts) {
        p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        p.timestamp = ts;
    }
    return event_produced_at_us(&p);
}

static amqp_field_value_t text_value(const char *s, size_t len)
{
    amqp_field_value_t v = {.kind = AMQP_FIELD_KIND_UTF8};
    v.value.bytes = (amqp_bytes_t){len, (void *)s};
    return v;
}

static void test_produced_at(void **state)
{
    (void)state;
    amqp_field_value_t i64 = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 1764400000123456};
    assert_int_equal(produced_at_of(i64, 0), 1764400000123456);
    assert_int_equal(produced_at_of(text_value("1764400000123456", 16), 0), 1764400000123456);
    /* Not plausible: the timestamp property (seconds) is used instead. */
    i64.value.i64 = -5;
    assert_int_equal(produced_at_of(i64, 1764400000), INT64_C(1764400000000000));
    /* INT64_MAX us is a time PostgreSQL refuses: one such header would
     * fail its batch's COPY. */
    i64.value.i64 = INT64_MAX;
    assert_int_equal(produced_at_of(i64, 1764400000), INT64_C(1764400000000000));
    /* Text is a number only if all of it is: "17" followed by a NUL byte
     * and more is not 17 (found by fuzz_amqp_headers). */
    assert_int_equal(produced_at_of(text_value("17\0garbage", 10), 0), 0);
    assert_int_equal(produced_at_of(text_value("0000000000000000000000000000000017", 34), 0), 0);
    assert_int_equal(produced_at_of(text_value("17", 2), 0), 17);
    amqp_basic_properties_t none = {0};
    assert_int_equal(event_produced_at_us(&none), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_names), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_verdicts),     cmocka_unit_test(test_deep_nesting_is_valid),
        cmocka_unit_test(test_derived_id),   cmocka_unit_test(test_produced_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
