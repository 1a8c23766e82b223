/*
 * rule_set: the parsed form of a rules file, shared by its two halves:
 * rules_parse.c builds it from the file and rules_eval.c evaluates it on
 * events. Private to those two; everyone else uses rules.h.
 *
 * The parsed JSON document is kept for the rule set's lifetime, so the
 * conditions borrow their operands (strings, numbers, arrays) from it
 * instead of copying them. Regular expressions are compiled once, at load,
 * so a bad pattern is refused at start rather than on the first event.
 */
#ifndef SLUICE_RULE_SET_H
#define SLUICE_RULE_SET_H

#include <json-c/json.h>
#include <regex.h>
#include <stddef.h>

#include "rules.h"

/* The order of op_names[] in rules_parse.c. */
typedef enum { COND_ALL, COND_ANY, COND_NOT, COND_TEST } cond_kind;

typedef enum { OP_EQ, OP_NE, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_EXISTS, OP_CONTAINS, OP_MATCHES } op;

typedef struct cond {
    cond_kind kind;
    struct cond *children; /* ALL/ANY: nchildren; NOT: one */
    size_t nchildren;
    const char *path; /* TEST: borrowed from the document */
    op test;
    json_object *operand; /* borrowed from the document */
    regex_t re;           /* OP_MATCHES */
    int re_compiled;
} cond;

typedef struct rule {
    const char *name;
    const char **sources; /* NULL: every source */
    size_t nsources;
    cond when;
    const char *severity;
    const char *message;
    const char *dedup_key; /* "" if none */
    long window_s;
} rule;

struct rule_set {
    json_object *doc;
    rule *rules;
    size_t count;
};

/* JSON numbers are ints or doubles to json-c. */
static inline int rule_is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

#endif
