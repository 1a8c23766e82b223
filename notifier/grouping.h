/*
 * grouping: which alerts share a message on a chat channel, and when it
 * goes out, as Alertmanager does it. Pure.
 *
 *   group_by           rule (default), any of rule, severity, source
 *                      (comma-separated), or alert: every alert alone
 *   group_wait_ms      a group's first message waits this long after its
 *                      first alert, to gather the burst (30000)
 *   group_interval_ms  then at most one message per group this often
 *                      (300000)
 *   group_show         alerts listed in full in a message; the rest are
 *                      counted (5)
 *   group_max          alerts in one message at most (10000)
 *
 * The destination is always part of the group: each chat gets its own.
 */
#ifndef SLUICE_GROUPING_H
#define SLUICE_GROUPING_H

#include <stddef.h>

#include "alert.h"

typedef struct grouping {
    int by_rule, by_severity, by_source; /* all 0: each alert alone */
    long wait_ms, interval_ms;
    long show, max;
} grouping;

/* Parses group_by into g's by_* fields. Returns 0, or -1 with err naming
 * the bad word. */
int grouping_parse(const char *group_by, grouping *g, char *err, size_t errlen);

/* 1 if alerts share messages at all. */
int grouping_on(const grouping *g);

/* The group of alert a: the values it is grouped by, joined by " " (the
 * rule alone by default, which is also the message's title). Alone: the
 * alert id. */
void grouping_key(const grouping *g, const alert *a, char *out, size_t outlen);

#endif
