/*
 * rules_parse: reading and checking a rules file into a rule_set
 * (rule_set.h); see rules.h for the file's form. Every problem is one line
 * naming the file, the rule (by name or position) and what is wrong.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "event.h"
#include "rule_set.h"

static const char *const op_names[] = {"equals", "not_equals", "gt",       "gte",    "lt",
                                       "lte",    "exists",     "contains", "matches"};
#define NOPS (sizeof op_names / sizeof *op_names)

/* Error context: where in the file a problem is. */
typedef struct where {
    const char *origin;
    size_t index; /* 1-based rule position */
    const char *name;
    char *err;
    size_t errlen;
} where;

static int bad(const where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const where *w, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (w->name)
        snprintf(w->err, w->errlen, "%s: rule '%s' (#%zu): %s", w->origin, w->name, w->index, what);
    else if (w->index)
        snprintf(w->err, w->errlen, "%s: rule #%zu: %s", w->origin, w->index, what);
    else
        snprintf(w->err, w->errlen, "%s: %s", w->origin, what);
    return -1;
}

/* Checks a template: UTF-8, and braces where every "{" opens a non-empty
 * path closed by "}", and "{{" / "}}" are literal braces. */
static int check_template(const where *w, const char *field, const char *t)
{
    /* What it is filled into must be UTF-8 (alert text, dedup keys in
     * PostgreSQL); json-c does not check that a file is. */
    if (!utf8_valid(t, strlen(t)))
        return bad(w, "%s: not valid UTF-8", field);
    for (const char *p = t; *p; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p++;
            continue;
        }
        if (*p == '}')
            return bad(w, "%s: unmatched '}' at offset %zu", field, (size_t)(p - t));
        if (*p != '{')
            continue;
        const char *close = strchr(p + 1, '}');
        const char *open = strchr(p + 1, '{');
        if (!close || (open && open < close))
            return bad(w, "%s: unclosed '{' at offset %zu", field, (size_t)(p - t));
        if (close == p + 1)
            return bad(w, "%s: empty placeholder '{}' at offset %zu", field, (size_t)(p - t));
        p = close;
    }
    return 0;
}

static void cond_free(cond *c)
{
    for (size_t i = 0; i < c->nchildren; i++)
        cond_free(&c->children[i]);
    free(c->children);
    if (c->re_compiled)
        regfree(&c->re);
    memset(c, 0, sizeof *c);
}

static int parse_cond(const where *w, json_object *j, cond *c, int depth);

static int parse_list(const where *w, json_object *list, const char *key, cond *c, int depth)
{
    if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) == 0)
        return bad(w, "'%s' must be a non-empty array of conditions", key);
    size_t n = json_object_array_length(list);
    c->children = calloc(n, sizeof *c->children);
    if (!c->children)
        return bad(w, "out of memory");
    c->nchildren = n;
    for (size_t i = 0; i < n; i++) {
        if (parse_cond(w, json_object_array_get_idx(list, i), &c->children[i], depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int parse_test(const where *w, json_object *j, cond *c)
{
    json_object *path = NULL;
    if (!json_object_object_get_ex(j, "path", &path) ||
        !json_object_is_type(path, json_type_string) || json_object_get_string_len(path) == 0)
        return bad(w, "a condition needs \"path\" (a non-empty string) and one operator");
    c->kind = COND_TEST;
    c->path = json_object_get_string(path);
    int found = 0;
    json_object_object_foreach(j, key, val)
    {
        if (strcmp(key, "path") == 0)
            continue;
        size_t o = 0;
        while (o < NOPS && strcmp(op_names[o], key) != 0)
            o++;
        if (o == NOPS)
            return bad(w,
                       "path '%s': unknown operator '%s' (equals, not_equals, gt, gte, lt, "
                       "lte, exists, contains, matches)",
                       c->path, key);
        if (found++)
            return bad(w, "path '%s': one operator per condition (use \"all\" for several)",
                       c->path);
        c->test = (op)o;
        c->operand = val;
    }
    if (!found)
        return bad(w, "path '%s': no operator", c->path);
    switch (c->test) {
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
        if (!rule_is_number(c->operand))
            return bad(w, "path '%s': '%s' needs a number", c->path, op_names[c->test]);
        break;
    case OP_EXISTS:
        if (!json_object_is_type(c->operand, json_type_boolean))
            return bad(w, "path '%s': 'exists' needs true or false", c->path);
        break;
    case OP_MATCHES: {
        if (!json_object_is_type(c->operand, json_type_string))
            return bad(w, "path '%s': 'matches' needs a string (a POSIX extended regex)", c->path);
        int rc = regcomp(&c->re, json_object_get_string(c->operand), REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[256];
            regerror(rc, &c->re, why, sizeof why);
            return bad(w, "path '%s': bad pattern '%s': %s", c->path,
                       json_object_get_string(c->operand), why);
        }
        c->re_compiled = 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int parse_cond(const where *w, json_object *j, cond *c, int depth)
{
    if (depth > 32)
        return bad(w, "conditions nested more than 32 deep");
    if (!json_object_is_type(j, json_type_object))
        return bad(w, "a condition must be an object");
    json_object *v;
    int combinators = json_object_object_get_ex(j, "all", NULL) +
                      json_object_object_get_ex(j, "any", NULL) +
                      json_object_object_get_ex(j, "not", NULL);
    if (combinators > 1 || (combinators == 1 && json_object_object_length(j) != 1))
        return bad(w, "a condition is either one of all/any/not or a path test, alone");
    if (json_object_object_get_ex(j, "all", &v)) {
        c->kind = COND_ALL;
        return parse_list(w, v, "all", c, depth);
    }
    if (json_object_object_get_ex(j, "any", &v)) {
        c->kind = COND_ANY;
        return parse_list(w, v, "any", c, depth);
    }
    if (json_object_object_get_ex(j, "not", &v)) {
        c->kind = COND_NOT;
        c->children = calloc(1, sizeof *c->children);
        if (!c->children)
            return bad(w, "out of memory");
        c->nchildren = 1;
        return parse_cond(w, v, c->children, depth + 1);
    }
    return parse_test(w, j, c);
}

static int parse_sources(const where *w, json_object *j, rule *r)
{
    if (!j ||
        (json_object_is_type(j, json_type_string) && strcmp(json_object_get_string(j), "*") == 0))
        return 0;
    if (!json_object_is_type(j, json_type_array) || json_object_array_length(j) == 0)
        return bad(w, "'sources' must be \"*\" or a non-empty array of source names");
    r->nsources = json_object_array_length(j);
    r->sources = calloc(r->nsources, sizeof *r->sources);
    if (!r->sources)
        return bad(w, "out of memory");
    for (size_t i = 0; i < r->nsources; i++) {
        json_object *s = json_object_array_get_idx(j, i);
        if (!json_object_is_type(s, json_type_string) ||
            !source_name_valid(json_object_get_string(s)))
            return bad(w, "sources[%zu] is not a source name ([a-z0-9_-]{1,64})", i);
        r->sources[i] = json_object_get_string(s);
    }
    return 0;
}

static int rule_name_valid(const char *name)
{
    return source_name_valid(name); /* same alphabet: it becomes a routing key word */
}

static const char *const rule_keys[] = {"name", "sources", "when", "severity", "message", "dedup"};

static int parse_rule(where *w, json_object *j, rule *r)
{
    if (!json_object_is_type(j, json_type_object))
        return bad(w, "a rule must be an object");
    json_object *v;
    if (!json_object_object_get_ex(j, "name", &v) || !json_object_is_type(v, json_type_string))
        return bad(w, "missing \"name\"");
    r->name = json_object_get_string(v);
    if (!rule_name_valid(r->name))
        return bad(w, "name '%s' must match [a-z0-9_-]{1,64} (it is part of the routing key)",
                   r->name);
    w->name = r->name;
    json_object_object_foreach(j, key, val)
    {
        (void)val;
        size_t k = 0;
        while (k < sizeof rule_keys / sizeof *rule_keys && strcmp(rule_keys[k], key) != 0)
            k++;
        if (k == sizeof rule_keys / sizeof *rule_keys)
            return bad(w, "unknown key '%s'", key);
    }
    json_object *sources = NULL;
    json_object_object_get_ex(j, "sources", &sources);
    if (parse_sources(w, sources, r) != 0)
        return -1;
    if (!json_object_object_get_ex(j, "when", &v))
        return bad(w, "missing \"when\" (the conditions)");
    if (parse_cond(w, v, &r->when, 0) != 0)
        return -1;
    if (!json_object_object_get_ex(j, "severity", &v) || !json_object_is_type(v, json_type_string))
        return bad(w, "missing \"severity\" (" ALERT_SEVERITIES ")");
    if (!(r->severity = alert_severity(json_object_get_string(v))))
        return bad(w, "severity '%s' is not " ALERT_SEVERITIES, json_object_get_string(v));
    if (!json_object_object_get_ex(j, "message", &v) || !json_object_is_type(v, json_type_string))
        return bad(w, "missing \"message\" (a template string)");
    r->message = json_object_get_string(v);
    if (check_template(w, "message", r->message) != 0)
        return -1;
    r->dedup_key = "";
    if (json_object_object_get_ex(j, "dedup", &v)) {
        json_object *dkey = NULL, *window = NULL;
        if (!json_object_is_type(v, json_type_object) ||
            !json_object_object_get_ex(v, "key", &dkey) ||
            !json_object_is_type(dkey, json_type_string) ||
            !json_object_object_get_ex(v, "window_s", &window) ||
            !json_object_is_type(window, json_type_int) || json_object_object_length(v) != 2)
            return bad(w, "'dedup' must be {\"key\": TEMPLATE, \"window_s\": SECONDS}");
        r->dedup_key = json_object_get_string(dkey);
        errno = 0;
        int64_t s = json_object_get_int64(window);
        if (s < 1 || s > 31 * 86400)
            return bad(w, "dedup window_s must be between 1 and 2678400, got %lld", (long long)s);
        r->window_s = (long)s;
        if (check_template(w, "dedup key", r->dedup_key) != 0)
            return -1;
    }
    return 0;
}

rule_set *rules_parse(const char *text, const char *origin, char *err, size_t errlen)
{
    where w = {.origin = origin, .err = err, .errlen = errlen};
    rule_set *rs = calloc(1, sizeof *rs);
    json_tokener *tok = json_tokener_new();
    if (!rs || !tok) {
        bad(&w, "out of memory");
        goto fail;
    }
    rs->doc = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
    if (!rs->doc) {
        bad(&w, "not valid JSON: %s (near byte %zu)",
            json_tokener_error_desc(json_tokener_get_error(tok)), json_tokener_get_parse_end(tok));
        goto fail;
    }
    json_object *list;
    if (!json_object_is_type(rs->doc, json_type_object) ||
        !json_object_object_get_ex(rs->doc, "rules", &list) ||
        !json_object_is_type(list, json_type_array)) {
        bad(&w, "expected an object with a \"rules\" array");
        goto fail;
    }
    size_t n = json_object_array_length(list);
    rs->rules = calloc(n ? n : 1, sizeof *rs->rules);
    if (!rs->rules) {
        bad(&w, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        w.index = i + 1;
        w.name = NULL;
        rs->count = i + 1; /* so rules_free frees what this one built */
        if (parse_rule(&w, json_object_array_get_idx(list, i), &rs->rules[i]) != 0)
            goto fail;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(rs->rules[k].name, rs->rules[i].name) == 0) {
                bad(&w, "name used twice (also rule #%zu)", k + 1);
                goto fail;
            }
        }
    }
    json_tokener_free(tok);
    return rs;
fail:
    if (tok)
        json_tokener_free(tok);
    rules_free(rs);
    return NULL;
}

char *rules_read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "rules file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        len <= 16 * 1024 * 1024 && (text = malloc((size_t)len + 1)) &&
        fread(text, 1, (size_t)len, f) == (size_t)len) {
        text[len] = '\0';
        if (strlen(text) != (size_t)len) {
            snprintf(err, errlen, "rules file %s: contains a NUL byte", path);
            free(text);
            text = NULL;
        }
    } else {
        snprintf(err, errlen, "rules file %s: cannot read it (or over 16 MiB)", path);
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

rule_set *rules_load(const char *path, char *err, size_t errlen)
{
    char *text = rules_read_file(path, err, errlen);
    rule_set *rs = text ? rules_parse(text, path, err, errlen) : NULL;
    free(text);
    return rs;
}

void rules_free(rule_set *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; rs->rules && i < rs->count; i++) {
        cond_free(&rs->rules[i].when);
        free(rs->rules[i].sources);
    }
    free(rs->rules);
    json_object_put(rs->doc);
    free(rs);
}

size_t rules_count(const rule_set *rs)
{
    return rs ? rs->count : 0;
}
