/*
 * grouptext: the text of a chat message for one alert or a group of them,
 * in Telegram's HTML parse mode, and its split into parts a chat accepts.
 * Pure.
 *
 * One alert reads as before grouping: "<b>[CRITICAL] rule</b> (source)"
 * and the message. A group says what it is and how many, lists the first
 * few in full and counts the rest:
 *
 *   <b>[INFO] checkout_search</b>: 1,316 alerts in 30 s
 *   • (clickstream) Session s-1001 searched "music es" ...
 *   • ...
 *   … and 1,311 more
 *
 * Every interpolated value is escaped (tgtext.h). A text longer than the
 * chat allows is split into parts, never cut: at a line break where one
 * falls in the second half of a part, else at a character boundary, never
 * inside an entity (&amp;) or a tag.
 */
#ifndef SLUICE_GROUPTEXT_H
#define SLUICE_GROUPTEXT_H

#include <stddef.h>

#include "alert.h"

/*
 * The text for a message of `total` alerts, shown[0..nshown) of them in
 * full (nshown >= 1; the first one's severity heads the message, so pass
 * the most severe first). `title` names the group (the rule when grouped by
 * rule); with name_rule each listed alert names its rule too. span_s: from
 * the first alert raised to the last. Returns a malloc'd string (free it),
 * or NULL on allocation failure.
 */
char *group_text(const alert *shown, size_t nshown, long total, double span_s, const char *title,
                 int name_rule);

/* "1,316": n with a comma every three digits, into out. */
void group_thousands(long n, char *out, size_t outlen);

/*
 * Splits an HTML text into parts of at most `limit` UTF-16 units once
 * parsed (tags count nothing, an entity one). Returns the number of parts
 * with *parts set to a malloc'd array of malloc'd strings (free with
 * group_parts_free()), or 0 on allocation failure.
 */
size_t group_split(const char *text, size_t limit, char ***parts);
void group_parts_free(char **parts, size_t n);

#endif
