/*
 * http_body: see http_body.h.
 */
#include "http_body.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_scan.h"

body_kind body_kind_of(const char *content_type)
{
    static const char *const ndjson[] = {"application/x-ndjson", "application/ndjson",
                                         "application/jsonl", "application/x-jsonlines",
                                         "application/jsonlines"};
    if (!content_type)
        return BODY_SNIFF;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, "; \t");
    for (size_t i = 0; i < sizeof ndjson / sizeof *ndjson; i++) {
        if (strlen(ndjson[i]) == n && strncasecmp(content_type, ndjson[i], n) == 0)
            return BODY_NDJSON;
    }
    return BODY_SNIFF;
}

const char *body_result_reason(body_result r)
{
    switch (r) {
    case BODY_OK:
        return "ok";
    case BODY_EMPTY:
        return "no_events";
    case BODY_MALFORMED:
        return "malformed_array";
    case BODY_TOO_MANY:
        return "too_many_events";
    case BODY_NO_MEMORY:
        return "out_of_memory";
    }
    return "unknown";
}

typedef struct spans {
    body_span *items;
    size_t count, cap, max;
} spans;

static body_result push(spans *sp, size_t off, size_t len)
{
    if (sp->count >= sp->max)
        return BODY_TOO_MANY;
    if (sp->count == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 16;
        body_span *grown = realloc(sp->items, cap * sizeof *grown);
        if (!grown)
            return BODY_NO_MEMORY;
        sp->items = grown;
        sp->cap = cap;
    }
    sp->items[sp->count++] = (body_span){off, len};
    return BODY_OK;
}

static body_result split_lines(const char *s, size_t len, spans *sp)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - s) : len;
        /* A line's event is its text without the blanks around it (a
         * CRLF's CR among them). */
        size_t start = json_skip_ws(s, end, pos), stop = end;
        while (stop > start && (s[stop - 1] == ' ' || s[stop - 1] == '\t' || s[stop - 1] == '\r'))
            stop--;
        if (start < stop) {
            body_result r = push(sp, start, stop - start);
            if (r != BODY_OK)
                return r;
        }
        pos = end + 1;
    }
    return BODY_OK;
}

static body_result split_array(const char *s, size_t len, size_t start, spans *sp)
{
    json_array_iter it;
    if (json_array_begin(&it, s + start, len - start) != 0)
        return BODY_MALFORMED;
    for (;;) {
        const char *item;
        size_t ilen;
        int rc = json_array_next(&it, &item, &ilen);
        if (rc < 0)
            return BODY_MALFORMED; /* sp->count is the bad element's index */
        if (rc == 0)
            break;
        body_result r = push(sp, (size_t)(item - s), ilen);
        if (r != BODY_OK)
            return r;
    }
    /* The array must be the whole body: only whitespace may follow. */
    return json_skip_ws(s, len, start + it.pos) == len ? BODY_OK : BODY_MALFORMED;
}

body_result body_split(const char *s, size_t len, body_kind kind, size_t max_events,
                       body_span **out, size_t *count)
{
    spans sp = {.max = max_events};
    body_result r;
    size_t start = json_skip_ws(s, len, 0);
    if (start == len) {
        r = BODY_EMPTY;
    } else if (kind == BODY_NDJSON) {
        r = split_lines(s, len, &sp);
    } else if (s[start] == '[') {
        r = split_array(s, len, start, &sp);
    } else {
        /* One value and nothing after it is one event (valid or not, the
         * validator says); anything else is read as lines. */
        size_t vlen = json_value_len(s + start, len - start);
        if (vlen > 0 && json_skip_ws(s, len, start + vlen) == len)
            r = push(&sp, start, vlen);
        else
            r = split_lines(s, len, &sp);
    }
    if (r == BODY_OK && sp.count == 0)
        r = BODY_EMPTY;
    *out = sp.items;
    *count = sp.count;
    return r;
}
