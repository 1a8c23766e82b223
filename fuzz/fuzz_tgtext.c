/*
 * fuzz_tgtext: notifier/tgtext.c building the Telegram text (HTML parse
 * mode) of an alert whose rule, source and message anyone publishing to
 * sluice.alerts may choose.
 *
 * Input: byte 0 picks the limit (0: Telegram's 4096 UTF-16 units, else
 * 160..414, to reach the cutting with short inputs; 160 is the least
 * telegram_text() promises to keep to), byte 1 the severity
 * (info, warning, critical, or the next field as given); then rule, source
 * and message separated by NUL bytes.
 *
 * Properties checked, not only the absence of crashes, when the fields are
 * valid UTF-8 (the notifier takes nothing else): the text is valid UTF-8;
 * its only tags are the leading <b> and its </b>; every '&' starts &amp;
 * &lt; &gt; or &quot; and no '<' or '>' is left bare; what Telegram shows
 * once it has parsed the entities is at most the limit in UTF-16 units;
 * it is "[SEVERITY] rule (source)\n" and the message, or, when *truncated
 * is set, a prefix of the message and "…"; a rule or source over
 * TELEGRAM_MAX_NAME units is shown as its longest prefix of one unit less
 * and "…".
 */
#include <string.h>

#include "check.h"
#include "tgtext.h"

/* UTF-16 units of valid UTF-8 text: 2 for a 4-byte sequence, else 1. */
static size_t units(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if ((c & 0xc0) != 0x80)
            n += c >= 0xf0 ? 2 : 1;
    }
    return n;
}

/* What Telegram shows: tags dropped, entities decoded. Checks the markup
 * on the way. Returns a malloc'd string. */
static char *shown(const char *html, size_t *shown_len)
{
    size_t len = strlen(html), n = 0;
    char *out = malloc(len + 1);
    CHECK(strncmp(html, "<b>", 3) == 0, "does not start with <b>");
    int closed = 0;
    for (size_t i = 3; i < len;) {
        if (html[i] == '<') {
            CHECK(!closed && strncmp(html + i, "</b>", 4) == 0, "a tag at %zu: %.10s", i, html + i);
            closed = 1;
            i += 4;
        } else if (html[i] == '>') {
            CHECK(0, "a bare '>' at %zu", i);
        } else if (html[i] == '&') {
            static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;"};
            static const char dec[] = "&<>\"";
            size_t k = 0;
            while (k < 4 && strncmp(html + i, ent[k], strlen(ent[k])) != 0)
                k++;
            CHECK(k < 4, "a broken entity at %zu: %.8s", i, html + i);
            out[n++] = dec[k];
            i += strlen(ent[k]);
        } else {
            out[n++] = html[i++];
        }
    }
    CHECK(closed, "<b> never closed");
    out[n] = '\0';
    *shown_len = n;
    return out;
}

/* A name as shown: whole, or its longest prefix of TELEGRAM_MAX_NAME - 1
 * units and "…". Appends to out. */
static size_t shown_name(const char *s, char *out)
{
    size_t len = strlen(s);
    if (units(s, len) <= TELEGRAM_MAX_NAME) {
        memcpy(out, s, len);
        return len;
    }
    size_t keep = 0, u = 0;
    while (keep < len) {
        size_t w = (uint8_t)s[keep] >= 0xf0 ? 2 : 1, step = 1;
        while (keep + step < len && ((uint8_t)s[keep + step] & 0xc0) == 0x80)
            step++;
        if (u + w > TELEGRAM_MAX_NAME - 1)
            break;
        u += w;
        keep += step;
    }
    memcpy(out, s, keep);
    memcpy(out + keep, "\xe2\x80\xa6", 3);
    return keep + 3;
}

/* "[SEVERITY] rule (source)\n": the severity's first 15 bytes at most, cut
 * before a character, a-z in capitals. */
static char *expected_head(const char *severity, const char *rule, const char *source)
{
    char *h = malloc(strlen(severity) + strlen(rule) + strlen(source) + 32);
    size_t sl = strlen(severity) < 15 ? strlen(severity) : 15, n = 0;
    while (sl > 0 && severity[sl] && ((uint8_t)severity[sl] & 0xc0) == 0x80)
        sl--;
    h[n++] = '[';
    for (size_t i = 0; i < sl; i++)
        h[n++] = severity[i] >= 'a' && severity[i] <= 'z' ? severity[i] - 32 : severity[i];
    h[n++] = ']';
    h[n++] = ' ';
    n += shown_name(rule, h + n);
    h[n++] = ' ';
    h[n++] = '(';
    n += shown_name(source, h + n);
    h[n++] = ')';
    h[n++] = '\n';
    h[n] = '\0';
    return h;
}

static const char *field(const uint8_t **p, const uint8_t *end, char **owned)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    size_t n = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += nul ? n + 1 : n;
    *owned = s;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char *const severities[] = {"info", "warning", "critical"};
    size_t limit = data[0] ? 159 + data[0] : TELEGRAM_MAX_TEXT;
    const uint8_t *p = data + 2, *end = data + size;
    char *own[4] = {NULL};
    const char *severity = data[1] % 4 < 3 ? severities[data[1] % 4] : field(&p, end, &own[3]);
    const char *rule = field(&p, end, &own[0]);
    const char *source = field(&p, end, &own[1]);
    const char *message = field(&p, end, &own[2]);

    int truncated = -1;
    char *text = telegram_text(severity, rule, source, message, limit, &truncated);
    CHECK(text, "out of memory");
    CHECK(truncated == 0 || truncated == 1, "truncated is %d", truncated);
    if (ref_utf8_valid(severity, strlen(severity)) && ref_utf8_valid(rule, strlen(rule)) &&
        ref_utf8_valid(source, strlen(source)) && ref_utf8_valid(message, strlen(message))) {
        CHECK(ref_utf8_valid(text, strlen(text)), "text not UTF-8");
        size_t n;
        char *seen = shown(text, &n);
        CHECK(units(seen, n) <= limit, "%zu UTF-16 units shown, limit %zu", units(seen, n), limit);
        /* The header as shown, then the message or a prefix of it and "…". */
        char *head = expected_head(severity, rule, source);
        size_t hl = strlen(head);
        CHECK(n >= hl && memcmp(seen, head, hl) == 0, "header %.*s, expected %s",
              (int)(n < hl ? n : hl), seen, head);
        free(head);
        size_t ml = strlen(message);
        const char *shown_msg = seen + hl;
        size_t sml = n - (size_t)(shown_msg - seen);
        if (!truncated) {
            CHECK(sml == ml && memcmp(shown_msg, message, ml) == 0, "message changed");
        } else {
            CHECK(sml >= 3 && memcmp(shown_msg + sml - 3, "\xe2\x80\xa6", 3) == 0,
                  "cut without an ellipsis");
            CHECK(sml - 3 < ml && memcmp(shown_msg, message, sml - 3) == 0,
                  "cut message is not a prefix");
        }
        free(seen);
    }
    free(text);
    for (int i = 0; i < 4; i++)
        free(own[i]);
    return 0;
}
