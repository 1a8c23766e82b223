/* Unit tests for splitting NDJSON input into lines (producer/linebuf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "linebuf.h"

static void test_linebuf(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    linebuf lb;
    assert_int_equal(linebuf_init(&lb, 8), 0);
    const char input[] = "ab\r\n\n0123456789012345678901234567890\nlast";
    assert_int_equal(write(fds[1], input, strlen(input)), (ssize_t)strlen(input));
    close(fds[1]);
    const char *line;
    size_t len, consumed, total = 0;
    assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_OK);
    assert_int_equal(len, 2); /* "\r" dropped */
    assert_memory_equal(line, "ab", 2);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_OK);
    assert_int_equal(len, 0);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_TOO_LONG);
    assert_int_equal(len, 31);
    total += consumed;
    assert_int_equal(linebuf_next(&lb, &line, &len, &consumed), LINE_NONE);
    assert_int_equal(linebuf_fill(&lb, fds[0]), 0);
    assert_int_equal(linebuf_rest(&lb, &line, &len, &consumed), LINE_OK);
    assert_memory_equal(line, "last", 4);
    total += consumed;
    assert_int_equal(total, strlen(input)); /* offsets add up */
    close(fds[0]);
    linebuf_free(&lb);
}

/* A line longer than the whole buffer is dropped piece by piece and still
 * reported as one line of the right size. */
static void test_linebuf_huge_line(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    linebuf lb;
    assert_int_equal(linebuf_init(&lb, 4), 0);
    size_t huge = lb.cap * 2 + 10;
    char *big = malloc(huge + 6);
    memset(big, 'x', huge);
    memcpy(big + huge, "\nok\n", 4);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        ssize_t w = write(fds[1], big, huge + 4);
        _exit(w == (ssize_t)(huge + 4) ? 0 : 1);
    }
    close(fds[1]);
    const char *line;
    size_t len, consumed;
    line_result r;
    while ((r = linebuf_next(&lb, &line, &len, &consumed)) == LINE_NONE)
        assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(r, LINE_TOO_LONG);
    assert_int_equal(len, huge);
    assert_int_equal(consumed, huge + 1);
    while ((r = linebuf_next(&lb, &line, &len, &consumed)) == LINE_NONE)
        assert_true(linebuf_fill(&lb, fds[0]) > 0);
    assert_int_equal(r, LINE_OK);
    assert_memory_equal(line, "ok", 2);
    close(fds[0]);
    free(big);
    linebuf_free(&lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linebuf),
        cmocka_unit_test(test_linebuf_huge_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
