/*
 * alert: see alert.h. JSON through json-c, as the rest of sluice reads it.
 */
#include "alert.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static const char *const severities[] = {"info", "warning", "critical"};

const char *alert_severity(const char *name)
{
    for (size_t i = 0; name && i < sizeof severities / sizeof *severities; i++) {
        if (strcmp(name, severities[i]) == 0)
            return severities[i];
    }
    return NULL;
}

char *alert_make_id(const char *rule, const char *msg_id)
{
    size_t len = strlen(rule) + 1 + strlen(msg_id) + 1;
    char *id = malloc(len);
    if (id)
        snprintf(id, len, "%s:%s", rule, msg_id);
    return id;
}

int alert_routing_key(const alert *a, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "alert.%s.%s", a->severity, a->rule);
    return n >= 0 && (size_t)n < outlen ? 0 : -1;
}

/* Adds a string field; a NULL value is written as JSON null. */
static void add_text(json_object *o, const char *key, const char *value)
{
    json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

char *alert_encode(const alert *a, size_t *len)
{
    json_object *body = json_object_new_object();
    if (!body)
        return NULL;
    add_text(body, "alert_id", a->alert_id);
    add_text(body, "rule", a->rule);
    add_text(body, "severity", a->severity);
    add_text(body, "source", a->source);
    add_text(body, "msg_id", a->msg_id);
    add_text(body, "message", a->message);
    add_text(body, "dedup_key", a->dedup_key);
    json_object_object_add(body, "raised_at_us", json_object_new_int64(a->raised_at_us));
    size_t n = 0;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &n);
    char *copy = text ? malloc(n + 1) : NULL;
    if (copy) {
        memcpy(copy, text, n + 1);
        *len = n;
    }
    json_object_put(body);
    return copy;
}

struct alert_doc {
    json_object *json;
};

void alert_doc_free(alert_doc *doc)
{
    if (!doc)
        return;
    json_object_put(doc->json);
    free(doc);
}

static const char *text_field(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* A field the alerts' indexes could not hold (NULL: absent, fine). */
static int too_long(const char *s)
{
    return s && strlen(s) > ALERT_FIELD_MAX;
}

int alert_decode(const char *body, size_t len, alert *out, alert_doc **doc)
{
    memset(out, 0, sizeof *out);
    out->body = body;
    out->body_len = len;
    *doc = NULL;
    json_tokener *tok = json_tokener_new();
    json_object *json = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    if (json && !(*doc = calloc(1, sizeof **doc))) {
        json_object_put(json);
        json = NULL;
    }
    if (*doc)
        (*doc)->json = json;
    if (json && json_object_is_type(json, json_type_object)) {
        out->alert_id = text_field(json, "alert_id");
        out->rule = text_field(json, "rule");
        out->severity = text_field(json, "severity");
        out->source = text_field(json, "source");
        out->msg_id = text_field(json, "msg_id");
        out->message = text_field(json, "message");
        out->dedup_key = text_field(json, "dedup_key");
        json_object *v;
        if (json_object_object_get_ex(json, "raised_at_us", &v) &&
            json_object_is_type(v, json_type_int))
            out->raised_at_us = json_object_get_int64(v);
    }
    /* What the database would refuse must not come back forever: the
     * caller dead-letters such a message rather than retrying it. */
    if (!utf8_valid(body, len) || !out->alert_id || !*out->alert_id || !out->rule ||
        !alert_severity(out->severity) || !out->source || !out->message ||
        too_long(out->alert_id) || too_long(out->rule) || too_long(out->source) ||
        too_long(out->msg_id) || too_long(out->dedup_key))
        return -1;
    return 0;
}

void alert_cut_text(char *text, size_t max)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    size_t len = strlen(text);
    if (len <= max)
        return;
    size_t keep = max - (sizeof ellipsis - 1);
    /* Back off continuation bytes (10xxxxxx): the cut falls before a
     * character's first byte. */
    while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(text + keep, ellipsis, sizeof ellipsis); /* with its NUL */
}
