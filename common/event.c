/*
 * event: see event.h. Bodies are checked by a small scanner that accepts
 * what PostgreSQL's jsonb input accepts and allocates nothing; the worker
 * still isolates any row PostgreSQL refuses, so this check is a fast path,
 * not the last line of defence.
 */
#include "event.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct event_validator {
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

int source_name_reserved(const char *name)
{
    return strcmp(name, "notifier") == 0 || strcmp(name, SLUICE_UNROUTED_NAME) == 0;
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
    case EVENT_UNKNOWN_SOURCE:
        return "unknown_source";
    }
    return "unknown";
}

event_validator *event_validator_new(size_t max_bytes)
{
    event_validator *v = calloc(1, sizeof *v);
    if (v)
        v->max_bytes = max_bytes;
    return v;
}

void event_validator_free(event_validator *v)
{
    free(v);
}

/*
 * A strict RFC 8259 scanner that builds nothing: it only decides whether
 * PostgreSQL's jsonb input would take the text. Beyond plain JSON, jsonb
 * refuses \u0000 and unpaired UTF-16 surrogate escapes.
 */
typedef struct scanner {
    const unsigned char *p, *end;
    event_verdict failure; /* first hard failure, EVENT_OK while none */
    int nul_escape;        /* saw \u0000: valid JSON, refused by jsonb */
} scanner;

static int scan_fail(scanner *s, event_verdict why)
{
    if (s->failure == EVENT_OK)
        s->failure = why;
    return -1;
}

static void skip_blanks(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(scanner *s, unsigned *out)
{
    unsigned v = 0;
    if (s->end - s->p < 4)
        return scan_fail(s, EVENT_BAD_JSON);
    for (int i = 0; i < 4; i++) {
        unsigned c = *s->p++, d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return scan_fail(s, EVENT_BAD_JSON);
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static int scan_escape(scanner *s)
{
    if (s->p >= s->end)
        return scan_fail(s, EVENT_BAD_JSON);
    unsigned char c = *s->p++;
    if (strchr("\"\\/bfnrt", c) && c != '\0')
        return 0;
    if (c != 'u')
        return scan_fail(s, EVENT_BAD_JSON);
    unsigned cp;
    if (hex4(s, &cp) != 0)
        return -1;
    if (cp == 0)
        s->nul_escape = 1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return scan_fail(s, EVENT_BAD_JSON); /* low surrogate without a high one */
    if (cp >= 0xd800 && cp <= 0xdbff) {
        unsigned low;
        if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
            return scan_fail(s, EVENT_BAD_JSON);
        s->p += 2;
        if (hex4(s, &low) != 0)
            return -1;
        if (low < 0xdc00 || low > 0xdfff)
            return scan_fail(s, EVENT_BAD_JSON);
    }
    return 0;
}

static int scan_string(scanner *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return scan_fail(s, EVENT_BAD_JSON);
        if (c == '\\') {
            s->p++;
            if (scan_escape(s) != 0)
                return -1;
            continue;
        }
        if (c < 0x80) {
            s->p++;
            continue;
        }
        /* Find the end of this run of non-ASCII bytes and check it whole. */
        const unsigned char *run = s->p;
        while (s->p < s->end && *s->p >= 0x80)
            s->p++;
        if (!utf8_valid((const char *)run, (size_t)(s->p - run)))
            return scan_fail(s, EVENT_BAD_UTF8);
    }
    return scan_fail(s, EVENT_BAD_JSON);
}

static int digits(scanner *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : scan_fail(s, EVENT_BAD_JSON);
}

static int scan_number(scanner *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (digits(s) != 0)
            return -1;
    }
    return 0;
}

static int scan_word(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return scan_fail(s, EVENT_BAD_JSON);
    s->p += n;
    return 0;
}

static int scan_value(scanner *s, int depth);

/* Objects and arrays: open, items separated by commas, close. */
static int scan_container(scanner *s, int depth, int is_object)
{
    char close = is_object ? '}' : ']';
    if (depth >= EVENT_MAX_DEPTH)
        return scan_fail(s, EVENT_BAD_JSON);
    s->p++;
    skip_blanks(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (is_object) {
            skip_blanks(s);
            if (s->p >= s->end || *s->p != '"' || scan_string(s) != 0)
                return scan_fail(s, EVENT_BAD_JSON);
            skip_blanks(s);
            if (s->p >= s->end || *s->p++ != ':')
                return scan_fail(s, EVENT_BAD_JSON);
        }
        if (scan_value(s, depth + 1) != 0)
            return -1;
        skip_blanks(s);
        if (s->p >= s->end)
            return scan_fail(s, EVENT_BAD_JSON);
        char c = (char)*s->p++;
        if (c == close)
            return 0;
        if (c != ',')
            return scan_fail(s, EVENT_BAD_JSON);
    }
}

static int scan_value(scanner *s, int depth)
{
    skip_blanks(s);
    if (s->p >= s->end)
        return scan_fail(s, EVENT_BAD_JSON);
    switch (*s->p) {
    case '{':
        return scan_container(s, depth, 1);
    case '[':
        return scan_container(s, depth, 0);
    case '"':
        return scan_string(s);
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return scan_fail(s, EVENT_BAD_JSON);
    }
}

event_verdict event_validate(event_validator *v, const void *body, size_t len)
{
    if (len > v->max_bytes)
        return EVENT_TOO_LARGE;
    scanner s = {.p = body, .end = (const unsigned char *)body + len, .failure = EVENT_OK};
    skip_blanks(&s);
    int is_object = s.p < s.end && *s.p == '{';
    if (scan_value(&s, 0) == 0) {
        skip_blanks(&s);
        if (s.p != s.end)
            scan_fail(&s, EVENT_BAD_JSON);
    }
    if (s.failure != EVENT_OK)
        return s.failure;
    if (!is_object)
        return EVENT_NOT_OBJECT;
    return s.nul_escape ? EVENT_NUL_CHAR : EVENT_OK;
}

void event_sha256_id(const id_part *parts, size_t nparts, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < nparts; i++)
        ok = EVP_DigestUpdate(ctx, parts[i].bytes, parts[i].len) == 1;
    /* Only allocation can fail here; an all-zero id then still has the
     * id's shape rather than leaving out unwritten. */
    if (!ok || EVP_DigestFinal_ex(ctx, digest, &dlen) != 1)
        dlen = 0;
    EVP_MD_CTX_free(ctx);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        unsigned char b = i < dlen ? digest[i] : 0;
        out[7 + 2 * i] = hex[b >> 4];
        out[8 + 2 * i] = hex[b & 15];
    }
    out[EVENT_SHA256_ID_LEN] = '\0';
}

void event_derive_id(const char *source, const void *body, size_t len, char *out)
{
    /* The NUL separates source from body. */
    id_part parts[] = {{source, strlen(source) + 1}, {body, len}};
    event_sha256_id(parts, 2, out);
}

/* Times from 10^17 us on (the year 5138) are no one's production time, and
 * PostgreSQL's timestamptz would refuse the largest, failing a whole
 * batch's COPY over one header. */
#define PRODUCED_AT_MAX_US INT64_C(100000000000000000)

/* A header's value as an integer: any integer kind, or decimal text (a
 * foreign publisher's header may be a string). *ok = 0 if it is neither. */
static int64_t header_int(const amqp_field_value_t *v, int *ok)
{
    *ok = 1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        return (int64_t)v->value.u64;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
        /* The whole text must be the number: not cut to fit, and no NUL
         * byte ending it early. */
        char text[32];
        size_t n = v->value.bytes.len;
        if (n >= sizeof text)
            break;
        memcpy(text, v->value.bytes.bytes, n);
        text[n] = '\0';
        char *end;
        long long x = strtoll(text, &end, 10);
        if (end != text && end == text + n)
            return x;
        break;
    }
    default:
        break;
    }
    *ok = 0;
    return 0;
}

int64_t event_produced_at_us(const amqp_basic_properties_t *p)
{
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            if (e->key.len == sizeof SLUICE_HEADER_PRODUCED_AT - 1 &&
                memcmp(e->key.bytes, SLUICE_HEADER_PRODUCED_AT, e->key.len) == 0) {
                int ok;
                int64_t us = header_int(&e->value, &ok);
                if (ok && us > 0 && us < PRODUCED_AT_MAX_US)
                    return us;
            }
        }
    }
    if ((p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) && p->timestamp > 0 &&
        p->timestamp < (uint64_t)(PRODUCED_AT_MAX_US / 1000000))
        return (int64_t)p->timestamp * 1000000;
    return 0;
}
