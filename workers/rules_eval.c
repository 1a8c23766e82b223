/*
 * rules_eval: evaluating a rule_set (rule_set.h) on one event, and filling
 * message and dedup-key templates from it; see rules.h.
 */
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "buf.h"
#include "event.h"
#include "rule_set.h"

static int rule_watches(const rule *r, const char *source)
{
    if (!r->sources)
        return 1;
    for (size_t i = 0; i < r->nsources; i++) {
        if (strcmp(r->sources[i], source) == 0)
            return 1;
    }
    return 0;
}

int rules_watch(const rule_set *rs, const char *source)
{
    for (size_t i = 0; rs && i < rs->count; i++) {
        if (rule_watches(&rs->rules[i], source))
            return 1;
    }
    return 0;
}

/* Finds a path; returns 1 with *out set (NULL for a JSON null) or 0 if a
 * step is missing. json-c represents null as NULL, hence the flag. */
static int lookup(json_object *root, const char *path, json_object **out)
{
    json_object *cur = root;
    const char *p = path;
    char key[256];
    *out = NULL;
    while (*p) {
        if (!cur)
            return 0;
        size_t n = 0;
        int bracket = *p == '[';
        if (bracket)
            p++;
        while (*p && *p != '.' && *p != '[' && !(bracket && *p == ']')) {
            if (n + 1 >= sizeof key)
                return 0;
            key[n++] = *p++;
        }
        key[n] = '\0';
        if (bracket) {
            if (*p != ']')
                return 0;
            p++;
        }
        if (*p == '.')
            p++;
        if (json_object_is_type(cur, json_type_array)) {
            char *end;
            unsigned long idx = strtoul(key, &end, 10);
            if (n == 0 || *end || idx >= json_object_array_length(cur))
                return 0;
            cur = json_object_array_get_idx(cur, idx);
        } else if (json_object_is_type(cur, json_type_object)) {
            if (!json_object_object_get_ex(cur, key, &cur))
                return 0;
        } else {
            return 0;
        }
    }
    *out = cur;
    return 1;
}

json_object *rules_lookup(json_object *root, const char *path)
{
    json_object *v;
    return lookup(root, path, &v) ? v : NULL;
}

static int values_equal(json_object *a, json_object *b)
{
    if (!a || !b)
        return a == b; /* JSON null */
    if (rule_is_number(a) && rule_is_number(b))
        return json_object_get_double(a) == json_object_get_double(b);
    return json_object_equal(a, b);
}

static int compare(op test, json_object *field, json_object *operand)
{
    if (!rule_is_number(field))
        return 0;
    double x = json_object_get_double(field), y = json_object_get_double(operand);
    if (isnan(x))
        return 0;
    switch (test) {
    case OP_GT:
        return x > y;
    case OP_GTE:
        return x >= y;
    case OP_LT:
        return x < y;
    default:
        return x <= y;
    }
}

static int contains(json_object *field, json_object *operand)
{
    if (json_object_is_type(field, json_type_string))
        return json_object_is_type(operand, json_type_string) &&
               strstr(json_object_get_string(field), json_object_get_string(operand)) != NULL;
    if (json_object_is_type(field, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(field); i++) {
            if (values_equal(json_object_array_get_idx(field, i), operand))
                return 1;
        }
    }
    return 0;
}

/* A missing field makes every test false except "exists": false. */
static int test_holds(const cond *c, json_object *event)
{
    json_object *field;
    int found = lookup(event, c->path, &field);
    if (c->test == OP_EXISTS)
        return found == json_object_get_boolean(c->operand);
    if (!found)
        return 0;
    switch (c->test) {
    case OP_EQ:
        return values_equal(field, c->operand);
    case OP_NE:
        return !values_equal(field, c->operand);
    case OP_CONTAINS:
        return contains(field, c->operand);
    case OP_MATCHES:
        return json_object_is_type(field, json_type_string) &&
               regexec(&c->re, json_object_get_string(field), 0, NULL, 0) == 0;
    default:
        return compare(c->test, field, c->operand);
    }
}

static int holds(const cond *c, json_object *event)
{
    switch (c->kind) {
    case COND_ALL:
        for (size_t i = 0; i < c->nchildren; i++) {
            if (!holds(&c->children[i], event))
                return 0;
        }
        return 1;
    case COND_ANY:
        for (size_t i = 0; i < c->nchildren; i++) {
            if (holds(&c->children[i], event))
                return 1;
        }
        return 0;
    case COND_NOT:
        return !holds(c->children, event);
    default:
        return test_holds(c, event);
    }
}

char *rules_render(const char *tmpl, json_object *event)
{
    buf t = {0};
    buf_append(&t, "", 0); /* an empty template renders as "", not NULL */
    for (const char *p = tmpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            buf_append(&t, p, 1);
            p += 2;
            continue;
        }
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            buf_append(&t, p, 1);
            p++;
            continue;
        }
        char path[256];
        size_t n = (size_t)(close - p - 1);
        if (n >= sizeof path)
            n = sizeof path - 1;
        memcpy(path, p + 1, n);
        path[n] = '\0';
        json_object *v = rules_lookup(event, path);
        if (v) {
            const char *s = json_object_is_type(v, json_type_string)
                                ? json_object_get_string(v)
                                : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
            buf_append(&t, s, strlen(s));
        }
        p = close + 1;
    }
    if (t.failed) {
        buf_free(&t);
        return NULL;
    }
    return t.data; /* the caller's to free */
}

void rules_match_clear(rule_match *m)
{
    free(m->message);
    free(m->dedup_key);
    memset(m, 0, sizeof *m);
}

int rules_evaluate(const rule_set *rs, const char *source, json_object *event, rule_fired_fn fired,
                   void *arg)
{
    int n = 0;
    for (size_t i = 0; rs && i < rs->count; i++) {
        const rule *r = &rs->rules[i];
        if (!rule_watches(r, source) || !holds(&r->when, event))
            continue;
        rule_match m = {.rule = r->name, .severity = r->severity, .window_s = r->window_s};
        m.message = rules_render(r->message, event);
        m.dedup_key = rules_render(r->dedup_key, event);
        if (!m.message || !m.dedup_key) {
            rules_match_clear(&m);
            return -1;
        }
        alert_cut_text(m.message, ALERT_MESSAGE_MAX);
        size_t key_len = strlen(m.dedup_key);
        if (key_len > RULES_DEDUP_KEY_MAX) {
            id_part whole = {m.dedup_key, key_len};
            char digest[EVENT_SHA256_ID_LEN + 1];
            event_sha256_id(&whole, 1, digest);
            memcpy(m.dedup_key, digest, sizeof digest); /* shorter: fits where the key was */
        }
        n++;
        if (fired(&m, arg) != 0)
            return -1;
    }
    return n;
}
