/*
 * grouping: see grouping.h.
 */
#include "grouping.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

int grouping_parse(const char *group_by, grouping *g, char *err, size_t errlen)
{
    strlist words = {0};
    if (strlist_split(group_by, &words) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rule = 0, severity = 0, source = 0, alone = 0, rc = 0;
    for (size_t i = 0; i < words.count && rc == 0; i++) {
        const char *w = words.items[i];
        if (strcmp(w, "rule") == 0)
            rule = 1;
        else if (strcmp(w, "severity") == 0)
            severity = 1;
        else if (strcmp(w, "source") == 0)
            source = 1;
        else if (strcmp(w, "alert") == 0)
            alone = 1;
        else {
            snprintf(err, errlen,
                     "group_by: unknown '%s' (use rule, severity and source, comma-separated, or "
                     "alert)",
                     w);
            rc = -1;
        }
    }
    if (rc == 0 && (words.count == 0 || (alone && words.count > 1))) {
        snprintf(err, errlen, "group_by: name rule, severity and/or source, or alert alone");
        rc = -1;
    }
    strlist_free(&words);
    if (rc == 0) {
        g->by_rule = rule;
        g->by_severity = severity;
        g->by_source = source;
    }
    return rc;
}

int grouping_on(const grouping *g)
{
    return g->by_rule || g->by_severity || g->by_source;
}

void grouping_key(const grouping *g, const alert *a, char *out, size_t outlen)
{
    if (!grouping_on(g)) {
        snprintf(out, outlen, "%s", a->alert_id);
        return;
    }
    out[0] = '\0';
    const char *parts[3] = {g->by_rule ? a->rule : NULL, g->by_severity ? a->severity : NULL,
                            g->by_source ? a->source : NULL};
    for (size_t i = 0; i < 3; i++) {
        if (!parts[i])
            continue;
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", used ? " " : "", parts[i]);
    }
}
