/*
 * event: see event.h. JSON is checked with json-c in strict mode with UTF-8
 * validation, which is close to what PostgreSQL's jsonb input accepts; the
 * worker still isolates any row PostgreSQL refuses, so this check is a fast
 * path, not the last line of defence.
 */
#include "event.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct event_validator {
    json_tokener *tok;
    size_t max_bytes;
};

int source_name_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if ((size_t)(end - p) < n)
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n;
    }
    return 1;
}

const char *event_verdict_reason(event_verdict v)
{
    switch (v) {
    case EVENT_OK:
        return "ok";
    case EVENT_TOO_LARGE:
        return "too_large";
    case EVENT_BAD_UTF8:
        return "invalid_utf8";
    case EVENT_BAD_JSON:
        return "invalid_json";
    case EVENT_NOT_OBJECT:
        return "not_an_object";
    case EVENT_NUL_CHAR:
        return "nul_character";
    }
    return "unknown";
}

event_validator *event_validator_new(size_t max_bytes)
{
    event_validator *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    /* jsonb nests far deeper than json-c's default of 32 levels. */
    v->tok = json_tokener_new_ex(1000);
    if (!v->tok) {
        free(v);
        return NULL;
    }
    json_tokener_set_flags(v->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    v->max_bytes = max_bytes;
    return v;
}

void event_validator_free(event_validator *v)
{
    if (!v)
        return;
    json_tokener_free(v->tok);
    free(v);
}

/* Backslashes only occur inside JSON strings, so "\u0000" preceded by an
 * even number of further backslashes is an escaped NUL, while "\\u0000" is
 * the literal text \u0000. */
static int has_nul_escape(const char *s, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (s[i] != '\\' || memcmp(s + i + 1, "u0000", 5) != 0)
            continue;
        size_t run = 0;
        while (run < i && s[i - 1 - run] == '\\')
            run++;
        if (run % 2 == 0)
            return 1;
    }
    return 0;
}

static int only_blanks(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    }
    return 1;
}

event_verdict event_validate(event_validator *v, const void *body, size_t len)
{
    const char *text = body;
    if (len > v->max_bytes)
        return EVENT_TOO_LARGE;
    if (memchr(text, '\0', len))
        return EVENT_BAD_JSON; /* a raw NUL byte is never valid JSON */

    json_tokener_reset(v->tok);
    json_object *obj = json_tokener_parse_ex(v->tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(v->tok);
    if (!obj) {
        if (jerr == json_tokener_error_parse_utf8_string)
            return EVENT_BAD_UTF8;
        return EVENT_BAD_JSON;
    }
    size_t end = json_tokener_get_parse_end(v->tok);
    event_verdict verdict = EVENT_OK;
    if (!only_blanks(text + end, len - end))
        verdict = EVENT_BAD_JSON;
    else if (!json_object_is_type(obj, json_type_object))
        verdict = EVENT_NOT_OBJECT;
    else if (has_nul_escape(text, len))
        verdict = EVENT_NUL_CHAR;
    json_object_put(obj);
    return verdict;
}

void event_derive_id(const char *source, const void *body, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, source, strlen(source) + 1); /* the NUL separates source from body */
    EVP_DigestUpdate(ctx, body, len);
    EVP_DigestFinal_ex(ctx, digest, &dlen);
    EVP_MD_CTX_free(ctx);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[digest[i] >> 4];
        out[8 + 2 * i] = hex[digest[i] & 15];
    }
    out[EVENT_DERIVED_ID_LEN] = '\0';
}
