/*
 * prefilter: a cheap look at an event's raw JSON text that says whether any
 * rule of a rules file could fire on it, so that the worker parses with
 * json-c only the events some rule may match. Most events of a watched
 * source fire nothing, and parsing them was most of what rules cost the
 * worker.
 *
 * Built from the rules file's text (the format is in rules.h), beside the
 * rule set parsed from the same text. For each rule it derives what the
 * raw text must contain for the rule to hold: every object key named by a
 * test's path ("fault.code" needs "fault" and "code"), a string or boolean
 * a test compares with for equality, with "any" needing one of its
 * branches and "not" or "exists": false needing nothing. The answer is
 * conservative: "no" only when every watching rule lacks something it
 * needs; a body with any backslash (which could spell a key with escapes)
 * and any condition it does not recognise answer "maybe".
 */
#ifndef SLUICE_PREFILTER_H
#define SLUICE_PREFILTER_H

#include <stddef.h>

typedef struct prefilter prefilter;

/* Builds the prefilter of a rules file's text (NUL-terminated). Text that
 * is not a rules file gives a prefilter that always answers "maybe" (the
 * rules parser is the one to refuse it). Returns NULL on allocation
 * failure. Free with prefilter_free(). */
prefilter *prefilter_new(const char *rules_text);
void prefilter_free(prefilter *p);

/* 1 if some rule watching `source` may fire on the event whose JSON text
 * is body[0..len), 0 if none can. */
int prefilter_maybe(const prefilter *p, const char *source, const char *body, size_t len);

#endif
