/*
 * fuzz_event: the message contract's checks of common/event.c on any body
 * an AMQP publisher may send.
 *
 * Properties checked, not only the absence of crashes:
 *  - utf8_valid() agrees with an independent check written from the
 *    Unicode standard's table of well-formed sequences (check.h);
 *  - event_validate() agrees with json-c's strict parser on what is one
 *    JSON object. The known, harmless differences are allowed and nothing
 *    else. event_validate refuses, as RFC 8259 and jsonb do, four things
 *    json-c's strict mode takes: raw control characters inside strings,
 *    unpaired UTF-16 surrogate escapes (json-c makes them U+FFFD), numbers
 *    with leading zeros or other forms outside RFC 8259's grammar, and
 *    NaN, Infinity and -Infinity;
 *    it flags \u0000 (valid JSON that jsonb refuses) as EVENT_NUL_CHAR; at
 *    the nesting limit (1,000) json-c counts levels differently; with a
 *    json-c whose strict mode refuses all non-ASCII text (0.18), only on
 *    ASCII bodies (jsonc_oracle.h);
 *  - a body that is not UTF-8 is never EVENT_OK, EVENT_NOT_OBJECT or
 *    EVENT_NUL_CHAR;
 *  - event_derive_id() is stable (the same input gives the same id) and is
 *    SHA-256 of source, NUL, body, computed here in one call over the
 *    input: the bytes before the input's first NUL are the source;
 *  - source_name_valid() is [a-z0-9_-]{1,64}.
 */
#include <json-c/json.h>
#include <openssl/evp.h>
#include <string.h>

#include "check.h"
#include "event.h"
#include "jsonc_oracle.h"

/* json-c counts the innermost value as a level (see event.h). */
#define DEPTH (EVENT_MAX_DEPTH + 1)

static int is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json-c's strict parser's verdict: 1 if the whole text is one JSON object
 * (surrounding whitespace allowed), 0 if it is another JSON value, -1 if it
 * is not JSON. */
static int jsonc_verdict(const uint8_t *data, size_t size)
{
    /* A trailing blank ends a top-level number, which json-c would
     * otherwise wait for more digits of. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = ' ';
    json_tokener *tok = json_tokener_new_ex(DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)size + 1);
    int verdict = -1;
    if (json_tokener_get_error(tok) == json_tokener_success) { /* o is NULL for null */
        size_t end = json_tokener_get_parse_end(tok);
        while (end < size + 1 && is_blank((uint8_t)text[end]))
            end++;
        if (end == size + 1)
            verdict = json_object_is_type(o, json_type_object) ? 1 : 0;
    }
    json_object_put(o);
    json_tokener_free(tok);
    free(text);
    return verdict;
}

/* RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int rfc_number(const uint8_t *s, size_t n)
{
    size_t i = 0;
#define DIGITS(min)                                                                                \
    do {                                                                                           \
        size_t from = i;                                                                           \
        while (i < n && s[i] >= '0' && s[i] <= '9')                                                \
            i++;                                                                                   \
        if (i - from < (min))                                                                      \
            return 0;                                                                              \
    } while (0)
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        DIGITS(1);
    else
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        DIGITS(1);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        DIGITS(1);
    }
#undef DIGITS
    return i == n;
}

static void blot(char **copy, const uint8_t *data, size_t size, size_t at, const char *with,
                 size_t n)
{
    if (!*copy) {
        *copy = malloc(size);
        memcpy(*copy, data, size);
    }
    memcpy(*copy + at, with, n);
}

/* A copy of the text without what json-c's strict mode lets through but
 * RFC 8259 and PostgreSQL's jsonb refuse, or NULL if there is none of it.
 * Inside strings, every \u escape of a UTF-16 surrogate becomes \u0041 and
 * every raw control character a space; outside, NaN, Infinity, -Infinity
 * and a number RFC 8259 does not allow (leading zeros, "1.", ...) become 0
 * and spaces. Lengths stay the same. */
static char *json_c_leniencies_removed(const uint8_t *data, size_t size)
{
    char *copy = NULL;
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        if (!in_string) {
            static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
            size_t w = 0;
            while (w < 3 && (size - i < strlen(words[w]) ||
                             memcmp(data + i, words[w], strlen(words[w])) != 0))
                w++;
            if (w < 3) {
                blot(&copy, data, size, i, "0        ", strlen(words[w]));
                i += strlen(words[w]) - 1;
                continue;
            }
            in_string = data[i] == '"';
            if (!in_string && (data[i] == '-' || (data[i] >= '0' && data[i] <= '9'))) {
                size_t n = 0;
                while (i + n < size && data[i + n] && strchr("0123456789+-.eE", data[i + n]))
                    n++;
                if (!rfc_number(data + i, n)) {
                    blot(&copy, data, size, i, "0", 1);
                    for (size_t k = 1; k < n; k++)
                        blot(&copy, data, size, i + k, " ", 1);
                }
                i += n - 1;
            }
            continue;
        }
        if (data[i] == '"') {
            in_string = 0;
        } else if (data[i] < 0x20) {
            blot(&copy, data, size, i, " ", 1);
        } else if (data[i] == '\\' && i + 1 < size) {
            if (data[i + 1] == 'u' && i + 5 < size && (data[i + 2] | 0x20) == 'd' &&
                strchr("89abcdefABCDEF", data[i + 3]) && data[i + 3])
                blot(&copy, data, size, i + 2, "0041", 4);
            i++;
        }
    }
    return copy;
}

/* The deepest nesting of objects and arrays in the text. */
static size_t nesting(const uint8_t *data, size_t size)
{
    size_t depth = 0, deepest = 0;
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        if (in_string) {
            if (data[i] == '\\')
                i++;
            else if (data[i] == '"')
                in_string = 0;
        } else if (data[i] == '"') {
            in_string = 1;
        } else if (data[i] == '{' || data[i] == '[') {
            if (++depth > deepest)
                deepest = depth;
        } else if ((data[i] == '}' || data[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

static void check_json(const uint8_t *data, size_t size)
{
    event_validator *v = event_validator_new(SLUICE_MAX_MESSAGE_BYTES);
    event_verdict verdict = event_validate(v, data, size);
    CHECK(event_validate(v, data, size) == verdict, "the same body, another verdict");
    int utf8 = ref_utf8_valid(data, size);
    if (!utf8) {
        CHECK(verdict == EVENT_BAD_UTF8 || verdict == EVENT_BAD_JSON, "not UTF-8, yet %s",
              event_verdict_reason(verdict));
        event_validator_free(v);
        return;
    }
    CHECK(verdict != EVENT_BAD_UTF8, "UTF-8, yet %s", event_verdict_reason(verdict));
    if (!jsonc_oracle_covers(data, size)) {
        event_validator_free(v);
        return;
    }
    int jc = jsonc_verdict(data, size);
    /* The contract's question is "one JSON object?": invalid JSON and other
     * values are both refused (only the reason differs). */
    int ours = verdict == EVENT_OK || verdict == EVENT_NUL_CHAR;
    if (verdict == EVENT_NOT_OBJECT)
        CHECK(jc == 0, "event_validate says valid JSON but no object, json-c strict says %d", jc);
    if (jc == -1)
        CHECK(ours == 0, "event_validate says %s, json-c strict says not JSON",
              event_verdict_reason(verdict));
    /* At the depth limit json-c, counting differently (see event.h), takes
     * 1,001 empty containers that event.c refuses: harmless. */
    if (ours != (jc == 1) && nesting(data, size) >= EVENT_MAX_DEPTH)
        jc = ours ? 1 : -1;
    if (ours != (jc == 1)) {
        /* The differences allowed: event.c refuses what json-c takes only
         * for its leniencies; with them removed both agree. */
        char *plain = json_c_leniencies_removed(data, size);
        CHECK(plain && !ours, "event_validate says %s, json-c strict says %d",
              event_verdict_reason(verdict), jc);
        event_verdict again = event_validate(v, plain, size);
        CHECK(again == EVENT_OK || again == EVENT_NUL_CHAR,
              "without json-c's leniencies event_validate says %s, json-c takes it",
              event_verdict_reason(again));
        free(plain);
    }
    event_validator_free(v);
}

static void check_id(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    char source[64 + 1] = "fuzz";
    const uint8_t *body = data;
    size_t body_len = size;
    uint8_t *whole = NULL; /* source, NUL, body: what the id is the digest of */
    size_t whole_len;
    if (nul && (size_t)(nul - data) < sizeof source) {
        memcpy(source, data, (size_t)(nul - data) + 1);
        body = nul + 1;
        body_len = size - (size_t)(nul - data) - 1;
        whole = (uint8_t *)data;
        whole_len = size;
    } else {
        whole_len = 5 + size;
        whole = malloc(whole_len);
        memcpy(whole, "fuzz", 5);
        memcpy(whole + 5, data, size);
    }
    char id[EVENT_DERIVED_ID_LEN + 1], again[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id(source, body, body_len, id);
    event_derive_id(source, body, body_len, again);
    CHECK(strcmp(id, again) == 0, "two ids for one message: %s %s", id, again);

    unsigned char digest[32];
    unsigned dlen = 0;
    CHECK(EVP_Digest(whole, whole_len, digest, &dlen, EVP_sha256(), NULL) == 1, "EVP_Digest");
    char want[EVENT_DERIVED_ID_LEN + 1] = "sha256:";
    for (unsigned i = 0; i < 32; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", digest[i]);
    CHECK(strcmp(id, want) == 0, "id %s, sha256 of source NUL body is %s", id, want);
    if (whole != data)
        free(whole);

    size_t n = strlen(source);
    int want_valid =
        n >= 1 && n <= 64 && strspn(source, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
    CHECK(source_name_valid(source) == want_valid, "source_name_valid(\"%s\")", source);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CHECK(utf8_valid((const char *)data, size) == ref_utf8_valid(data, size),
          "utf8_valid disagrees with Table 3-7 on %zu bytes", size);
    check_json(data, size);
    check_id(data, size);
    return 0;
}
