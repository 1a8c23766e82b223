/*
 * json_scan: finds values inside a JSON text without building a tree, so
 * the items of an HTTP response are published byte for byte as the server
 * sent them (no number or escape rewritten). It matches strings, escapes
 * and brackets; it does not validate everything (each item is checked
 * strictly afterwards, see event.h). Allocation-free.
 */
#ifndef SLUICE_JSON_SCAN_H
#define SLUICE_JSON_SCAN_H

#include <stddef.h>

/* Skips JSON whitespace from s[pos]; returns the new position. */
size_t json_skip_ws(const char *s, size_t len, size_t pos);

/* Length of the JSON value starting at s[0], or 0 if it is malformed or
 * cut short. */
size_t json_value_len(const char *s, size_t len);

/* Walks the elements of an array. */
typedef struct json_array_iter {
    const char *s;
    size_t len, pos;
    int first;
} json_array_iter;

/* Starts at the array in s[0, len) (leading whitespace allowed). Returns 0, or
 * -1 if it does not start with '['. */
int json_array_begin(json_array_iter *it, const char *s, size_t len);

/* Next element: returns 1 with *item and *item_len (pointing into the text), 0
 * after the last, -1 if the array is malformed from here on. */
int json_array_next(json_array_iter *it, const char **item, size_t *item_len);

/* Finds the value a JSON pointer (RFC 6901, e.g. "/data/items"; "" is the
 * whole document) names. Returns 0 with *out and *out_len pointing into doc,
 * -1 if no such member, -2 if the document is malformed on the way. */
int json_pointer_find(const char *doc, size_t len, const char *pointer, const char **out,
                      size_t *out_len);

/* Returns 1 if `pointer` is a syntactically valid JSON pointer, else 0. */
int json_pointer_valid(const char *pointer);

#endif
