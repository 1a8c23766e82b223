/* Unit tests for what an NDJSON line becomes (producer/line_event.c), the
 * one rule of the file and stdin adapters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "line_event.h"

static int make(const char *line, line_result r, size_t len, source_event *ev, char *id)
{
    memset(ev, 0, sizeof *ev);
    return line_event(ev, r, line, len, "src", "gen0", 42, id);
}

static void test_blank_lines_are_nothing(void **state)
{
    (void)state;
    static const char *const blanks[] = {"", " ", "\t", "\r", " \t\r", "\r\r"};
    for (size_t i = 0; i < sizeof blanks / sizeof *blanks; i++) {
        source_event ev;
        char id[SOURCE_EVENT_ID_LEN + 1] = "";
        if (make(blanks[i], LINE_OK, strlen(blanks[i]), &ev, id) != 0)
            fail_msg("case %zu is not blank", i);
        assert_null(ev.body);
        assert_null(ev.skip_reason);
        assert_string_equal(id, "");
    }
    assert_int_equal(line_blank("\v", 1), 0); /* not JSON whitespace */
}

static void test_event_and_its_id(void **state)
{
    (void)state;
    const char *line = " {\"a\":1}\r"; /* kept as read: JSON allows the blanks */
    source_event ev;
    char id[SOURCE_EVENT_ID_LEN + 1], want[SOURCE_EVENT_ID_LEN + 1];
    assert_int_equal(make(line, LINE_OK, strlen(line), &ev, id), 1);
    assert_ptr_equal(ev.body, line);
    assert_int_equal(ev.len, strlen(line));
    assert_ptr_equal(ev.msg_id, id);
    assert_null(ev.skip_reason);
    source_event_id("src", "gen0", 42, line, strlen(line), want);
    assert_string_equal(id, want);
    /* Another place, another id: the same line written again is new. */
    source_event_id("src", "gen0", 43, line, strlen(line), want);
    assert_string_not_equal(id, want);
}

static void test_too_long_is_a_skip(void **state)
{
    (void)state;
    source_event ev;
    char id[SOURCE_EVENT_ID_LEN + 1] = "";
    assert_int_equal(make(NULL, LINE_TOO_LONG, 5000000, &ev, id), 1);
    assert_string_equal(ev.skip_reason, "line_too_long");
    assert_int_equal(ev.len, 5000000);
    assert_null(ev.body);
    assert_null(ev.msg_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_lines_are_nothing),
        cmocka_unit_test(test_event_and_its_id),
        cmocka_unit_test(test_too_long_is_a_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
