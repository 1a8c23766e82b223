/*
 * prefilter: see prefilter.h.
 *
 * A rule's needs are a conjunction of clauses; a clause is a disjunction
 * of needles (byte strings, each a JSON token as it appears in the text:
 * a quoted key or string, true, false). The rule may fire only if every
 * clause has a needle in the body. Derivation, for a condition C:
 *   test           one clause per key of its path (and one for the value
 *                  of an equality with a string or boolean); none for
 *                  "exists": false, which holds when the field is missing
 *   all            the union of its children's clauses
 *   any            one clause: a clause of each child, joined (if some
 *                  child needs nothing, the "any" needs nothing)
 *   not, unknown   nothing
 * Each step of this only weakens what is required, so it never says "no"
 * where the evaluator (rules_eval.c) would fire.
 */
#define _GNU_SOURCE /* memmem */
#include "prefilter.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

typedef struct clause {
    char **needles;
    size_t count;
} clause;

typedef struct needs {
    clause *clauses;
    size_t count;
    int failed; /* out of memory */
} needs;

typedef struct prule {
    char **sources; /* NULL: every source */
    size_t nsources;
    needs n;
} prule;

struct prefilter {
    prule *rules;
    size_t count;
    int always; /* not a rules file we understand: always "maybe" */
};

static void clause_free(clause *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->needles[i]);
    free(c->needles);
    c->needles = NULL;
    c->count = 0;
}

static void needs_free(needs *n)
{
    for (size_t i = 0; i < n->count; i++)
        clause_free(&n->clauses[i]);
    free(n->clauses);
    memset(n, 0, sizeof *n);
}

/* Adds a needle to clause c (the needle is taken; NULL means failed). */
static int clause_add(clause *c, char *needle)
{
    char **grown = needle ? realloc(c->needles, (c->count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(needle);
        return -1;
    }
    c->needles = grown;
    c->needles[c->count++] = needle;
    return 0;
}

/* Adds a clause of one needle. */
static void needs_add(needs *n, char *needle)
{
    clause c = {0};
    clause *grown = NULL;
    if (n->failed || clause_add(&c, needle) != 0 ||
        !(grown = realloc(n->clauses, (n->count + 1) * sizeof *grown))) {
        clause_free(&c);
        n->failed = 1;
        return;
    }
    n->clauses = grown;
    n->clauses[n->count++] = c;
}

/* `s` as a JSON string token, if it needs no escape; else NULL (such a
 * text makes no needle). */
static char *quoted(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == '"' || ch == '\\' || ch == '/')
            return NULL;
    }
    char *q = malloc(len + 3);
    if (!q)
        return NULL;
    q[0] = '"';
    memcpy(q + 1, s, len);
    q[len + 1] = '"';
    q[len + 2] = '\0';
    return q;
}

/* The keys of a path, split as rules_eval.c's lookup splits it ('.', '[', ']');
 * a step that could be an array index (all of it a number to strtoul) or
 * is empty needs no key. */
static void path_needs(needs *n, const char *path)
{
    const char *p = path;
    while (*p && !n->failed) {
        while (*p == '.' || *p == '[' || *p == ']')
            p++;
        size_t len = strcspn(p, ".[]");
        if (len == 0)
            break;
        char step[256];
        if (len < sizeof step) {
            memcpy(step, p, len);
            step[len] = '\0';
            char *end;
            (void)strtoul(step, &end, 10);
            if (*end != '\0') {
                char *q = quoted(step, len);
                if (q)
                    needs_add(n, q);
            }
        }
        p += len;
    }
}

static void cond_needs(needs *n, json_object *c, int depth);

static void test_needs(needs *n, json_object *c)
{
    json_object *path = NULL, *v = NULL;
    if (!json_object_object_get_ex(c, "path", &path) ||
        !json_object_is_type(path, json_type_string) || json_object_object_length(c) != 2)
        return;
    if (json_object_object_get_ex(c, "exists", &v)) {
        if (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
            path_needs(n, json_object_get_string(path));
        return;
    }
    path_needs(n, json_object_get_string(path));
    if (json_object_object_get_ex(c, "equals", &v)) {
        if (json_object_is_type(v, json_type_string)) {
            char *q = quoted(json_object_get_string(v), (size_t)json_object_get_string_len(v));
            if (q)
                needs_add(n, q);
        } else if (json_object_is_type(v, json_type_boolean)) {
            needs_add(n, strdup(json_object_get_boolean(v) ? "true" : "false"));
        }
    }
}

/* "any": one clause made of the first clause of each branch. */
static void any_needs(needs *n, json_object *list, int depth)
{
    size_t count = json_object_array_length(list);
    clause joined = {0};
    for (size_t i = 0; i < count; i++) {
        needs branch = {0};
        cond_needs(&branch, json_object_array_get_idx(list, i), depth + 1);
        int empty = branch.count == 0;
        for (size_t k = 0; !empty && !branch.failed && k < branch.clauses[0].count; k++) {
            if (clause_add(&joined, strdup(branch.clauses[0].needles[k])) != 0)
                branch.failed = 1;
        }
        int failed = branch.failed;
        needs_free(&branch);
        if (failed)
            n->failed = 1;
        if (empty || failed) {
            clause_free(&joined);
            return;
        }
    }
    clause *grown = realloc(n->clauses, (n->count + 1) * sizeof *grown);
    if (!grown) {
        clause_free(&joined);
        n->failed = 1;
        return;
    }
    n->clauses = grown;
    n->clauses[n->count++] = joined;
}

static void cond_needs(needs *n, json_object *c, int depth)
{
    json_object *v;
    if (n->failed || depth > 32 || !json_object_is_type(c, json_type_object))
        return;
    if (json_object_object_get_ex(c, "all", &v)) {
        if (json_object_object_length(c) != 1 || !json_object_is_type(v, json_type_array))
            return;
        for (size_t i = 0; i < json_object_array_length(v); i++)
            cond_needs(n, json_object_array_get_idx(v, i), depth + 1);
        return;
    }
    if (json_object_object_get_ex(c, "any", &v)) {
        if (json_object_object_length(c) == 1 && json_object_is_type(v, json_type_array) &&
            json_object_array_length(v) > 0)
            any_needs(n, v, depth);
        return;
    }
    if (json_object_object_get_ex(c, "not", NULL))
        return;
    test_needs(n, c);
}

static int sources_of(prule *r, json_object *rule)
{
    json_object *s = NULL;
    if (!json_object_object_get_ex(rule, "sources", &s) || !json_object_is_type(s, json_type_array))
        return 0; /* "*" or absent: every source (anything else is refused by rules_parse.c) */
    size_t n = json_object_array_length(s);
    if (!(r->sources = calloc(n ? n : 1, sizeof *r->sources)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *name = json_object_array_get_idx(s, i);
        if (!json_object_is_type(name, json_type_string))
            continue;
        if (!(r->sources[r->nsources++] = strdup(json_object_get_string(name))))
            return -1;
    }
    return 0;
}

prefilter *prefilter_new(const char *rules_text)
{
    prefilter *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    json_object *doc = json_tokener_parse(rules_text), *list = NULL;
    if (!doc || !json_object_is_type(doc, json_type_object) ||
        !json_object_object_get_ex(doc, "rules", &list) ||
        !json_object_is_type(list, json_type_array)) {
        p->always = 1;
        json_object_put(doc);
        return p;
    }
    size_t n = json_object_array_length(list);
    if (!(p->rules = calloc(n ? n : 1, sizeof *p->rules)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_object *rule = json_object_array_get_idx(list, i), *when = NULL;
        prule *r = &p->rules[p->count++];
        if (!json_object_is_type(rule, json_type_object)) {
            p->always = 1;
            continue;
        }
        if (sources_of(r, rule) != 0)
            goto fail;
        if (json_object_object_get_ex(rule, "when", &when))
            cond_needs(&r->n, when, 0);
        if (r->n.failed)
            goto fail;
    }
    json_object_put(doc);
    return p;
fail:
    json_object_put(doc);
    prefilter_free(p);
    return NULL;
}

void prefilter_free(prefilter *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        for (size_t k = 0; k < p->rules[i].nsources; k++)
            free(p->rules[i].sources[k]);
        free(p->rules[i].sources);
        needs_free(&p->rules[i].n);
    }
    free(p->rules);
    free(p);
}

static int watches(const prule *r, const char *source)
{
    if (!r->sources)
        return 1;
    for (size_t i = 0; i < r->nsources; i++) {
        if (strcmp(r->sources[i], source) == 0)
            return 1;
    }
    return 0;
}

static int has(const char *body, size_t len, const char *needle)
{
    return memmem(body, len, needle, strlen(needle)) != NULL;
}

int prefilter_maybe(const prefilter *p, const char *source, const char *body, size_t len)
{
    if (!p || p->always || memchr(body, '\\', len))
        return 1;
    for (size_t i = 0; i < p->count; i++) {
        const prule *r = &p->rules[i];
        if (!watches(r, source))
            continue;
        size_t c = 0;
        for (; c < r->n.count; c++) {
            const clause *cl = &r->n.clauses[c];
            size_t k = 0;
            while (k < cl->count && !has(body, len, cl->needles[k]))
                k++;
            if (k == cl->count)
                break; /* this clause has no needle in the body */
        }
        if (c == r->n.count)
            return 1;
    }
    return 0;
}
