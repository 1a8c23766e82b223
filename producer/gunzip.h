/*
 * gunzip: inflates a gzip-encoded request body (Content-Encoding: gzip)
 * with a bound on what it may grow to, so a small body that inflates to
 * gigabytes (a "zip bomb") costs no more memory than the bound.
 */
#ifndef SLUICE_GUNZIP_H
#define SLUICE_GUNZIP_H

#include <stddef.h>

#include "buf.h"

typedef enum {
    GUNZIP_OK = 0,
    GUNZIP_CORRUPT = -1,   /* not gzip, damaged or cut short */
    GUNZIP_TOO_LARGE = -2, /* would inflate to more than max_out bytes */
    GUNZIP_NO_MEMORY = -3,
} gunzip_result;

/* Inflates in[0, len) (one gzip member, or several one after the other)
 * into out (cleared first). */
gunzip_result gunzip(const void *in, size_t len, size_t max_out, buf *out);

#endif
