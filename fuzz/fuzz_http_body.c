/*
 * fuzz_http_body: the HTTP door's parsers of what a client sends
 * (adapter http_server): the body splitter (producer/http_body.c) and the
 * signature check (producer/http_auth.c).
 *
 * Input: one byte choosing the part (even: splitter, odd: signature), then
 *  - splitter: one byte of options (bit 0: Content-Type says NDJSON; the
 *    rest, plus 1, is max_events), then the body;
 *  - signature: one byte n and n bytes of secret (as many as there are),
 *    one byte m and m bytes of prefix, the header up to a NUL, the body.
 *
 * Properties checked, not only the absence of crashes:
 *  - every span lies inside the body, spans come in order without
 *    overlapping, none is empty or starts or ends with JSON whitespace;
 *    there are at most max_events of them, and at least one unless the
 *    result says there is none; splitting again gives the same;
 *  - NDJSON (said or sniffed): the spans are exactly the non-blank lines,
 *    each without the blanks around it, counted independently here; an
 *    array's elements each have json_value_len equal to their length; a
 *    body that is one value is one span, the body trimmed;
 *  - the signature is accepted exactly when the header is the prefix and
 *    the 64 hex digits (any case, trailing blanks allowed) of the HMAC
 *    computed here, and a header made that way is always accepted.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "http_auth.h"
#include "http_body.h"
#include "json_scan.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Non-blank lines of s, counted without the splitter. */
static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\n') {
            int blank = 1;
            for (size_t k = start; k < i; k++)
                blank &= is_ws(s[k]);
            n += !blank;
            start = i + 1;
        }
    }
    return n;
}

static void fuzz_split(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    body_kind kind = (data[0] & 1) ? BODY_NDJSON : BODY_SNIFF;
    size_t max = (size_t)(data[0] >> 1) + 1;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    body_span *spans = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    body_result r = body_split(s, len, kind, max, &spans, &n);
    body_result r2 = body_split(s, len, kind, max, &again, &n2);
    CHECK(r == r2 && n == n2, "not stable: %d/%zu then %d/%zu", r, n, r2, n2);
    CHECK(n == 0 || memcmp(spans, again, n * sizeof *spans) == 0, "spans differ on a rerun");
    CHECK(n <= max, "%zu spans over max %zu", n, max);
    CHECK(r != BODY_OK || n >= 1, "ok without an event");
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const body_span *sp = &spans[i];
        CHECK(sp->len > 0 && sp->off >= end && sp->off + sp->len <= len,
              "span %zu [%zu,+%zu) out of place (previous end %zu, body %zu)", i, sp->off, sp->len,
              end, len);
        CHECK(!is_ws(s[sp->off]) && !is_ws(s[sp->off + sp->len - 1]), "span %zu has edge blanks",
              i);
        end = sp->off + sp->len;
    }
    size_t first = json_skip_ws(s, len, 0);
    int lines = kind == BODY_NDJSON;
    if (!lines && first < len && s[first] != '[') {
        size_t v = json_value_len(s + first, len - first);
        if (v > 0 && json_skip_ws(s, len, first + v) == len) {
            CHECK(r == BODY_OK && n == 1 && spans[0].off == first && spans[0].len == v,
                  "one value is not one span");
        } else {
            lines = 1;
        }
    }
    if (lines) {
        size_t want = count_lines(s, len);
        if (r == BODY_OK)
            CHECK(n == want, "%zu spans for %zu non-blank lines", n, want);
        else if (r == BODY_TOO_MANY)
            CHECK(want > max, "too many with %zu lines, max %zu", want, max);
        else
            CHECK(r == BODY_EMPTY && want == 0, "lines: result %d with %zu lines", r, want);
        for (size_t i = 0; r == BODY_OK && i < n; i++)
            CHECK(!memchr(s + spans[i].off, '\n', spans[i].len), "a line span holds a newline");
    } else if (first < len) { /* an array */
        for (size_t i = 0; i < n; i++)
            CHECK(json_value_len(s + spans[i].off, spans[i].len) == spans[i].len,
                  "element %zu is not one value", i);
    } else {
        CHECK(r == BODY_EMPTY, "a blank body gave %d", r);
    }
    free(spans);
    free(again);
}

static void fuzz_signature(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    size_t slen = pos < size ? data[pos++] : 0;
    if (slen > size - pos)
        slen = size - pos;
    const uint8_t *secret = data + pos;
    pos += slen;
    size_t plen = pos < size ? data[pos++] % 17 : 0;
    if (plen > size - pos)
        plen = size - pos;
    char prefix[17] = "", header[512] = "";
    memcpy(prefix, data + pos, plen);
    prefix[strlen(prefix)] = '\0'; /* a NUL inside cuts the prefix short */
    pos += plen;
    const uint8_t *nul = memchr(data + pos, 0, size - pos);
    size_t hlen = nul ? (size_t)(nul - (data + pos)) : size - pos;
    if (hlen >= sizeof header)
        hlen = sizeof header - 1;
    memcpy(header, data + pos, hlen);
    header[hlen] = '\0';
    pos += hlen + (nul ? 1 : 0);
    if (pos > size)
        pos = size;
    const uint8_t *body = data + pos;
    size_t blen = size - pos;

    unsigned char mac[32];
    unsigned int mlen = 0;
    static const unsigned char empty[1];
    CHECK(HMAC(EVP_sha256(), slen ? secret : empty, (int)slen, blen ? body : empty, blen, mac,
               &mlen) &&
              mlen == 32,
          "HMAC failed");
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);

    /* The reference: prefix, then the hex in any case, then blanks. */
    size_t pl = strlen(prefix);
    size_t hl = strlen(header);
    while (hl > pl && (header[hl - 1] == ' ' || header[hl - 1] == '\t'))
        hl--;
    int want =
        strncmp(header, prefix, pl) == 0 && hl == pl + 64 && strncasecmp(header + pl, hex, 64) == 0;
    int got =
        auth_signature_ok(slen ? secret : empty, slen, prefix, header, blen ? body : empty, blen);
    CHECK(got == want, "accepted=%d, reference %d, header '%s' prefix '%s'", got, want, header,
          prefix);
    char right[128];
    snprintf(right, sizeof right, "%s%s", prefix, hex);
    CHECK(auth_signature_ok(slen ? secret : empty, slen, prefix, right, blen ? body : empty,
                            blen) == 1,
          "the right signature refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_split(data + 1, size - 1);
    else
        fuzz_signature(data + 1, size - 1);
    return 0;
}
