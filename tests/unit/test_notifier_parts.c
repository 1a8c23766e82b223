/* Unit tests for the notifier's pure parts: routes (notifier/routes.c),
 * token buckets (ratelimit.c), Telegram text (tgtext.c) and the HTTP
 * outcome rule (http_post.c's http_classify). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "http_post.h"
#include "ratelimit.h"
#include "routes.h"
#include "tgtext.h"

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

static void test_token_bucket(void **state)
{
    (void)state;
    token_bucket b;
    bucket_init(&b, 2.0, 1, 0); /* 2 per second, burst 1 */
    assert_int_equal(bucket_wait_us(&b, 0), 0);
    bucket_take(&b, 0);
    int64_t wait = bucket_wait_us(&b, 0);
    assert_true(wait >= 499999 && wait <= 500001);
    assert_true(bucket_wait_us(&b, 250000) > 0);
    assert_int_equal(bucket_wait_us(&b, 500001), 0);
    bucket_take(&b, 500001);
    /* A long pause refills to the burst, no more. */
    assert_int_equal(bucket_wait_us(&b, 10000000), 0);
    bucket_take(&b, 10000000);
    assert_true(bucket_wait_us(&b, 10000000) > 0);

    /* Taking whenever allowed over 10 s gives rate * 10 + burst tokens. */
    token_bucket t;
    bucket_init(&t, 30.0, 30, 0);
    int taken = 0;
    for (int64_t now = 0; now <= 10000000; now += 1000) {
        while (bucket_wait_us(&t, now) == 0) {
            bucket_take(&t, now);
            taken++;
        }
    }
    assert_in_range(taken, 329, 331);

    bucket_map m;
    assert_int_equal(bucket_map_init(&m, 2, 1.0, 1), 0);
    bucket_take(bucket_map_get(&m, "a", 0), 0);
    assert_true(bucket_wait_us(bucket_map_get(&m, "a", 0), 0) > 0);
    assert_int_equal(bucket_wait_us(bucket_map_get(&m, "b", 0), 0), 0); /* its own bucket */
    bucket_map_free(&m);
}

static void test_escape_and_length(void **state)
{
    (void)state;
    int cut;
    char *text = telegram_text("warning", "r<1>", "orders", "a < b && c > \"d\"", 4096, &cut);
    assert_string_equal(text, "<b>[WARNING] r&lt;1&gt;</b> (orders)\n"
                              "a &lt; b &amp;&amp; c &gt; &quot;d&quot;");
    assert_false(cut);
    free(text);

    /* UTF-16 units: ASCII 1, é 1 (2 bytes), € 1 (3 bytes), emoji 2 (4 bytes). */
    assert_int_equal(utf16_units("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), 5);
    /* A prefix never splits a character. */
    assert_int_equal(utf8_prefix_units("\xc3\xa9\xc3\xa9", 4, 1), 2);
    assert_int_equal(utf8_prefix_units("a\xf0\x9f\x98\x80", 5, 2), 1);
}

static void test_long_message_is_cut_cleanly(void **state)
{
    (void)state;
    /* 5,000 characters mixing 1-, 2-, 3- and 4-byte UTF-8 and characters
     * that must be escaped. */
    static const char *const pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                         "<", "&"};
    char *msg = malloc(5000 * 4 + 1);
    size_t n = 0;
    for (int i = 0; i < 5000; i++) {
        const char *p = pieces[i % 6];
        memcpy(msg + n, p, strlen(p));
        n += strlen(p);
    }
    msg[n] = '\0';
    int cut;
    char *text = telegram_text("critical", "long", "orders", msg, 4096, &cut);
    assert_true(cut);
    assert_true(utf8_valid(text, strlen(text)));
    /* What the reader sees: unescape and drop the tags, then count. */
    char *seen = malloc(strlen(text) + 1);
    size_t k = 0;
    for (const char *p = text; *p;) {
        if (*p == '<') {
            p = strchr(p, '>') + 1;
        } else if (*p == '&') {
            const char *semi = strchr(p, ';');
            assert_non_null(semi);
            assert_true(semi - p <= 5); /* never a cut entity */
            seen[k++] = 'x';
            p = semi + 1;
        } else {
            seen[k++] = *p++;
        }
    }
    seen[k] = '\0';
    size_t units = utf16_units(seen, k);
    assert_true(units <= 4096);
    assert_true(units >= 4090);
    assert_memory_equal(text + strlen(text) - 3, "\xe2\x80\xa6", 3); /* ends with … */
    free(seen);
    free(text);
    free(msg);
}

/* Anyone may publish to sluice.alerts: a rule name longer than the whole
 * limit once pushed the text past 4096 units, and a severity cut at 15
 * bytes could end inside a character (fuzz/corpus/tgtext/regress-*). */
static void test_foreign_names_are_cut(void **state)
{
    (void)state;
    char *rule = malloc(5001);
    memset(rule, 'r', 5000);
    rule[5000] = '\0';
    int cut;
    char *text = telegram_text("info", rule, "orders", "hello", 4096, &cut);
    assert_false(cut);
    /* 63 r's and "…", then the source and the whole message. */
    const char *shown = strstr(text, "</b> (orders)\nhello");
    assert_non_null(shown);
    assert_memory_equal(shown - 3, "\xe2\x80\xa6", 3);
    assert_int_equal(shown - 3 - strchr(text, 'r'), 63);
    free(text);
    free(rule);

    text = telegram_text("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "r",
                         "s", "m", 4096, &cut);
    assert_true(utf8_valid(text, strlen(text)));
    /* Seven é (14 bytes): the eighth would not fit 15 bytes whole. */
    assert_non_null(strstr(text, "[\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9] r"));
    free(text);
}

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
        cmocka_unit_test(test_routes_match),
        cmocka_unit_test(test_routes_refused),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_escape_and_length),
        cmocka_unit_test(test_long_message_is_cut_cleanly),
        cmocka_unit_test(test_foreign_names_are_cut),
        cmocka_unit_test(test_http_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
