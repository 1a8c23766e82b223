/* Unit tests for the HTTP door's pure parts: splitting a request body into
 * events (producer/http_body.c), inflating gzip with a bound
 * (producer/gunzip.c) and checking bearer tokens and HMAC signatures
 * (producer/http_auth.c). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "gunzip.h"
#include "http_auth.h"
#include "http_body.h"

/* Joins the events of a body with '|', then ";" and the result's reason. */
static void split(const char *text, body_kind kind, size_t max, char *out, size_t cap)
{
    body_span *spans = NULL;
    size_t n = 0;
    body_result r = body_split(text, strlen(text), kind, max, &spans, &n);
    out[0] = '\0';
    for (size_t i = 0; r == BODY_OK && i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", i ? "|" : "", (int)spans[i].len,
                 text + spans[i].off);
    if (r != BODY_OK)
        snprintf(out + strlen(out), cap - strlen(out), "%s@%zu", body_result_reason(r), n);
    free(spans);
}

static void test_split(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        body_kind kind;
        const char *want;
    } cases[] = {
        {"{\"a\":1}", BODY_SNIFF, "{\"a\":1}"},
        {"  {\"a\":\n 1}\n", BODY_SNIFF, "{\"a\":\n 1}"}, /* one object over lines */
        {"[{\"a\":1}, {\"b\":[2]} ]\n", BODY_SNIFF, "{\"a\":1}|{\"b\":[2]}"},
        {"[{\"a\":1},2,\"x\"]", BODY_SNIFF, "{\"a\":1}|2|\"x\""}, /* the validator judges */
        {"{\"a\":1}\n{\"b\":2}\n", BODY_SNIFF, "{\"a\":1}|{\"b\":2}"},
        {"{\"a\":1}\r\n\r\n  \n{\"b\":2}", BODY_SNIFF, "{\"a\":1}|{\"b\":2}"},
        {"{\"a\":1}\nnot json\n", BODY_SNIFF, "{\"a\":1}|not json"},
        {"[{\"a\":1}]\n[{\"b\":2}]", BODY_NDJSON, "[{\"a\":1}]|[{\"b\":2}]"},
        {"{\"a\":1}", BODY_NDJSON, "{\"a\":1}"},
        {"{\"open\":", BODY_SNIFF, "{\"open\":"}, /* one bad event, named by the validator */
        {"", BODY_SNIFF, "no_events@0"},
        {" \n\t", BODY_SNIFF, "no_events@0"},
        {"[]", BODY_SNIFF, "no_events@0"},
        {"\n\n", BODY_NDJSON, "no_events@0"},
        {"[{\"a\":1},}", BODY_SNIFF, "malformed_array@1"},
        {"[{\"a\":1}", BODY_SNIFF, "malformed_array@1"},
        {"[{\"a\":1}] {}", BODY_SNIFF, "malformed_array@1"},
        {"[1,2,3,4]", BODY_SNIFF, "too_many_events@3"},
        {"{}\n{}\n{}\n{}", BODY_SNIFF, "too_many_events@3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char got[256];
        split(cases[i].text, cases[i].kind, 3, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: split(%s) = %s, want %s", i, cases[i].text, got, cases[i].want);
    }
}

static void test_kind_of(void **state)
{
    (void)state;
    assert_int_equal(body_kind_of(NULL), BODY_SNIFF);
    assert_int_equal(body_kind_of("application/json"), BODY_SNIFF);
    assert_int_equal(body_kind_of("application/x-ndjson"), BODY_NDJSON);
    assert_int_equal(body_kind_of(" Application/X-NDJSON; charset=utf-8"), BODY_NDJSON);
    assert_int_equal(body_kind_of("application/jsonl"), BODY_NDJSON);
    assert_int_equal(body_kind_of("application/x-ndjsonx"), BODY_SNIFF);
}

/* gzip of text, by zlib's own deflate. */
static size_t gzip_of(const char *text, size_t len, unsigned char *out, size_t cap)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)text;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static void test_gunzip(void **state)
{
    (void)state;
    static char big[200000];
    static unsigned char gz[400000];
    memset(big, 'a', sizeof big);
    buf out = {0};
    size_t n = gzip_of("{\"a\":1}\n", 8, gz, sizeof gz);
    assert_int_equal(gunzip(gz, n, 100, &out), GUNZIP_OK);
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, "{\"a\":1}\n", 8);
    /* Two members one after the other are one body. */
    size_t n2 = gzip_of("{\"b\":2}", 7, gz + n, sizeof gz - n);
    assert_int_equal(gunzip(gz, n + n2, 100, &out), GUNZIP_OK);
    assert_int_equal(out.len, 15);
    assert_int_equal(gunzip(gz, n - 1, 100, &out), GUNZIP_CORRUPT); /* cut short */
    assert_int_equal(gunzip("{\"a\":1}", 7, 100, &out), GUNZIP_CORRUPT);
    assert_int_equal(gunzip("", 0, 100, &out), GUNZIP_CORRUPT);
    /* 200 kB of one letter deflates to a few hundred bytes: the bound is on
     * what it inflates to. */
    n = gzip_of(big, sizeof big, gz, sizeof gz);
    assert_true(n < 2000);
    assert_int_equal(gunzip(gz, n, sizeof big - 1, &out), GUNZIP_TOO_LARGE);
    assert_int_equal(gunzip(gz, n, sizeof big, &out), GUNZIP_OK);
    assert_int_equal(out.len, sizeof big);
    buf_free(&out);
}

static void test_bearer(void **state)
{
    (void)state;
    auth_tokens t = {0};
    assert_int_equal(auth_bearer_ok(&t, "Bearer x"), 0); /* no token accepts nothing */
    assert_int_equal(auth_tokens_add(&t, "old-token", 9), 0);
    assert_int_equal(auth_tokens_add(&t, "new-token", 9), 0);
    assert_int_equal(auth_tokens_add(&t, "with space", 10), -1);
    assert_int_equal(auth_tokens_add(&t, "", 0), -1);
    static const struct {
        const char *header;
        int want;
    } cases[] = {
        {"Bearer old-token", 1},
        {"Bearer new-token", 1},
        {"bearer new-token", 1},
        {"Bearer  new-token ", 1},
        {"Bearer new-toke", 0},
        {"Bearer new-token2", 0},
        {"Bearer ", 0},
        {"Basic new-token", 0},
        {"new-token", 0},
        {"", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (auth_bearer_ok(&t, cases[i].header) != cases[i].want)
            fail_msg("auth_bearer_ok(%s) != %d", cases[i].header ? cases[i].header : "NULL",
                     cases[i].want);
    }
    auth_tokens_free(&t);
    assert_int_equal(t.count, 0);
}

static void test_signature(void **state)
{
    (void)state;
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
    static const char want[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    static const char body[] = "what do ya want for nothing?";
    char header[128];
    snprintf(header, sizeof header, "sha256=%s", want);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", header, body, strlen(body)), 1);
    for (char *p = header + 7; *p; p++)
        *p = (char)(*p >= 'a' ? *p - 32 : *p); /* upper-case hex */
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", header, body, strlen(body)), 1);
    assert_int_equal(auth_signature_ok("Jefe", 4, "", want, body, strlen(body)), 1);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", want, body, strlen(body)), 0);
    assert_int_equal(auth_signature_ok("Jeff", 4, "sha256=", header, body, strlen(body)), 0);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", header, body, strlen(body) - 1), 0);
    header[20] = header[20] == '0' ? '1' : '0';
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", header, body, strlen(body)), 0);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", "sha256=abc", body, 28), 0);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", NULL, body, 28), 0);
    snprintf(header, sizeof header, "sha256=%.63sg", want);
    assert_int_equal(auth_signature_ok("Jefe", 4, "sha256=", header, body, strlen(body)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),     cmocka_unit_test(test_kind_of),
        cmocka_unit_test(test_gunzip),    cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
