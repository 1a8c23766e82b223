/* Unit tests for the binary COPY encoder (workers/pgcopy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgcopy.h"

static void test_copy_stream_layout(void **state)
{
    (void)state;
    pgcopy c = {0};
    pgcopy_begin(&c);
    pgcopy_row(&c, 3);
    pgcopy_text(&c, "ab", 2);
    pgcopy_jsonb(&c, "{}", 2);
    pgcopy_null(&c);
    pgcopy_row(&c, 2);
    pgcopy_timestamptz(&c, INT64_C(946684800000001)); /* 2000-01-01 00:00:00.000001 UTC */
    pgcopy_int4(&c, -2);
    pgcopy_end(&c);

    static const unsigned char expected[] = {
        'P',  'G',  'C',  'O',  'P',  'Y',  '\n', 0xff, '\r', '\n', 0,    /* signature */
        0,    0,    0,    0,    0,    0,    0,    0,                      /* flags, extension */
        0,    3,                                                          /* 3 fields */
        0,    0,    0,    2,    'a',  'b',                                /* text */
        0,    0,    0,    3,    1,    '{',  '}',                          /* jsonb v1 */
        0xff, 0xff, 0xff, 0xff,                                           /* NULL */
        0,    2,                                                          /* 2 fields */
        0,    0,    0,    8,    0,    0,    0,    0,    0,    0,    0, 1, /* 1 us after PG epoch */
        0,    0,    0,    4,    0xff, 0xff, 0xff, 0xfe,                   /* int4 -2 */
        0xff, 0xff,                                                       /* trailer */
    };
    assert_false(c.failed);
    assert_int_equal(c.len, sizeof expected);
    assert_memory_equal(c.data, expected, sizeof expected);

    /* begin empties the buffer for reuse. */
    pgcopy_begin(&c);
    assert_int_equal(c.len, 19);
    pgcopy_free(&c);
}

/* Times before PostgreSQL's epoch (2000) are negative in the stream; a
 * time near INT64_MIN (a header any publisher can set) wraps instead of
 * overflowing (fuzz/corpus/pgcopy/regress-timestamptz-int64-min). */
static void test_copy_times_before_2000(void **state)
{
    (void)state;
    pgcopy c = {0};
    pgcopy_begin(&c);
    pgcopy_row(&c, 2);
    pgcopy_timestamptz(&c, 0); /* 1970-01-01 */
    pgcopy_timestamptz(&c, INT64_MIN);
    static const unsigned char expected[] = {
        0, 2,                                                       /* 2 fields */
        0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* -946684800000000 */
        0, 0, 0, 8, 0x7f, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* wrapped */
    };
    assert_int_equal(c.len, 19 + sizeof expected);
    assert_memory_equal(c.data + 19, expected, sizeof expected);
    pgcopy_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_stream_layout),
        cmocka_unit_test(test_copy_times_before_2000),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
