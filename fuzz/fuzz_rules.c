/*
 * fuzz_rules: workers/rules_eval.c evaluating rules and filling message
 * templates with the fields of any event a publisher may send.
 *
 * Input: a rules file (or, if it is none, a template), a NUL byte, an
 * event. Events are what the worker evaluates: bodies event_validate()
 * takes, parsed by json-c.
 *
 * Properties checked, not only the absence of crashes (AddressSanitizer
 * sees any read past a template, path or field):
 *  - every event event_validate() takes is parsed the way the worker
 *    parses the events it evaluates (json_tokener_new_ex(EVENT_MAX_DEPTH +
 *    1));
 *  - every message and dedup key a rule fills in, and any template filled
 *    in directly, is valid UTF-8 when the template is;
 *  - a template without braces comes out as it is;
 *  - evaluating the same event twice fires the same rules with the same
 *    messages and keys.
 */
#include <json-c/json.h>
#include <string.h>

#include "check.h"
#include "event.h"
#include "rules.h"

#define MAX_FIRED 64

typedef struct fired {
    size_t n;
    char *text[MAX_FIRED];
    int template_utf8;
} fired;

static int on_fired(rule_match *m, void *arg)
{
    fired *f = arg;
    CHECK(m->severity && (!strcmp(m->severity, "info") || !strcmp(m->severity, "warning") ||
                          !strcmp(m->severity, "critical")),
          "severity %s", m->severity ? m->severity : "(null)");
    CHECK(ref_utf8_valid(m->message, strlen(m->message)), "rule %s: message not UTF-8", m->rule);
    CHECK(ref_utf8_valid(m->dedup_key, strlen(m->dedup_key)), "rule %s: key not UTF-8", m->rule);
    if (f->n < MAX_FIRED) {
        size_t a = strlen(m->rule), b = strlen(m->message), c = strlen(m->dedup_key);
        char *t = malloc(a + b + c + 3);
        memcpy(t, m->rule, a + 1);
        memcpy(t + a + 1, m->message, b + 1);
        memcpy(t + a + b + 2, m->dedup_key, c + 1);
        f->text[f->n] = t;
    }
    f->n++;
    rules_match_clear(m);
    return 0;
}

static void evaluate(const rule_set *rs, json_object *event)
{
    static const char *const sources[] = {"orders", "clickstream", "sensors", "profiles", "x"};
    for (size_t s = 0; s < sizeof sources / sizeof *sources; s++) {
        fired a = {0}, b = {0};
        int na = rules_evaluate(rs, sources[s], event, on_fired, &a);
        int nb = rules_evaluate(rs, sources[s], event, on_fired, &b);
        CHECK(na >= 0 && na == nb && (size_t)na == a.n && a.n == b.n, "fired %d then %d", na, nb);
        CHECK(na == 0 || rules_watch(rs, sources[s]), "fired on a source no rule watches");
        for (size_t i = 0; i < a.n && i < MAX_FIRED; i++) {
            size_t len = strlen(a.text[i]);
            len += strlen(a.text[i] + len + 1) + 1;
            len += strlen(a.text[i] + len + 1) + 1;
            CHECK(memcmp(a.text[i], b.text[i], len + 1) == 0, "match %zu differs", i);
            free(a.text[i]);
            free(b.text[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return 0;
    size_t rlen = (size_t)(nul - data), elen = size - rlen - 1;
    char *text = malloc(rlen + 1);
    memcpy(text, data, rlen);
    text[rlen] = '\0';
    char *body = malloc(elen ? elen : 1);
    memcpy(body, nul + 1, elen);

    event_validator *v = event_validator_new(SLUICE_MAX_MESSAGE_BYTES);
    json_object *event = NULL;
    if (event_validate(v, body, elen) == EVENT_OK) {
        /* As workers/alerting.c parses the events it evaluates. */
        json_tokener *tok = json_tokener_new_ex(EVENT_MAX_DEPTH + 1);
        event = json_tokener_parse_ex(tok, body, (int)elen);
        json_tokener_free(tok);
        CHECK(event, "an event that passed validation is not parsed");
    }
    event_validator_free(v);
    if (!event) {
        free(text);
        free(body);
        return 0;
    }
    char err[512];
    rule_set *rs = rules_parse(text, "fuzz", err, sizeof err);
    if (rs) {
        evaluate(rs, event);
        rules_free(rs);
    } else {
        CHECK(err[0], "refused without a reason");
        char *out = rules_render(text, event);
        CHECK(out, "out of memory");
        if (ref_utf8_valid(text, rlen))
            CHECK(ref_utf8_valid(out, strlen(out)), "template filled in is not UTF-8: %s", out);
        if (!strchr(text, '{') && !strchr(text, '}'))
            CHECK(strcmp(out, text) == 0, "a template without braces changed");
        free(out);
    }
    json_object_put(event);
    free(text);
    free(body);
    return 0;
}
