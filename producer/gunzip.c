/*
 * gunzip: see gunzip.h. zlib's inflate with gzip framing (windowBits
 * 16 + MAX_WBITS), fed the whole input and drained in pieces into a buf.
 */
#include "gunzip.h"

#include <limits.h>
#include <stdint.h>
#include <zlib.h>

gunzip_result gunzip(const void *in, size_t len, size_t max_out, buf *out)
{
    z_stream z = {0};
    gunzip_result rc = GUNZIP_CORRUPT;
    buf_clear(out);
    if (len > UINT_MAX)
        return GUNZIP_TOO_LARGE;
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return GUNZIP_NO_MEMORY;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    for (;;) {
        if (buf_reserve(out, 65536) != 0) {
            rc = GUNZIP_NO_MEMORY;
            break;
        }
        size_t room = out->cap - out->len - 1; /* buf keeps a NUL after the bytes */
        if (room > 65536)
            room = 65536;
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)room;
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        out->data[out->len] = '\0';
        if (out->len > max_out) {
            rc = GUNZIP_TOO_LARGE;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) {
                rc = GUNZIP_OK;
                break;
            }
            /* Another member follows (gzip allows concatenation). */
            if (inflateReset(&z) != Z_OK)
                break;
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0)
            break; /* cut short */
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            break;
    }
    inflateEnd(&z);
    return rc;
}
