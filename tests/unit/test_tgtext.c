/* Unit tests for Telegram's text of an alert (notifier/tgtext.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "tgtext.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_and_length),
        cmocka_unit_test(test_long_message_is_cut_cleanly),
        cmocka_unit_test(test_foreign_names_are_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
