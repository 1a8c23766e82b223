/*
 * tgtext: see tgtext.h.
 */
#include "tgtext.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t html_escape(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            out[n++] = s[i];
            continue;
        }
        size_t k = strlen(rep);
        memcpy(out + n, rep, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

/* Length of the UTF-8 sequence starting at s (at most len bytes), or 0 if
 * none starts there. Enough to find boundaries; validity was checked when
 * the event was stored. */
static size_t seq_len(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80         ? 1
               : (s[0] >> 5) == 6  ? 2
               : (s[0] >> 4) == 14 ? 3
               : (s[0] >> 3) == 30 ? 4
                                   : 0;
    if (n == 0 || n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}

/* Walks s; stops before the character that would pass max_units. */
static size_t walk(const char *s, size_t len, size_t max_units, size_t *units)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, total = 0;
    while (i < len) {
        size_t n = seq_len(u + i, len - i);
        size_t w = n == 4 ? 2 : 1;
        if (total + w > max_units)
            break;
        total += w;
        i += n ? n : 1;
    }
    *units = total;
    return i;
}

size_t utf8_prefix_units(const char *s, size_t len, size_t max_units)
{
    size_t units;
    return walk(s, len, max_units, &units);
}

size_t utf16_units(const char *s, size_t len)
{
    size_t units;
    walk(s, len, (size_t)-1, &units);
    return units;
}

static size_t units_of(const char *s)
{
    size_t units;
    walk(s, strlen(s), (size_t)-1, &units);
    return units;
}

/* s cut to at most max_units UTF-16 units, ending with "…" if cut. Returns
 * a malloc'd string, or NULL on allocation failure. */
static char *cut_name(const char *s, size_t max_units)
{
    size_t len = strlen(s), keep = len;
    int cut = utf16_units(s, len) > max_units;
    if (cut)
        keep = utf8_prefix_units(s, len, max_units - 1);
    char *out = malloc(keep + 4);
    if (!out)
        return NULL;
    memcpy(out, s, keep);
    memcpy(out + keep, cut ? "\xe2\x80\xa6" : "", cut ? 4 : 1);
    return out;
}

char *telegram_text(const char *severity, const char *rule_in, const char *source_in,
                    const char *message, size_t limit, int *truncated)
{
    char sev[16];
    size_t i = 0;
    for (; severity[i] && i + 1 < sizeof sev; i++)
        sev[i] = (char)toupper((unsigned char)severity[i]);
    while (i > 0 && severity[i] && ((unsigned char)severity[i] & 0xc0) == 0x80)
        i--; /* cut before a character, never inside one */
    sev[i] = '\0';
    char *rule = cut_name(rule_in, TELEGRAM_MAX_NAME),
         *source = cut_name(source_in, TELEGRAM_MAX_NAME);
    if (!rule || !source) {
        free(rule);
        free(source);
        return NULL;
    }
    /* What the reader sees of the header, to count it against the limit. */
    size_t head_units = units_of(sev) + units_of(rule) + units_of(source) + 7; /* "[] ()\n" */
    size_t budget = limit > head_units ? limit - head_units : 0;
    size_t len = strlen(message), keep = len;
    *truncated = 0;
    if (utf16_units(message, len) > budget) {
        keep = utf8_prefix_units(message, len, budget ? budget - 1 : 0); /* room for "…" */
        *truncated = 1;
    }
    size_t cap = 6 * (strlen(sev) + strlen(rule) + strlen(source) + keep) + 64;
    char *out = malloc(cap);
    if (!out) {
        free(rule);
        free(source);
        return NULL;
    }
    size_t n = 0;
    memcpy(out + n, "<b>[", 4);
    n += 4;
    n += html_escape(sev, strlen(sev), out + n);
    memcpy(out + n, "] ", 2);
    n += 2;
    n += html_escape(rule, strlen(rule), out + n);
    memcpy(out + n, "</b> (", 6);
    n += 6;
    n += html_escape(source, strlen(source), out + n);
    memcpy(out + n, ")\n", 2);
    n += 2;
    n += html_escape(message, keep, out + n);
    if (*truncated) {
        memcpy(out + n, "\xe2\x80\xa6", 3);
        n += 3;
    }
    out[n] = '\0';
    free(rule);
    free(source);
    return out;
}
