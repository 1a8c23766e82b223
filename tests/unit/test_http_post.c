/* Unit tests for the outcome rule of an HTTP delivery (notifier/http_post.c:
 * http_classify). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_post.h"

static void test_http_outcomes(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *description;
        long retry_after_s;
        send_status expect;
        long expect_wait_ms;
    } cases[] = {
        {200, NULL, -1, SEND_OK, -1},
        {204, NULL, -1, SEND_OK, -1},
        {429, "Too Many Requests: retry after 3", 3, SEND_RETRY, 3000},
        {429, NULL, -1, SEND_RETRY, 1000},
        {500, "Internal Server Error", -1, SEND_RETRY, -1},
        {502, NULL, -1, SEND_RETRY, -1},
        {0, NULL, -1, SEND_RETRY, -1}, /* no response */
        {400, "Bad Request: can't parse entities", -1, SEND_FAIL, -1},
        {403, "Forbidden: bot was blocked by the user", -1, SEND_FAIL, -1},
        {404, NULL, -1, SEND_FAIL, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        send_result r;
        http_classify(cases[i].status, "Couldn't connect to server", cases[i].description,
                      cases[i].retry_after_s, &r);
        if (r.status != cases[i].expect || r.retry_after_ms != cases[i].expect_wait_ms)
            fail_msg("case %zu: status %d wait %ld", i, (int)r.status, r.retry_after_ms);
        if (cases[i].description)
            assert_non_null(strstr(r.reason, cases[i].description));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
