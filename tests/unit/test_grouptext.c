/* Unit tests for group texts and their split into parts
 * (notifier/grouptext.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "grouptext.h"

static void test_group_text(void **state)
{
    (void)state;
    char n[32];
    static const struct {
        long n;
        const char *text;
    } numbers[] = {
        {0, "0"}, {999, "999"}, {1000, "1,000"}, {1316, "1,316"}, {1234567, "1,234,567"}};
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        group_thousands(numbers[i].n, n, sizeof n);
        assert_string_equal(n, numbers[i].text);
    }
    alert shown[2] = {
        {.alert_id = "a",
         .rule = "checkout_search",
         .severity = "info",
         .source = "clickstream",
         .message = "s-1 searched <b>"},
        {.alert_id = "b",
         .rule = "checkout_search",
         .severity = "info",
         .source = "clickstream",
         .message = "s-2 & more"},
    };
    char *text = group_text(shown, 2, 1316, 30.2, "checkout_search", 0);
    assert_string_equal(text, "<b>[INFO] checkout_search</b>: 1,316 alerts in 30 s\n"
                              "\xe2\x80\xa2 (clickstream) s-1 searched &lt;b&gt;\n"
                              "\xe2\x80\xa2 (clickstream) s-2 &amp; more\n"
                              "\xe2\x80\xa6 and 1,314 more");
    free(text);
    /* One alert reads as it did before grouping. */
    text = group_text(shown, 1, 1, 0, "checkout_search", 0);
    assert_string_equal(text,
                        "<b>[INFO] checkout_search</b> (clickstream)\ns-1 searched &lt;b&gt;");
    free(text);
    /* Not grouped by rule: each line names its rule. */
    text = group_text(shown, 2, 2, 1.5, "info", 1);
    assert_non_null(strstr(text, "\xe2\x80\xa2 checkout_search (clickstream) s-2"));
    assert_non_null(strstr(text, "2 alerts in 1.5 s"));
    free(text);
}

/* Units as Telegram counts them: tags nothing, an entity one. */
static size_t parsed_units(const char *s)
{
    size_t n = 0;
    while (*s) {
        if (*s == '<') {
            s = strchr(s, '>') + 1;
        } else if (*s == '&') {
            s = strchr(s, ';') + 1;
            n++;
        } else {
            size_t k = 1;
            while ((s[k] & 0xc0) == 0x80)
                k++;
            n += k == 4 ? 2 : 1;
            s += k;
        }
    }
    return n;
}

static void test_group_split(void **state)
{
    (void)state;
    /* Lines of 30 characters with entities and 4-byte characters: every
     * part within the limit, never a cut entity or character, at a line
     * break where one is in the second half, and nothing lost. */
    char text[8192] = "<b>[INFO] r</b>: 200 alerts in 1 s\n";
    for (int i = 0; i < 120; i++)
        strcat(text, "\xe2\x80\xa2 a &amp; b \xf0\x9f\x94\xa5 cdefghijklmnopq\n");
    static const size_t limits[] = {100, 64, 4096, 7};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
        char **parts;
        size_t n = group_split(text, limits[l], &parts);
        assert_true(n >= 1);
        char whole[8192] = "";
        for (size_t i = 0; i < n; i++) {
            assert_true(parsed_units(parts[i]) <= limits[l]);
            assert_true(utf8_valid(parts[i], strlen(parts[i])));
            /* An entity is never split: a part holds whole ones only. */
            const char *amp = strrchr(parts[i], '&');
            assert_true(!amp || strchr(amp, ';'));
            if (limits[l] >= 64 && i + 1 < n)
                assert_int_equal(parts[i][strlen(parts[i]) - 1], '\n');
            strcat(whole, parts[i]);
        }
        assert_string_equal(whole, text);
        if (limits[l] == 4096)
            assert_int_equal(n, 1);
        group_parts_free(parts, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_text),
        cmocka_unit_test(test_group_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
