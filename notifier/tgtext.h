/*
 * tgtext: the text of a Telegram message for an alert, in the Bot API's
 * HTML parse mode. Pure.
 *
 * Every interpolated value (severity, rule, source, message) is escaped
 * (& < > and "), so an event field can never open a tag or break the
 * parsing ("can't parse entities" is a 400 that no retry would fix).
 * Telegram allows 4096 characters of text after entity parsing, counted in
 * UTF-16 code units; a longer alert is cut at a character boundary (never
 * inside a UTF-8 sequence, a surrogate pair or an entity) and ends with
 * "…" so the reader sees it was cut.
 */
#ifndef SLUICE_TGTEXT_H
#define SLUICE_TGTEXT_H

#include <stddef.h>

#define TELEGRAM_MAX_TEXT 4096
/* Rule and source names are at most 64 characters when sluice raised the
 * alert; longer ones (anyone may publish to sluice.alerts) are cut to this
 * many UTF-16 units, "…" included, so the header (at most 150 units) never
 * crowds the message out of the limit. */
#define TELEGRAM_MAX_NAME 64

/* Appends s[0..len) to out with &, <, > and " escaped. out must have room
 * for 6 * len + 1 bytes. Returns the bytes written (without the NUL). */
size_t html_escape(const char *s, size_t len, char *out);

/* UTF-16 code units of a UTF-8 string (4-byte sequences count 2; a byte
 * that starts no valid sequence counts 1). */
size_t utf16_units(const char *s, size_t len);

/* The longest prefix of s[0..len) that is at most max_units UTF-16 units
 * and ends at a character boundary. Returns its length in bytes. */
size_t utf8_prefix_units(const char *s, size_t len, size_t max_units);

/*
 * Builds "<b>[SEVERITY] rule</b> (source)\n" + message, escaped, at most
 * `limit` UTF-16 units once parsed when limit >= 160 (the message is cut to
 * fit; SEVERITY is at most 15 bytes, rule and source TELEGRAM_MAX_NAME
 * units). Returns a malloc'd string (free it), or NULL on allocation
 * failure. *truncated is set to 1 if the message had to be cut.
 */
char *telegram_text(const char *severity, const char *rule, const char *source, const char *message,
                    size_t limit, int *truncated);

#endif
