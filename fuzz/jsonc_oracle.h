/*
 * jsonc_oracle: where json-c's strict parser can serve as the oracle of
 * the JSON targets (fuzz_event, fuzz_json_scan). json-c 0.18 (Debian 13)
 * refuses, in strict mode, valid JSON of two kinds that 0.16 (Debian 12)
 * takes: any byte above 0x7f (valid UTF-8 included), and integers beyond
 * 64 bits. With such a json-c the comparison leaves out texts that hold
 * either (a run of 19 or more digits stands for the second), since its
 * "not JSON" there says nothing about the text. Each refusal is probed
 * once, at the first call, rather than read from a version number.
 */
#ifndef SLUICE_FUZZ_JSONC_ORACLE_H
#define SLUICE_FUZZ_JSONC_ORACLE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether json-c's strict mode takes `text` (a value, then a blank that
 * ends it). */
static inline int jsonc_strict_takes(const char *text)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text));
    int ok = json_tokener_get_error(tok) == json_tokener_success;
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

/* Whether json-c's strict verdict on these bytes is worth comparing with. */
static inline int jsonc_oracle_covers(const void *data, size_t len)
{
    static int takes_utf8 = -1, takes_big_integers = -1;
    if (takes_utf8 < 0) {
        takes_utf8 = jsonc_strict_takes("\"\xc3\xa9\" "); /* "é" */
        takes_big_integers = jsonc_strict_takes("-77777777777777777777777 ");
    }
    const uint8_t *s = data;
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] > 0x7f && !takes_utf8)
            return 0;
        digits = s[i] >= '0' && s[i] <= '9' ? digits + 1 : 0;
        if (digits >= 19 && !takes_big_integers)
            return 0;
    }
    return 1;
}

#endif
