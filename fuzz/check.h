/*
 * check: what the fuzz targets share. CHECK() aborts with the failed
 * property and its line, so libFuzzer keeps the input as a crash; and a
 * UTF-8 check written from the Unicode standard's table of well-formed
 * byte sequences (Table 3-7), independent of the decoder in common/event.c
 * that fuzz_event compares it with.
 */
#ifndef SLUICE_FUZZ_CHECK_H
#define SLUICE_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Table 3-7: for each lead byte, the allowed range of the second byte, and
 * how many continuation bytes (80..BF) follow. */
static inline int ref_utf8_valid(const void *data, size_t len)
{
    const uint8_t *s = data;
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        size_t extra;
        uint8_t lo = 0x80, hi = 0xbf;
        if (b <= 0x7f) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            extra = 1;
        } else if (b == 0xe0) {
            extra = 2, lo = 0xa0;
        } else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
            extra = 2;
        } else if (b == 0xed) {
            extra = 2, hi = 0x9f;
        } else if (b == 0xf0) {
            extra = 3, lo = 0x90;
        } else if (b >= 0xf1 && b <= 0xf3) {
            extra = 3;
        } else if (b == 0xf4) {
            extra = 3, hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i <= extra)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= extra; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        }
        i += extra + 1;
    }
    return 1;
}

#endif
