/*
 * rules: the event detection rules of a rules file, and their evaluation on
 * one event. Pure: no I/O but reading the file, no clocks, no servers, so it
 * is tested table by table (tests/unit/test_rules.c).
 *
 * A rules file is one JSON object (see config/rules.example.json and the
 * README):
 *
 *   {"rules": [{
 *      "name": "big_order",                      [a-z0-9_-]{1,64}
 *      "sources": ["orders"],                    or "*" / omitted: every source
 *      "when": {"all": [                         all / any / not / one test
 *          {"path": "total", "gt": 900},
 *          {"path": "shipping.country", "equals": "DE"}]},
 *      "severity": "warning",                    info, warning or critical
 *      "message": "order {order_id}: {total}",   {path} is replaced by the field
 *      "dedup": {"key": "{customer.id}", "window_s": 300}   optional
 *   }]}
 *
 * A test is {"path": P, OP: V} with OP one of equals, not_equals, gt, gte,
 * lt, lte (numbers), exists (true/false), contains (substring of a string,
 * element of an array) or matches (POSIX extended regex on a string). A
 * path is dot-separated object keys and array indexes: "items.0.sku" or
 * "items[0].sku". A missing field makes every test false but
 * "exists": false; a JSON null exists and equals null.
 */
#ifndef SLUICE_RULES_H
#define SLUICE_RULES_H

#include <json-c/json.h>
#include <stddef.h>

typedef struct rule_set rule_set;

/* Loads and checks a rules file. Returns NULL with err filled with one line
 * naming the file, the rule (by name or position) and the problem. Free with
 * rules_free(). */
rule_set *rules_load(const char *path, char *err, size_t errlen);

/* The text of a rules file (at most 16 MiB, no NUL byte), for callers that
 * build more than the rule set from one reading of it. Returns it malloc'd
 * (free with free()), or NULL with err naming the file and the problem. */
char *rules_read_file(const char *path, char *err, size_t errlen);

/* The same from text already in memory; `origin` names it in errors. */
rule_set *rules_parse(const char *text, const char *origin, char *err, size_t errlen);

void rules_free(rule_set *rs);

size_t rules_count(const rule_set *rs);

/* 1 if some rule watches `source` (so the event needs to be parsed at all),
 * else 0. */
int rules_watch(const rule_set *rs, const char *source);

/* One alert raised by a rule on an event. Strings are malloc'd and owned by
 * the match; rules_match_clear() frees them. The message is at most
 * ALERT_MESSAGE_MAX bytes (alert.h), the dedup key at most
 * RULES_DEDUP_KEY_MAX. */
typedef struct rule_match {
    const char *rule;     /* points into the rule set */
    const char *severity; /* statically allocated: a name of alert_severity() (alert.h) */
    char *message;        /* the message template with its fields filled in */
    char *dedup_key;      /* the dedup key template filled in ("" if the rule has none) */
    long window_s;        /* dedup window in seconds; 0: no dedup */
} rule_match;

void rules_match_clear(rule_match *m);

/* Called once per rule that fires; returns 0 to go on, -1 to stop (then
 * rules_evaluate returns -1). The match is the callee's to keep or clear. */
typedef int (*rule_fired_fn)(rule_match *m, void *arg);

/*
 * Evaluates every rule watching `source` on `event` (a JSON object), in the
 * file's order, and calls fired() for each that matches. Returns the number
 * of rules that fired, or -1 on allocation failure or if fired() said stop.
 */
int rules_evaluate(const rule_set *rs, const char *source, json_object *event, rule_fired_fn fired,
                   void *arg);

/* Looks up a path ("a.b[0].c") in a JSON value. Returns the value (owned
 * by `root`) or NULL if any step is missing or the value is JSON null. */
json_object *rules_lookup(json_object *root, const char *path);

/* Fills a template: "{path}" becomes the field's text (strings as they are,
 * other values as JSON, missing ones as ""); "{{" and "}}" are literal
 * braces. Returns a malloc'd string, or NULL on allocation failure. */
char *rules_render(const char *tmpl, json_object *event);

/* The longest dedup key kept as it is, in bytes. A longer one (a large
 * field filled into the key) becomes "sha256:<64 hex digits>" of it:
 * PostgreSQL cannot index a key of more than about 2.7 KB, and a key it
 * refused would hold back every event of the worker; equal keys still
 * give equal digests, distinct ones distinct. */
#define RULES_DEDUP_KEY_MAX 512

#endif
