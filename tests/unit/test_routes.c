/* Unit tests for alert routes (notifier/routes.c). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"

static void test_routes_match(void **state)
{
    (void)state;
    routes r;
    char err[256];
    assert_int_equal(routes_parse("critical=telegram+log; warning.big_order=webhook;"
                                  " *.sensor_fault=telegram:@ops; *=log",
                                  &r, err, sizeof err),
                     0);
    static const struct {
        const char *severity, *rule, *expect; /* channel names joined by + */
    } cases[] = {
        {"critical", "anything", "telegram:chat0+log"},
        {"critical", "sensor_fault", "telegram:chat0+log"}, /* first match wins */
        {"warning", "big_order", "webhook"},
        {"warning", "sensor_fault", "telegram:@ops"},
        {"info", "big_order", "log"},
    };
    const channel_settings settings = {.telegram_chat = "chat0"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const route *m = routes_match(&r, cases[i].severity, cases[i].rule);
        assert_non_null(m);
        char got[256] = "", name[160];
        for (size_t k = 0; k < m->nchannels; k++) {
            channel_name(&m->channels[k], &settings, name, sizeof name);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? "+" : "", name);
        }
        if (strcmp(got, cases[i].expect) != 0)
            fail_msg("case %zu: %s, expected %s", i, got, cases[i].expect);
    }
    assert_true(routes_use(&r, "webhook"));
    routes_free(&r);

    assert_int_equal(routes_parse("critical=log", &r, err, sizeof err), 0);
    assert_null(routes_match(&r, "info", "x"));
    assert_false(routes_use(&r, "telegram"));
    routes_free(&r);
}

static void test_routes_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"critical", "entry 'critical': expected PATTERN=CHANNEL"},
        {"urgent=log", "entry 'urgent=log': pattern must be"},
        {"*=email", "entry '*=email': unknown channel 'email'"},
        {"*=", "entry '*=': no channel"},
        {"*=telegram:", "unknown channel 'telegram:'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        routes r;
        char err[256] = "";
        assert_int_equal(routes_parse(cases[i].text, &r, err, sizeof err), -1);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match),
        cmocka_unit_test(test_routes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
