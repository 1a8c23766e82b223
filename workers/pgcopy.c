/*
 * pgcopy: see pgcopy.h. Integers in the stream are big-endian.
 */
#include "pgcopy.h"

#include <stdlib.h>
#include <string.h>

/* PostgreSQL timestamps count from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

static void put(pgcopy *c, const void *bytes, size_t n)
{
    buf_append(c, bytes, n); /* a failure sticks in c->failed */
}

static void put_u16(pgcopy *c, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(c, b, 2);
}

static void put_u32(pgcopy *c, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(c, b, 4);
}

static void put_u64(pgcopy *c, uint64_t v)
{
    put_u32(c, (uint32_t)(v >> 32));
    put_u32(c, (uint32_t)v);
}

void pgcopy_begin(pgcopy *c)
{
    static const char signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', 0};
    buf_clear(c);
    put(c, signature, sizeof signature);
    put_u32(c, 0); /* flags: no OIDs */
    put_u32(c, 0); /* header extension length */
}

void pgcopy_row(pgcopy *c, int nfields)
{
    put_u16(c, (uint16_t)nfields);
}

void pgcopy_text(pgcopy *c, const char *s, size_t len)
{
    put_u32(c, (uint32_t)len);
    put(c, s, len);
}

void pgcopy_jsonb(pgcopy *c, const char *json, size_t len)
{
    static const char version = 1;
    put_u32(c, (uint32_t)len + 1);
    put(c, &version, 1);
    put(c, json, len);
}

void pgcopy_timestamptz(pgcopy *c, int64_t unix_us)
{
    put_u32(c, 8);
    /* In unsigned arithmetic: the same bits, and no overflow (undefined in
     * signed) for a time near INT64_MIN. */
    put_u64(c, (uint64_t)unix_us - (uint64_t)PG_EPOCH_OFFSET_US);
}

void pgcopy_int4(pgcopy *c, int32_t v)
{
    put_u32(c, 4);
    put_u32(c, (uint32_t)v);
}

void pgcopy_null(pgcopy *c)
{
    put_u32(c, UINT32_MAX); /* length -1 */
}

void pgcopy_end(pgcopy *c)
{
    put_u16(c, UINT16_MAX); /* field count -1 */
}

void pgcopy_free(pgcopy *c)
{
    buf_free(c);
}
