/* Unit tests for finding items in JSON text byte for byte
 * (producer/json_scan.c): table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json_scan.h"

static void test_value_len(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"{}", 2},
        {"{\"a\":[1,{\"b\":\"}\"}]} tail", 19},
        {"\"x\\\"y\",", 6},
        {"12.5e3,", 6},
        {"true]", 4},
        {"[1,[2,[3]]]", 11},
        {"{\"open\":", 0},
        {"\"unterminated", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t got = json_value_len(cases[i].text, strlen(cases[i].text));
        if (got != cases[i].want)
            fail_msg("json_value_len(%s) = %zu, want %zu", cases[i].text, got, cases[i].want);
    }
}

/* Joins the items of an array with '|', or "ERR" where it is malformed. */
static void items(const char *text, char *out, size_t cap)
{
    json_array_iter it;
    out[0] = '\0';
    if (json_array_begin(&it, text, strlen(text)) != 0) {
        snprintf(out, cap, "NOT-ARRAY");
        return;
    }
    const char *item;
    size_t len;
    int rc;
    while ((rc = json_array_next(&it, &item, &len)) == 1)
        snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", out[0] ? "|" : "", (int)len, item);
    if (rc < 0)
        snprintf(out + strlen(out), cap - strlen(out), "%sERR", out[0] ? "|" : "");
}

static void test_array_items(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {" [ {\"a\":1} , 2,\"s,]\" ,[3, 4] ]", "{\"a\":1}|2|\"s,]\"|[3, 4]"},
        {"[]", ""},
        {"\n[\n{\"n\":1}\n]\n", "{\"n\":1}"},
        {"[{\"a\":1} {\"b\":2}]", "{\"a\":1}|ERR"},
        {"[{\"a\":1},", "{\"a\":1}|ERR"},
        {"{\"a\":1}", "NOT-ARRAY"},
    };
    char got[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        items(cases[i].text, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("items(%s) = '%s', want '%s'", cases[i].text, got, cases[i].want);
    }
}

static void test_pointer(void **state)
{
    (void)state;
    const char *doc = "{\"meta\":{\"items\":0},\"data\":{\"items\":[{\"id\":7},{\"id\":8}],"
                      "\"a/b\":1,\"m~n\":2,\"caf\\u00e9\":3,\"q\\\"\":4}}";
    static const struct {
        const char *pointer, *want; /* NULL: not found */
    } cases[] = {
        {"/data/items", "[{\"id\":7},{\"id\":8}]"},
        {"/data/items/1/id", "8"},
        {"/data/items/2", NULL},
        {"/data/items/01", NULL},
        {"/meta/items", "0"},
        {"/data/a~1b", "1"},
        {"/data/m~0n", "2"},
        {"/data/caf\xc3\xa9", "3"},
        {"/data/q\"", "4"},
        {"/nothing", NULL},
        {"/data/items/0/id/deeper", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *out;
        size_t len;
        int rc = json_pointer_find(doc, strlen(doc), cases[i].pointer, &out, &len);
        if (!cases[i].want) {
            if (rc == 0)
                fail_msg("%s found '%.*s', want none", cases[i].pointer, (int)len, out);
            continue;
        }
        if (rc != 0 || len != strlen(cases[i].want) || memcmp(out, cases[i].want, len) != 0)
            fail_msg("%s: rc %d '%.*s', want '%s'", cases[i].pointer, rc, rc ? 0 : (int)len,
                     rc ? "" : out, cases[i].want);
    }
    const char *out;
    size_t len;
    assert_int_equal(json_pointer_find(doc, strlen(doc), "", &out, &len), 0);
    assert_int_equal(len, strlen(doc));
    assert_int_equal(json_pointer_find("{\"a\" 1}", 7, "/a", &out, &len), -2);
    assert_true(json_pointer_valid("/data/items"));
    assert_true(json_pointer_valid(""));
    assert_false(json_pointer_valid("data"));
    assert_false(json_pointer_valid("/a~2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_len),
        cmocka_unit_test(test_array_items),
        cmocka_unit_test(test_pointer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
