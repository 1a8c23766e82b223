/*
 * grouptext: see grouptext.h.
 */
#include "grouptext.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgtext.h"

void group_thousands(long n, char *out, size_t outlen)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", n < 0 ? -n : n);
    size_t o = 0;
    if (n < 0 && o + 1 < outlen)
        out[o++] = '-';
    for (int i = 0; i < len && o + 1 < outlen; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < outlen)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* A growing string; `failed` once an allocation failed. */
typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_escaped(text *t, const char *s)
{
    size_t n = strlen(s);
    char *buf = malloc(6 * n + 1);
    if (!buf) {
        t->failed = 1;
        return;
    }
    put(t, buf, html_escape(s, n, buf));
    free(buf);
}

static void put_str(text *t, const char *s)
{
    put(t, s, strlen(s));
}

char *group_text(const alert *shown, size_t nshown, long total, double span_s, const char *title,
                 int name_rule)
{
    const alert *first = &shown[0];
    if (total <= 1) {
        int truncated;
        return telegram_text(first->severity, first->rule, first->source, first->message, SIZE_MAX,
                             &truncated);
    }
    char sev[16];
    size_t i = 0;
    for (; first->severity[i] && i + 1 < sizeof sev; i++)
        sev[i] = (char)toupper((unsigned char)first->severity[i]);
    sev[i] = '\0';
    text t = {0};
    char count[32], span[32];
    group_thousands(total, count, sizeof count);
    if (span_s < 10)
        snprintf(span, sizeof span, "%.1f", span_s);
    else
        snprintf(span, sizeof span, "%.0f", span_s);
    put_str(&t, "<b>[");
    put_str(&t, sev);
    put_str(&t, "] ");
    put_escaped(&t, title);
    put_str(&t, "</b>: ");
    put_str(&t, count);
    put_str(&t, " alerts in ");
    put_str(&t, span);
    put_str(&t, " s\n");
    for (size_t k = 0; k < nshown; k++) {
        put_str(&t, "\xe2\x80\xa2 ");
        if (name_rule) {
            put_escaped(&t, shown[k].rule);
            put_str(&t, " ");
        }
        put_str(&t, "(");
        put_escaped(&t, shown[k].source);
        put_str(&t, ") ");
        put_escaped(&t, shown[k].message);
        put_str(&t, "\n");
    }
    if ((long)nshown < total) {
        group_thousands(total - (long)nshown, count, sizeof count);
        put_str(&t, "\xe2\x80\xa6 and ");
        put_str(&t, count);
        put_str(&t, " more");
    }
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

/* Bytes and UTF-16 units of the token at s: a tag, an entity or a UTF-8
 * character, none of which a split may cut. */
static size_t token(const char *s, size_t *units)
{
    const unsigned char *u = (const unsigned char *)s;
    if (*s == '<' || *s == '&') {
        const char *end = strchr(s, *s == '<' ? '>' : ';');
        *units = *s == '<' ? 0 : 1;
        if (end)
            return (size_t)(end - s) + 1;
        *units = 1;
        return 1;
    }
    size_t n = u[0] < 0x80         ? 1
               : (u[0] >> 5) == 6  ? 2
               : (u[0] >> 4) == 14 ? 3
               : (u[0] >> 3) == 30 ? 4
                                   : 1;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            n = 1;
            break;
        }
    }
    *units = n == 4 ? 2 : 1;
    return n;
}

size_t group_split(const char *textin, size_t limit, char ***parts)
{
    size_t n = 0, cap = 4, len = strlen(textin);
    char **out = malloc(cap * sizeof *out);
    if (!out || limit < 2)
        goto fail;
    size_t start = 0;
    while (start < len || n == 0) {
        size_t pos = start, units = 0, line_end = 0;
        while (pos < len) {
            size_t w, k = token(textin + pos, &w);
            if (units + w > limit)
                break;
            units += w;
            pos += k;
            if (textin[pos - 1] == '\n' && units >= limit / 2)
                line_end = pos;
        }
        size_t end = pos < len && line_end ? line_end : pos;
        if (n == cap) {
            char **grown = realloc(out, (cap *= 2) * sizeof *out);
            if (!grown)
                goto fail;
            out = grown;
        }
        if (!(out[n] = strndup(textin + start, end - start)))
            goto fail;
        n++;
        start = end;
    }
    *parts = out;
    return n;
fail:
    group_parts_free(out, n);
    return 0;
}

void group_parts_free(char **parts, size_t n)
{
    if (!parts)
        return;
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
}
