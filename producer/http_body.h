/*
 * http_body: splits the body of a request to the HTTP door (adapter
 * http_server) into its events, without building a tree, so each event is
 * published byte for byte as the client sent it. A body is one JSON
 * object, a JSON array of objects, or NDJSON (one object per line); what
 * Content-Type says decides NDJSON, and otherwise the first byte does.
 * The splitter finds where each event lies; whether an event is a valid
 * one (UTF-8, one JSON object, size) is event_validate()'s to say.
 * Pure and allocation-free apart from the spans array.
 */
#ifndef SLUICE_HTTP_BODY_H
#define SLUICE_HTTP_BODY_H

#include <stddef.h>

typedef enum {
    BODY_SNIFF = 0, /* no or another Content-Type: the first byte decides */
    BODY_NDJSON,    /* application/x-ndjson, application/jsonl and kin */
} body_kind;

/* What a Content-Type header (may be NULL) says about the body's form. */
body_kind body_kind_of(const char *content_type);

/* Where one event lies in the body. */
typedef struct body_span {
    size_t off, len;
} body_span;

typedef enum {
    BODY_OK = 0,
    BODY_EMPTY = -1,     /* nothing but whitespace, or an empty array: no event */
    BODY_MALFORMED = -2, /* an array that is cut short or followed by more text */
    BODY_TOO_MANY = -3,  /* more than max_events events */
    BODY_NO_MEMORY = -4,
} body_result;

/* Short, stable text for a result ("no_events", ...); statically allocated. */
const char *body_result_reason(body_result r);

/*
 * Splits s[0, len) into at most max_events spans, stored in *spans (a
 * malloc'd array the caller frees, also on failure) and *count. An array's
 * elements are its events; NDJSON's non-blank lines (without the blanks
 * around them, a CRLF's CR among them) are; a body that is one JSON value and nothing else is one
 * event. On BODY_MALFORMED, *count is the number of the array's elements
 * read before the fault (the index of the bad one).
 */
body_result body_split(const char *s, size_t len, body_kind kind, size_t max_events,
                       body_span **spans, size_t *count);

#endif
