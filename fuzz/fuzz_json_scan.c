/*
 * fuzz_json_scan: producer/json_scan.c on any HTTP response body and any
 * JSON pointer, the way the http adapter finds the items it publishes.
 *
 * Input: a JSON pointer, a newline, the document (no newline: the pointer
 * is "" and the whole input is the document).
 *
 * Properties checked, not only the absence of crashes:
 *  - every length and item returned lies inside the document;
 *  - on a valid JSON text (json-c strict, without the leniencies
 *    fuzz_event documents; ASCII only with a json-c whose strict mode
 *    refuses all other text, see jsonc_oracle.h), json_value_len() of a container or string is
 *    the whole value, and walking an array yields exactly the elements
 *    json-c sees, each equal (json_object_equal) to json-c's;
 *  - json_pointer_find() finds what json-c's json_pointer_get() finds, and
 *    reports missing what it reports missing, on valid documents without
 *    duplicate keys (json-c keeps the last of a duplicate, json_scan the
 *    first: both are JSON's "unpredictable" case) and with reference tokens
 *    up to 1,000 bytes (json_scan's limit); json-c's reading of an empty
 *    reference token as array index 0 is not RFC 6901 and is allowed, as is
 *    its "missing" for an array element that is null.
 */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "check.h"
#include "event.h"
#include "json_scan.h"
#include "jsonc_oracle.h"

/* json-c counts the innermost value as a level (see event.h). */
#define DEPTH (EVENT_MAX_DEPTH + 1)

/* json-c's strict parse of s[0, len) (plus a blank, to end a top-level
 * number): 1 with *out (NULL for JSON null, as json-c has it), or 0 if it
 * is not exactly one JSON value. */
static int parse(const char *s, size_t len, json_object **out)
{
    char *text = malloc(len + 1);
    memcpy(text, s, len);
    text[len] = ' ';
    json_tokener *tok = json_tokener_new_ex(DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len + 1);
    int ok = json_tokener_get_error(tok) == json_tokener_success &&
             json_skip_ws(text, len + 1, json_tokener_get_parse_end(tok)) == len + 1;
    if (!ok) {
        json_object_put(o);
        o = NULL;
    }
    *out = o;
    json_tokener_free(tok);
    free(text);
    return ok;
}

/* Members of all objects in the tree, and the ':' outside strings in the
 * text: fewer members than colons means json-c merged duplicate keys. */
static size_t members(json_object *o)
{
    size_t n = 0;
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            n += 1 + members(v);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            n += members(json_object_array_get_idx(o, i));
    }
    return n;
}

static size_t colons(const char *s, size_t len)
{
    size_t n = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == ':') {
            n++;
        }
    }
    return n;
}

static void check_array(const char *doc, size_t len, int valid, json_object *tree)
{
    json_array_iter it;
    if (json_array_begin(&it, doc, len) != 0) {
        CHECK(!valid || !json_object_is_type(tree, json_type_array), "an array not begun");
        return;
    }
    size_t count = 0;
    const char *item;
    size_t item_len;
    int rc;
    while ((rc = json_array_next(&it, &item, &item_len)) == 1) {
        CHECK(item >= doc && item_len > 0 && item_len <= len - (size_t)(item - doc),
              "item outside the document");
        if (valid && json_object_is_type(tree, json_type_array)) {
            CHECK(count < json_object_array_length(tree), "more items than json-c sees");
            json_object *mine;
            CHECK(parse(item, item_len, &mine), "item %zu (%.*s) is not one JSON value", count,
                  (int)item_len, item);
            CHECK(json_object_equal(mine, json_object_array_get_idx(tree, count)),
                  "item %zu differs from json-c's", count);
            json_object_put(mine);
        }
        count++;
    }
    if (valid && json_object_is_type(tree, json_type_array))
        CHECK(rc == 0 && count == json_object_array_length(tree), "%zu items (rc %d), json-c %zu",
              count, rc, json_object_array_length(tree));
}

static int tokens_short(const char *pointer)
{
    for (const char *p = pointer; *p;) {
        const char *next = strchr(p + 1, '/');
        size_t n = next ? (size_t)(next - p) : strlen(p);
        if (n > 1000)
            return 0;
        p += n;
    }
    return 1;
}

static void check_pointer(const char *doc, size_t len, const char *pointer, int valid,
                          json_object *tree, int comparable)
{
    const char *out = NULL;
    size_t out_len = 0;
    int rc = json_pointer_find(doc, len, pointer, &out, &out_len);
    CHECK(rc == 0 || rc == -1 || rc == -2, "rc %d", rc);
    if (rc == 0)
        CHECK(out >= doc && out_len > 0 && out_len <= len - (size_t)(out - doc),
              "value outside the document");
    /* Compared with json-c where both read the same document the same way;
     * json-c cannot point into a document that is null (tree == NULL). */
    if (!valid || !tree || !comparable || !json_pointer_valid(pointer) || !tokens_short(pointer))
        return;
    json_object *want = NULL;
    errno = 0;
    int jrc = json_pointer_get(tree, pointer, &want);
    if (jrc != 0) {
        /* json-c holds JSON null as no object, and its json_pointer_get
         * reports an array element that is null as missing (ENOENT). */
        int null_element = rc == 0 && out_len == 4 && memcmp(out, "null", 4) == 0;
        CHECK(rc != 0 || null_element, "found %.*s where json-c finds nothing (errno %d)",
              (int)out_len, out, errno);
        return;
    }
    /* json-c takes an empty reference token as index 0 of an array;
     * RFC 6901 makes it no index at all, as json_scan does. */
    if (rc != 0 && (strstr(pointer, "//") || (*pointer && pointer[strlen(pointer) - 1] == '/')))
        return;
    CHECK(rc == 0, "nothing found (rc %d) where json-c finds %s", rc,
          json_object_to_json_string(want));
    json_object *mine;
    CHECK(parse(out, out_len, &mine), "found %.*s, which is not one JSON value", (int)out_len, out);
    CHECK(json_object_equal(mine, want), "found %.*s, json-c finds %s", (int)out_len, out,
          json_object_to_json_string(want));
    json_object_put(mine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : 0;
    char *pointer = malloc(plen + 1);
    memcpy(pointer, data, plen);
    pointer[plen] = '\0';
    if (strlen(pointer) != plen) { /* a pointer is a C string */
        free(pointer);
        return 0;
    }
    /* The document in a buffer of its own size, so ASan sees any overread. */
    size_t len = nl ? size - plen - 1 : size;
    char *doc = malloc(len ? len : 1);
    memcpy(doc, nl ? nl + 1 : data, len);

    size_t start = json_skip_ws(doc, len, 0);
    CHECK(start <= len, "json_skip_ws past the end");
    size_t vlen = json_value_len(doc + start, len - start);
    CHECK(vlen <= len - start, "value length %zu past the end (%zu left)", vlen, len - start);

    /* What json-c makes of the document, when event.c finds none of
     * json-c's leniencies in it (an object or another value, no \u0000). */
    event_validator *v = event_validator_new(SIZE_MAX);
    event_verdict verdict = event_validate(v, doc, len);
    event_validator_free(v);
    json_object *tree = NULL;
    int valid = 0;
    if (verdict == EVENT_OK || verdict == EVENT_NOT_OBJECT) {
        if (jsonc_oracle_covers(doc, len)) {
            valid = parse(doc, len, &tree);
            CHECK(valid, "event_validate takes it, json-c strict does not");
        }
        if (start < len && strchr("{[\"", doc[start]))
            CHECK(json_skip_ws(doc, len, start + vlen) == len, "value length %zu of %zu", vlen,
                  len - start);
    }
    check_array(doc, len, valid, tree);
    check_pointer(doc, len, pointer, valid, tree, valid && members(tree) == colons(doc, len));
    json_object_put(tree);
    free(doc);
    free(pointer);
    return 0;
}
