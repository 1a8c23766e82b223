/*
 * fuzz_pgcopy: workers/pgcopy.c encoding any rows into PostgreSQL's binary
 * COPY format, checked by a decoder written here from PostgreSQL's
 * documentation of the format ("Binary Format" under COPY).
 *
 * Input: a program. Each row: a byte giving its number of fields (0..7),
 * then per field a byte for its kind (text, jsonb, timestamptz, null) and
 * its value (a length byte and that many bytes, or 8 bytes of time). The
 * rows are written twice, into one buffer (pgcopy_begin must start afresh).
 *
 * Property checked, not only the absence of crashes: the stream decodes
 * back to the same rows and fields, byte for byte, and ends where the
 * trailer says it does.
 */
#include <string.h>

#include "check.h"
#include "pgcopy.h"

#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

enum { F_TEXT, F_JSONB, F_TIME, F_NULL };

typedef struct field {
    int kind;
    const uint8_t *bytes;
    size_t len;
    int64_t us;
} field;

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint64_t get(reader *r, int bytes)
{
    CHECK(r->end - r->p >= bytes, "stream cut short");
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | *r->p++;
    return v;
}

static void decode(const pgcopy *c, const field *fields, const size_t *row_fields, size_t rows)
{
    static const uint8_t signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    reader r = {(const uint8_t *)c->data, (const uint8_t *)c->data + c->len};
    CHECK(c->len >= 19 && memcmp(r.p, signature, 11) == 0, "no signature");
    r.p += 11;
    CHECK(get(&r, 4) == 0, "flags"); /* bit 16 would mean OIDs */
    uint64_t ext = get(&r, 4);
    CHECK(ext <= (uint64_t)(r.end - r.p), "header extension past the end");
    r.p += ext;
    size_t f = 0;
    for (size_t row = 0; row < rows; row++) {
        uint64_t n = get(&r, 2);
        CHECK(n == row_fields[row], "row %zu: %llu fields, wrote %zu", row, (unsigned long long)n,
              row_fields[row]);
        for (size_t i = 0; i < n; i++, f++) {
            int32_t len = (int32_t)(uint32_t)get(&r, 4);
            const field *w = &fields[f];
            if (w->kind == F_NULL) {
                CHECK(len == -1, "row %zu field %zu: null has length %d", row, i, len);
                continue;
            }
            CHECK(len >= 0 && len <= r.end - r.p, "row %zu field %zu: length %d", row, i, len);
            if (w->kind == F_TEXT) {
                CHECK((size_t)len == w->len && memcmp(r.p, w->bytes, w->len) == 0,
                      "row %zu field %zu: text differs", row, i);
            } else if (w->kind == F_JSONB) {
                CHECK((size_t)len == w->len + 1 && r.p[0] == 1 &&
                          memcmp(r.p + 1, w->bytes, w->len) == 0,
                      "row %zu field %zu: jsonb differs", row, i);
            } else {
                reader t = {r.p, r.p + len};
                CHECK(len == 8, "row %zu field %zu: timestamptz of %d bytes", row, i, len);
                uint64_t pg = get(&t, 8);
                CHECK((int64_t)(pg + (uint64_t)PG_EPOCH_OFFSET_US) == w->us,
                      "row %zu field %zu: time %lld came back as %lld", row, i, (long long)w->us,
                      (long long)(pg + (uint64_t)PG_EPOCH_OFFSET_US));
            }
            r.p += len;
        }
    }
    CHECK(get(&r, 2) == 0xffff, "no trailer after %zu rows", rows);
    CHECK(r.p == r.end, "%zu bytes after the trailer", (size_t)(r.end - r.p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    field *fields = calloc(size * 7 + 1, sizeof *fields);
    size_t *row_fields = calloc(size + 1, sizeof *row_fields);
    size_t nf = 0, rows = 0, i = 0;
    while (i < size) {
        size_t n = data[i++] % 8;
        row_fields[rows++] = n;
        for (size_t k = 0; k < n; k++) {
            field *f = &fields[nf++];
            f->kind = i < size ? data[i++] % 4 : F_NULL;
            if (f->kind == F_TEXT || f->kind == F_JSONB) {
                size_t len = i < size ? data[i++] : 0;
                f->len = len < size - i ? len : size - i;
                f->bytes = data + i;
                i += f->len;
            } else if (f->kind == F_TIME) {
                uint64_t u = 0;
                for (int b = 0; b < 8; b++)
                    u = u << 8 | (i < size ? data[i++] : 0);
                f->us = (int64_t)u;
            }
        }
    }
    pgcopy c = {0};
    for (int round = 0; round < 2; round++) {
        pgcopy_begin(&c);
        size_t f = 0;
        for (size_t row = 0; row < rows; row++) {
            pgcopy_row(&c, (int)row_fields[row]);
            for (size_t k = 0; k < row_fields[row]; k++, f++) {
                const field *w = &fields[f];
                if (w->kind == F_TEXT)
                    pgcopy_text(&c, (const char *)w->bytes, w->len);
                else if (w->kind == F_JSONB)
                    pgcopy_jsonb(&c, (const char *)w->bytes, w->len);
                else if (w->kind == F_TIME)
                    pgcopy_timestamptz(&c, w->us);
                else
                    pgcopy_null(&c);
            }
        }
        pgcopy_end(&c);
        CHECK(!c.failed, "allocation failed");
        decode(&c, fields, row_fields, rows);
    }
    pgcopy_free(&c);
    free(fields);
    free(row_fields);
    return 0;
}
