/* Unit tests of what sluice-ctl reads from a dead letter (ctl/deadmsg.c)
 * (source from the routing key, reason from the headers) and its filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deadmsg.h"

static amqp_table_entry_t text_entry(const char *key, const char *value)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

static amqp_basic_properties_t with_headers(amqp_table_entry_t *entries, int n)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_HEADERS_FLAG;
    p.headers.num_entries = n;
    p.headers.entries = entries;
    return p;
}

static void test_source_and_reason_cases(void **state)
{
    (void)state;
    struct {
        const char *routing_key;
        const char *sluice_reason, *first_death; /* NULL: header absent */
        const char *source, *reason;
    } cases[] = {
        {"src.orders", "database down", NULL, "orders", "database down"},
        {"src.orders", NULL, "delivery_limit", "orders", "delivery_limit"},
        {"src.orders", "ours wins", "delivery_limit", "orders", "ours wins"},
        {"src.orders", NULL, NULL, "orders", "unknown"},
        {"alert.info.big_order", "telegram: 400", NULL, "", "telegram: 400"},
        {"src.", "x", NULL, "", "x"},
        {"src.Bad Name", "x", NULL, "", "x"},
        {"src.a_b-9", "x", NULL, "a_b-9", "x"},
        {"", "x", NULL, "", "x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        amqp_table_entry_t entries[2];
        int n = 0;
        if (cases[i].sluice_reason)
            entries[n++] = text_entry("x-sluice-reason", cases[i].sluice_reason);
        if (cases[i].first_death)
            entries[n++] = text_entry("x-first-death-reason", cases[i].first_death);
        amqp_basic_properties_t p = with_headers(entries, n);
        dead_info info;
        dead_info_read(amqp_cstring_bytes(cases[i].routing_key), &p, &info);
        assert_string_equal(info.source, cases[i].source);
        assert_string_equal(info.reason, cases[i].reason);
    }
}

static void test_no_headers_at_all(void **state)
{
    (void)state;
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    dead_info info;
    dead_info_read(amqp_cstring_bytes("src.sensors"), &p, &info);
    assert_string_equal(info.source, "sensors");
    assert_string_equal(info.reason, "unknown");
    assert_int_equal(dead_header_int(&p, "x-produced-at-us", -7), -7);
}

static void test_integer_headers_of_any_width(void **state)
{
    (void)state;
    amqp_table_entry_t e[3];
    e[0].key = amqp_cstring_bytes("a");
    e[0].value.kind = AMQP_FIELD_KIND_I64;
    e[0].value.value.i64 = 1732000000123456;
    e[1].key = amqp_cstring_bytes("b");
    e[1].value.kind = AMQP_FIELD_KIND_I32;
    e[1].value.value.i32 = -5;
    e[2] = text_entry("c", "12");
    amqp_basic_properties_t p = with_headers(e, 3);
    assert_true(dead_header_int(&p, "a", 0) == 1732000000123456);
    assert_int_equal(dead_header_int(&p, "b", 0), -5);
    assert_int_equal(dead_header_int(&p, "c", 99), 99); /* text is not a number */
    char out[4];
    assert_int_equal(dead_header_text(&p, "c", out, sizeof out), 1);
    assert_string_equal(out, "12");
    assert_int_equal(dead_header_text(&p, "a", out, sizeof out), 0);
}

static void test_filters(void **state)
{
    (void)state;
    dead_info info = {.source = "orders", .reason = "boom"};
    assert_true(dead_info_matches(&info, NULL, NULL));
    assert_true(dead_info_matches(&info, "", ""));
    assert_true(dead_info_matches(&info, "orders", "boom"));
    assert_false(dead_info_matches(&info, "sensors", ""));
    assert_false(dead_info_matches(&info, "", "boo"));
    assert_false(dead_info_matches(&info, "orders", "boom!"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_and_reason_cases),
        cmocka_unit_test(test_no_headers_at_all),
        cmocka_unit_test(test_integer_headers_of_any_width),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
