/* Unit tests for the grouping keys of alerts (notifier/grouping.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grouping.h"

static void test_grouping(void **state)
{
    (void)state;
    static const struct {
        const char *group_by, *expect; /* the key of the alert below, or NULL: refused */
    } cases[] = {
        {"rule", "checkout_search"},
        {"rule, source", "checkout_search clickstream"},
        {"severity,rule,source", "checkout_search info clickstream"},
        {"alert", "checkout_search:e-1"},
        {"alert,rule", NULL},
        {"rules", NULL},
        {"", NULL},
    };
    alert a = {.alert_id = "checkout_search:e-1",
               .rule = "checkout_search",
               .severity = "info",
               .source = "clickstream"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        grouping g = {0};
        char err[256], key[256];
        int rc = grouping_parse(cases[i].group_by, &g, err, sizeof err);
        if (!cases[i].expect) {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "group_by"));
            continue;
        }
        assert_int_equal(rc, 0);
        grouping_key(&g, &a, key, sizeof key);
        assert_string_equal(key, cases[i].expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
