/* Unit tests for workers/prefilter.c. The property that matters: the
 * prefilter never says "no" to an event a rule fires on (rules_eval.c
 * decides what fires). Checked on events of the demo's generators against
 * the example rules file and against rules of every operator and combinator,
 * on hand-made events with escapes, and on what the prefilter does skip,
 * so it earns its place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "generator.h"
#include "prefilter.h"
#include "rules.h"

static int count_fired(rule_match *m, void *arg)
{
    (*(int *)arg)++;
    rules_match_clear(m);
    return 0;
}

static int fires(const rule_set *rs, const char *source, const char *body)
{
    json_object *event = json_tokener_parse(body);
    assert_non_null(event);
    int n = 0;
    assert_true(rules_evaluate(rs, source, event, count_fired, &n) >= 0);
    json_object_put(event);
    return n;
}

/* Checks the property on `count` events of each generator; returns how
 * many events the prefilter let through. */
static size_t check_generated(const char *rules_text, size_t count, size_t *fired_out)
{
    char err[512];
    rule_set *rs = rules_parse(rules_text, "t.json", err, sizeof err);
    if (!rs)
        fail_msg("%s", err);
    prefilter *pf = prefilter_new(rules_text);
    assert_non_null(pf);
    static const char *const sources[] = {"profiles", "clickstream", "orders", "sensors"};
    size_t passed = 0, fired = 0;
    for (size_t s = 0; s < 4; s++) {
        generator_kind kind;
        assert_int_equal(generator_kind_parse(sources[s], &kind), 0);
        for (uint64_t seq = 0; seq < count; seq++) {
            char body[2048], id[128];
            int len = generator_make(kind, 42, sources[s], seq, body, sizeof body, id, sizeof id);
            assert_true(len > 0);
            int maybe = prefilter_maybe(pf, sources[s], body, (size_t)len);
            int n = fires(rs, sources[s], body);
            if (n > 0 && !maybe)
                fail_msg("prefilter skipped an event a rule fires on: %s: %s", sources[s], body);
            passed += (size_t)maybe;
            fired += n > 0;
        }
    }
    prefilter_free(pf);
    rules_free(rs);
    if (fired_out)
        *fired_out = fired;
    return passed;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static void test_example_rules_never_miss_and_skip_most(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/config/rules.example.json", SLUICE_SOURCE_DIR);
    size_t fired = 0;
    size_t passed = check_generated(slurp(path), 2000, &fired);
    assert_true(fired > 0);
    /* Orders always pass (every order has a total and shipping.express);
     * sensors without a fault and clicks without a query do not; profiles
     * are watched by no rule. */
    assert_true(passed < 2000 * 2);
    assert_true(passed >= fired);
}

/* Rules over the generators' fields with every operator and combinator. */
static void test_every_operator_never_misses(void **state)
{
    (void)state;
    static const char *const whens[] = {
        "{\"path\":\"action\",\"equals\":\"search\"}",
        "{\"path\":\"action\",\"not_equals\":\"search\"}",
        "{\"path\":\"shipping.express\",\"equals\":true}",
        "{\"path\":\"shipping.express\",\"equals\":false}",
        "{\"path\":\"coupon\",\"exists\":false}",
        "{\"path\":\"fault\",\"exists\":true}",
        "{\"path\":\"items.0.gift_wrap\",\"equals\":true}",
        "{\"path\":\"items[1].qty\",\"gte\":2}",
        "{\"path\":\"preferences.languages\",\"contains\":\"de\"}",
        "{\"path\":\"query\",\"matches\":\"^music\"}",
        "{\"path\":\"referral_code\",\"equals\":null}",
        "{\"not\":{\"path\":\"fault.transient\",\"equals\":true}}",
        "{\"any\":[{\"path\":\"coupon\",\"exists\":true},{\"path\":\"notes\",\"exists\":true}]}",
        "{\"any\":[{\"path\":\"coupon\",\"exists\":true},{\"not\":{\"path\":\"total\",\"gt\":5}}]}",
        "{\"all\":[{\"path\":\"value\",\"gt\":30},{\"any\":[{\"path\":\"battery\",\"lt\":0.5},"
        "{\"path\":\"location.lat\",\"gt\":0}]}]}",
    };
    for (size_t i = 0; i < sizeof whens / sizeof *whens; i++) {
        char text[2048];
        snprintf(
            text, sizeof text,
            "{\"rules\":[{\"name\":\"r\",\"when\":%s,\"severity\":\"info\",\"message\":\"m\"}]}",
            whens[i]);
        size_t fired = 0;
        check_generated(text, 300, &fired);
        /* "Never misses" says nothing of a rule that fires on no event. */
        if (fired == 0)
            fail_msg("rule %s fired on none of the generated events", whens[i]);
    }
}

static void test_escapes_and_odd_keys(void **state)
{
    (void)state;
    const char *text = "{\"rules\":["
                       "{\"name\":\"a\",\"sources\":[\"x\"],\"when\":{\"path\":\"code\",\"gt\":1},"
                       "\"severity\":\"info\",\"message\":\"m\"},"
                       "{\"name\":\"b\",\"sources\":[\"y\"],\"when\":{\"path\":\"a/b\",\"gt\":1},"
                       "\"severity\":\"info\",\"message\":\"m\"}]}";
    char err[512];
    rule_set *rs = rules_parse(text, "t.json", err, sizeof err);
    assert_non_null(rs);
    prefilter *pf = prefilter_new(text);
    assert_non_null(pf);
    static const struct {
        const char *source, *body;
        int maybe;
    } cases[] = {
        {"x", "{\"code\":5}", 1},       {"x", "{\"other\":5}", 0},
        {"x", "{\"c\\u006fde\":5}", 1}, /* the key spelt with an escape */
        {"z", "{\"code\":5}", 0},       /* no rule watches z */
        {"y", "{\"a\\/b\":5}", 1},      /* '/' may be escaped: no needle for it */
        {"y", "{\"a/b\":5}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int maybe = prefilter_maybe(pf, cases[i].source, cases[i].body, strlen(cases[i].body));
        if (maybe != cases[i].maybe)
            fail_msg("case %zu (%s): maybe=%d", i, cases[i].body, maybe);
        if (fires(rs, cases[i].source, cases[i].body))
            assert_true(maybe);
    }
    prefilter_free(pf);
    rules_free(rs);
    /* Not a rules file: always "maybe". */
    pf = prefilter_new("[1,2");
    assert_non_null(pf);
    assert_int_equal(prefilter_maybe(pf, "x", "{}", 2), 1);
    prefilter_free(pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_rules_never_miss_and_skip_most),
        cmocka_unit_test(test_every_operator_never_misses),
        cmocka_unit_test(test_escapes_and_odd_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
