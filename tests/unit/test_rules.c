/* Unit tests for workers/rules_parse.c and rules_eval.c: parsing rules
 * files (good ones, and bad ones refused with the rule and the problem
 * named), path lookup, every operator and combinator, templates.
 * Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"
#include "rules.h"

static const char event_text[] =
    "{\"order_id\":\"o-17\",\"total\":950.5,\"count\":3,\"vip\":true,\"note\":null,"
    "\"customer\":{\"id\":\"c-9\",\"name\":\"Zoë <Z&Co>\"},"
    "\"tags\":[\"gift\",\"express\"],\"items\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B-2\"}],"
    "\"country\":\"DE\"}";

/* A one-rule file around a condition. */
static rule_set *one_rule(const char *when, char *err, size_t errlen)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"rules\":[{\"name\":\"r\",\"sources\":[\"orders\"],\"when\":%s,"
             "\"severity\":\"info\",\"message\":\"m\"}]}",
             when);
    return rules_parse(text, "t.json", err, errlen);
}

static int count_fired(rule_match *m, void *arg)
{
    (*(int *)arg)++;
    rules_match_clear(m);
    return 0;
}

static void test_conditions(void **state)
{
    (void)state;
    static const struct {
        const char *when;
        int fires;
    } cases[] = {
        {"{\"path\":\"country\",\"equals\":\"DE\"}", 1},
        {"{\"path\":\"country\",\"equals\":\"FR\"}", 0},
        {"{\"path\":\"count\",\"equals\":3.0}", 1}, /* numbers compare by value */
        {"{\"path\":\"vip\",\"equals\":true}", 1},
        {"{\"path\":\"note\",\"equals\":null}", 1},
        {"{\"path\":\"country\",\"not_equals\":\"FR\"}", 1},
        {"{\"path\":\"missing\",\"not_equals\":\"FR\"}", 0}, /* missing: false */
        {"{\"path\":\"total\",\"gt\":900}", 1},
        {"{\"path\":\"total\",\"gt\":950.5}", 0},
        {"{\"path\":\"total\",\"gte\":950.5}", 1},
        {"{\"path\":\"total\",\"lt\":10}", 0},
        {"{\"path\":\"count\",\"lte\":3}", 1},
        {"{\"path\":\"country\",\"gt\":1}", 0}, /* a string is not a number */
        {"{\"path\":\"customer.id\",\"exists\":true}", 1},
        {"{\"path\":\"customer.email\",\"exists\":true}", 0},
        {"{\"path\":\"customer.email\",\"exists\":false}", 1},
        {"{\"path\":\"customer.name\",\"contains\":\"<Z&\"}", 1},
        {"{\"path\":\"tags\",\"contains\":\"express\"}", 1},
        {"{\"path\":\"tags\",\"contains\":\"slow\"}", 0},
        {"{\"path\":\"items.0.sku\",\"equals\":\"A-1\"}", 1},
        {"{\"path\":\"items[1].sku\",\"equals\":\"B-2\"}", 1},
        {"{\"path\":\"items[2].sku\",\"exists\":true}", 0},
        {"{\"path\":\"order_id\",\"matches\":\"^o-[0-9]+$\"}", 1},
        {"{\"path\":\"order_id\",\"matches\":\"^x\"}", 0},
        {"{\"path\":\"total\",\"matches\":\".\"}", 0}, /* only strings match */
        {"{\"all\":[{\"path\":\"country\",\"equals\":\"DE\"},{\"path\":\"total\",\"gt\":900}]}", 1},
        {"{\"all\":[{\"path\":\"country\",\"equals\":\"DE\"},{\"path\":\"total\",\"gt\":999}]}", 0},
        {"{\"any\":[{\"path\":\"country\",\"equals\":\"FR\"},{\"path\":\"total\",\"gt\":900}]}", 1},
        {"{\"any\":[{\"path\":\"country\",\"equals\":\"FR\"},{\"path\":\"vip\",\"equals\":false}]}",
         0},
        {"{\"not\":{\"path\":\"country\",\"equals\":\"FR\"}}", 1},
        {"{\"all\":[{\"any\":[{\"path\":\"a\",\"exists\":true},{\"path\":\"vip\",\"equals\":true}"
         "]},{\"not\":{\"path\":\"count\",\"lt\":1}}]}",
         1},
    };
    json_object *event = json_tokener_parse(event_text);
    assert_non_null(event);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512];
        rule_set *rs = one_rule(cases[i].when, err, sizeof err);
        if (!rs)
            fail_msg("case %zu (%s) refused: %s", i, cases[i].when, err);
        int fired = 0;
        int n = rules_evaluate(rs, "orders", event, count_fired, &fired);
        if (n != cases[i].fires || fired != cases[i].fires)
            fail_msg("case %zu (%s): fired %d, expected %d", i, cases[i].when, fired,
                     cases[i].fires);
        /* A rule only watches its sources. */
        fired = 0;
        assert_int_equal(rules_evaluate(rs, "sensors", event, count_fired, &fired), 0);
        rules_free(rs);
    }
    json_object_put(event);
}

static void test_bad_files_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *text, *expect; /* expect: a part of the one-line error */
    } cases[] = {
        {"{\"rules\": [", "t.json: not valid JSON"},
        {"[]", "t.json: expected an object with a \"rules\" array"},
        {"{\"rules\":[{\"sources\":[\"orders\"]}]}", "t.json: rule #1: missing \"name\""},
        {"{\"rules\":[{\"name\":\"Big.Order\"}]}", "rule #1: name 'Big.Order' must match"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"greater\":1},"
         "\"severity\":\"info\",\"message\":\"m\"}]}",
         "rule 'a' (#1): path 'x': unknown operator 'greater'"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"gt\":\"1\"},"
         "\"severity\":\"info\",\"message\":\"m\"}]}",
         "rule 'a' (#1): path 'x': 'gt' needs a number"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"matches\":\"(\"},"
         "\"severity\":\"info\",\"message\":\"m\"}]}",
         "rule 'a' (#1): path 'x': bad pattern '('"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"urgent\",\"message\":\"m\"}]}",
         "rule 'a' (#1): severity 'urgent' is not info, warning or critical"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"total {total\"}]}",
         "rule 'a' (#1): message: unclosed '{' at offset 6"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"all\":[]},\"severity\":\"info\","
         "\"message\":\"m\"}]}",
         "rule 'a' (#1): 'all' must be a non-empty array"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"m\",\"dedup\":{\"key\":\"k\",\"window_s\":0}}]}",
         "rule 'a' (#1): dedup window_s must be between 1"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"m\",\"color\":\"red\"}]}",
         "rule 'a' (#1): unknown key 'color'"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"m\"},{\"name\":\"a\",\"when\":{\"path\":\"x\","
         "\"exists\":true},\"severity\":\"info\",\"message\":\"m\"}]}",
         "rule 'a' (#2): name used twice (also rule #1)"},
        /* Found by fuzz_rules: json-c takes any bytes in strings, and the
         * message would go out as invalid UTF-8. */
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"Or\xe4"
         "er {id}\"}]}",
         "rule 'a' (#1): message: not valid UTF-8"},
        {"{\"rules\":[{\"name\":\"a\",\"when\":{\"path\":\"x\",\"exists\":true},"
         "\"severity\":\"info\",\"message\":\"m\",\"dedup\":{\"key\":\"\xc3\",\"window_s\":9}}]}",
         "rule 'a' (#1): dedup key: not valid UTF-8"},
        {"{\"rules\":[{\"name\":\"a\",\"sources\":[\"Orders!\"],\"when\":{\"path\":\"x\","
         "\"exists\":true},\"severity\":\"info\",\"message\":\"m\"}]}",
         "rule 'a' (#1): sources[0] is not a source name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512] = "";
        rule_set *rs = rules_parse(cases[i].text, "t.json", err, sizeof err);
        if (rs)
            fail_msg("case %zu accepted: %s", i, cases[i].text);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].expect);
        assert_null(strchr(err, '\n'));
    }
}

static void test_render(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *expect;
    } cases[] = {
        {"order {order_id} total {total}", "order o-17 total 950.5"},
        {"{customer.name}", "Zoë <Z&Co>"},
        {"{items[0]}", "{\"sku\":\"A-1\",\"qty\":2}"},
        {"[{missing}]", "[]"},
        {"{{literal}} {count}", "{literal} 3"},
        {"", ""},
    };
    json_object *event = json_tokener_parse(event_text);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = rules_render(cases[i].tmpl, event);
        assert_non_null(got);
        assert_string_equal(got, cases[i].expect);
        free(got);
    }
    json_object_put(event);
}

/* A rule whose message is filled with a large field raises an alert whose
 * message is cut to ALERT_MESSAGE_MAX. */
static int keep_message_length(rule_match *m, void *arg)
{
    *(size_t *)arg = strlen(m->message);
    rules_match_clear(m);
    return 0;
}

static void test_large_field_message_is_cut(void **state)
{
    (void)state;
    char err[512];
    rule_set *rs = rules_parse("{\"rules\":[{\"name\":\"big\",\"when\":{\"path\":\"x\","
                               "\"exists\":true},\"severity\":\"info\",\"message\":\"x={x}\"}]}",
                               "inline", err, sizeof err);
    assert_non_null(rs);
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'y', n);
    big[n] = '\0';
    json_object *event = json_object_new_object();
    json_object_object_add(event, "x", json_object_new_string(big));
    size_t len = 0;
    assert_int_equal(rules_evaluate(rs, "orders", event, keep_message_length, &len), 1);
    assert_int_equal(len, ALERT_MESSAGE_MAX);
    json_object_put(event);
    free(big);
    rules_free(rs);
}

/* A dedup key filled from a large field becomes its SHA-256: the same
 * field gives the same key, another field another one, each short enough
 * for PostgreSQL's index. */
static int keep_key(rule_match *m, void *arg)
{
    snprintf(arg, 128, "%s", m->dedup_key);
    rules_match_clear(m);
    return 0;
}

static void test_long_dedup_key_becomes_its_digest(void **state)
{
    (void)state;
    char err[512];
    rule_set *rs = rules_parse("{\"rules\":[{\"name\":\"k\",\"when\":{\"path\":\"x\","
                               "\"exists\":true},\"severity\":\"info\",\"message\":\"m\","
                               "\"dedup\":{\"key\":\"{x}\",\"window_s\":60}}]}",
                               "inline", err, sizeof err);
    assert_non_null(rs);
    char keys[3][128];
    size_t lens[3] = {RULES_DEDUP_KEY_MAX, 5000, 5000};
    for (int i = 0; i < 3; i++) {
        char *v = malloc(lens[i] + 1);
        assert_non_null(v);
        memset(v, 'k', lens[i]);
        v[lens[i]] = '\0';
        if (i == 2)
            v[lens[i] - 1] = 'z'; /* another key of the same length */
        json_object *event = json_object_new_object();
        json_object_object_add(event, "x", json_object_new_string(v));
        assert_int_equal(rules_evaluate(rs, "orders", event, keep_key, keys[i]), 1);
        json_object_put(event);
        free(v);
    }
    /* At the bound the key is kept (snprintf kept its first 127 bytes). */
    assert_int_equal(strspn(keys[0], "k"), 127);
    assert_int_equal(strncmp(keys[1], "sha256:", 7), 0);
    assert_int_equal(strlen(keys[1]), 7 + 64);
    assert_int_equal(strncmp(keys[2], "sha256:", 7), 0);
    assert_string_not_equal(keys[1], keys[2]);
    rules_free(rs);
}

typedef struct captured {
    char message[256], key[256], rule[64];
    const char *severity;
    long window_s;
} captured;

static int capture(rule_match *m, void *arg)
{
    captured *c = arg;
    snprintf(c->message, sizeof c->message, "%s", m->message);
    snprintf(c->key, sizeof c->key, "%s", m->dedup_key);
    snprintf(c->rule, sizeof c->rule, "%s", m->rule);
    c->severity = m->severity;
    c->window_s = m->window_s;
    rules_match_clear(m);
    return 0;
}

static void test_example_file(void **state)
{
    (void)state;
    char err[512], path[4096];
    snprintf(path, sizeof path, "%s/config/rules.example.json", SLUICE_SOURCE_DIR);
    rule_set *rs = rules_load(path, err, sizeof err);
    if (!rs)
        fail_msg("%s", err);
    assert_true(rules_count(rs) >= 2);
    assert_true(rules_watch(rs, "orders"));
    rules_free(rs);

    rs = rules_load("/nonexistent/rules.json", err, sizeof err);
    assert_null(rs);
    assert_non_null(strstr(err, "rules file /nonexistent/rules.json: No such file"));
}

static void test_match_carries_what_the_alert_needs(void **state)
{
    (void)state;
    char err[512];
    rule_set *rs = rules_parse(
        "{\"rules\":[{\"name\":\"big\",\"when\":{\"path\":\"total\",\"gt\":900},"
        "\"severity\":\"critical\",\"message\":\"{order_id}: {total} by {customer.name}\","
        "\"dedup\":{\"key\":\"{customer.id}\",\"window_s\":60}}]}",
        "t", err, sizeof err);
    assert_non_null(rs);
    assert_true(rules_watch(rs, "anything")); /* no sources: every source */
    json_object *event = json_tokener_parse(event_text);
    captured c = {0};
    assert_int_equal(rules_evaluate(rs, "orders", event, capture, &c), 1);
    assert_string_equal(c.rule, "big");
    assert_string_equal(c.severity, "critical");
    assert_string_equal(c.message, "o-17: 950.5 by Zoë <Z&Co>");
    assert_string_equal(c.key, "c-9");
    assert_int_equal(c.window_s, 60);
    json_object_put(event);
    rules_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_bad_files_are_named),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_large_field_message_is_cut),
        cmocka_unit_test(test_long_dedup_key_becomes_its_digest),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_match_carries_what_the_alert_needs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
