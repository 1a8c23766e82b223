/* Unit tests for the simulated sources (producer/generator.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "event.h"
#include "generator.h"

static json_object *parse(const char *text, int len)
{
    json_tokener *tok = json_tokener_new();
    /* Not JSON_TOKENER_STRICT: json-c 0.18 (Debian 13) refuses every
     * non-ASCII character in strict mode, valid UTF-8 or not. */
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, text, len);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    json_tokener_free(tok);
    return o;
}

/* The sorted top-level keys of an object, joined: its "shape". */
static void shape_of(json_object *o, char *out, size_t cap)
{
    out[0] = '\0';
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        strncat(out, key, cap - strlen(out) - 2);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

static void test_every_event_is_a_valid_object(void **state)
{
    (void)state;
    event_validator *v = event_validator_new(SLUICE_MAX_MESSAGE_BYTES);
    char body[2048], id[128];
    for (int k = 0; k < GEN_KIND_COUNT; k++) {
        for (uint64_t seq = 0; seq < 2000; seq++) {
            int len =
                generator_make((generator_kind)k, 7, "src", seq, body, sizeof body, id, sizeof id);
            assert_true(len > 0);
            if (event_validate(v, body, (size_t)len) != EVENT_OK)
                fail_msg("kind %d seq %llu not valid: %.*s", k, (unsigned long long)seq, len, body);
        }
    }
    event_validator_free(v);
}

static void test_reproducible_and_seeded(void **state)
{
    (void)state;
    char a[2048], b[2048], c[2048], ida[128], idb[128], idc[128];
    int la = generator_make(GEN_ORDERS, 42, "orders", 99, a, sizeof a, ida, sizeof ida);
    int lb = generator_make(GEN_ORDERS, 42, "orders", 99, b, sizeof b, idb, sizeof idb);
    int lc = generator_make(GEN_ORDERS, 43, "orders", 99, c, sizeof c, idc, sizeof idc);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, (size_t)la);
    assert_string_equal(ida, "orders-42-99");
    assert_string_equal(ida, idb);
    assert_string_not_equal(ida, idc);
    assert_false(la == lc && memcmp(a, c, (size_t)la) == 0);
}

/* Semi-structured: within a kind, objects differ in their attributes, and
 * the kinds share no shape. */
static void test_shapes_vary(void **state)
{
    (void)state;
    char body[2048], id[128];
    char shapes[GEN_KIND_COUNT][8][512];
    int distinct[GEN_KIND_COUNT] = {0};
    for (int k = 0; k < GEN_KIND_COUNT; k++) {
        for (uint64_t seq = 0; seq < 200; seq++) {
            int len =
                generator_make((generator_kind)k, 1, "s", seq, body, sizeof body, id, sizeof id);
            json_object *o = parse(body, len);
            char shape[512];
            shape_of(o, shape, sizeof shape);
            json_object_put(o);
            int seen = 0;
            for (int i = 0; i < distinct[k]; i++)
                seen |= strcmp(shapes[k][i], shape) == 0;
            if (!seen && distinct[k] < 8)
                strcpy(shapes[k][distinct[k]++], shape);
        }
        if (distinct[k] < 2)
            fail_msg("kind %s has a single shape", generator_kind_name((generator_kind)k));
    }
    for (int k = 0; k < GEN_KIND_COUNT; k++)
        for (int j = k + 1; j < GEN_KIND_COUNT; j++)
            for (int a = 0; a < distinct[k]; a++)
                for (int b = 0; b < distinct[j]; b++)
                    assert_string_not_equal(shapes[k][a], shapes[j][b]);
}

static void test_kind_names(void **state)
{
    (void)state;
    generator_kind k;
    assert_int_equal(generator_kind_parse("clickstream", &k), 0);
    assert_int_equal(k, GEN_CLICKSTREAM);
    assert_int_equal(generator_kind_parse("weather", &k), -1);
    assert_string_equal(generator_kind_name(GEN_SENSORS), "sensors");
}

static void test_small_buffer_is_refused(void **state)
{
    (void)state;
    char body[16], id[128];
    assert_int_equal(generator_make(GEN_PROFILES, 1, "p", 0, body, sizeof body, id, sizeof id), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_event_is_a_valid_object),
        cmocka_unit_test(test_reproducible_and_seeded),
        cmocka_unit_test(test_shapes_vary),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_small_buffer_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
