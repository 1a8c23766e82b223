/* Unit tests for the file adapter's restart rules (producer/adapter_file.c),
 * driven directly through its vtable on real files in a temporary folder:
 * after a checkpoint a restart resumes at the next line; after a crash
 * before any checkpoint, or across a rotation or truncation the checkpoint
 * has not caught up with, a restart reads the lines again with the same
 * message ids (so the warehouse absorbs them) and never skips one. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapter.h"

static char dir[] = "/tmp/sluice-unit-file-XXXXXX";
static char path[300], rotated[300], checkpoint[300];
static atomic_int stop;

static cfg_entry entries[3];
static unsigned char used[3];

static void *open_adapter(void)
{
    entries[0] = (cfg_entry){"path", path, 2};
    entries[1] = (cfg_entry){"checkpoint", checkpoint, 3};
    entries[2] = (cfg_entry){"poll_ms", "10", 4};
    source_spec spec = {.name = "f",
                        .settings = entries,
                        .nsettings = 3,
                        .used = used,
                        .checkpoint_dir = dir,
                        .stop = &stop};
    void *state = NULL;
    char err[512];
    if (adapter_open(adapter_find("file"), &spec, &state, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return state;
}

typedef struct got {
    char body[128];
    char id[SOURCE_EVENT_ID_LEN + 1];
    uint64_t position;
} got;

/* The next event, or fails after a few idle rounds. */
static got next_event(void *state)
{
    got g;
    for (int idle = 0; idle < 50; idle++) {
        source_event ev;
        char err[512];
        adapter_result r = adapter_find("file")->next(state, &ev, err, sizeof err);
        if (r == ADAPTER_ERROR)
            fail_msg("next: %s", err);
        if (r != ADAPTER_EVENT || ev.skip_reason)
            continue;
        snprintf(g.body, sizeof g.body, "%.*s", (int)ev.len, ev.body);
        snprintf(g.id, sizeof g.id, "%s", ev.msg_id);
        g.position = ev.position;
        return g;
    }
    fail_msg("no event came");
    return g;
}

static void assert_idle(void *state)
{
    source_event ev;
    char err[512];
    assert_int_equal(adapter_find("file")->next(state, &ev, err, sizeof err), ADAPTER_IDLE);
}

static void checkpoint_at(void *state, uint64_t position)
{
    char err[512];
    if (adapter_find("file")->checkpoint(state, position, err, sizeof err) != 0)
        fail_msg("checkpoint: %s", err);
}

static void append(const char *file, const char *text)
{
    FILE *f = fopen(file, "a");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int fresh(void **state)
{
    (void)state;
    unlink(path);
    unlink(rotated);
    unlink(checkpoint);
    return 0;
}

static void test_resume_after_checkpoint(void **state)
{
    (void)state;
    append(path, "{\"n\":1}\n{\"n\":2}\n");
    void *a = open_adapter();
    got one = next_event(a);
    got two = next_event(a);
    assert_string_equal(one.body, "{\"n\":1}");
    assert_string_not_equal(one.id, two.id);
    checkpoint_at(a, one.position);
    adapter_find("file")->close(a);

    a = open_adapter(); /* line 2 was not confirmed: read again, same id */
    got again = next_event(a);
    assert_string_equal(again.body, "{\"n\":2}");
    assert_string_equal(again.id, two.id);
    checkpoint_at(a, again.position);
    assert_idle(a);
    adapter_find("file")->close(a);

    a = open_adapter();
    assert_idle(a);
    append(path, "{\"n\":3}\n");
    assert_string_equal(next_event(a).body, "{\"n\":3}");
    adapter_find("file")->close(a);
}

/* The file appears after the start; a crash before any checkpoint. */
/* A CRLF file: its line ends and its blank lines (a CR, or blanks and a
 * CR) are not part of any event, so nothing is skipped as invalid JSON;
 * stdin reads lines through the same line_event(). */
static void test_crlf_lines(void **state)
{
    (void)state;
    append(path, "{\"n\":1}\r\n\r\n \t\r\n\r\r\n{\"n\":2}\r\n");
    void *a = open_adapter();
    int events = 0, skips = 0;
    for (int idle = 0; idle < 3;) {
        source_event ev = {0};
        char err[512];
        adapter_result r = adapter_find("file")->next(a, &ev, err, sizeof err);
        if (r == ADAPTER_ERROR)
            fail_msg("next: %s", err);
        if (r != ADAPTER_EVENT) {
            idle++;
            continue;
        }
        if (ev.skip_reason) {
            skips++;
            continue;
        }
        events++;
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", events);
        assert_int_equal(ev.len, strlen(want));
        assert_memory_equal(ev.body, want, ev.len);
    }
    assert_int_equal(events, 2);
    assert_int_equal(skips, 0);
    adapter_find("file")->close(a);
}

static void test_file_appears_then_crash(void **state)
{
    (void)state;
    void *a = open_adapter();
    assert_idle(a);
    append(path, "{\"n\":1}\n");
    got first = next_event(a);
    adapter_find("file")->close(a); /* no checkpoint: as after kill -9 */

    a = open_adapter();
    got again = next_event(a);
    assert_string_equal(again.id, first.id);
    adapter_find("file")->close(a);
}

/* Truncated and rotated while the checkpoint lags behind: a restart reads
 * the current generation from its start, with the ids it had. */
static void test_truncation_and_rotation_before_checkpoint(void **state)
{
    (void)state;
    append(path, "{\"n\":1}\n{\"n\":2}\n");
    void *a = open_adapter();
    got one = next_event(a);
    next_event(a);
    checkpoint_at(a, one.position);

    int fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_idle(a); /* notices the truncation */
    append(path, "{\"n\":1}\n");
    got after_trunc = next_event(a);
    assert_string_equal(after_trunc.body, "{\"n\":1}");
    assert_string_not_equal(after_trunc.id, one.id); /* same bytes, new event */
    adapter_find("file")->close(a);

    a = open_adapter();
    got again = next_event(a);
    assert_string_equal(again.id, after_trunc.id);
    checkpoint_at(a, again.position);

    append(path, "{\"n\":\"last of the old file\"}\n");
    assert_int_equal(rename(path, rotated), 0);
    append(path, "{\"n\":\"new file\"}\n");
    assert_string_equal(next_event(a).body, "{\"n\":\"last of the old file\"}");
    got fresh_file = next_event(a);
    assert_string_equal(fresh_file.body, "{\"n\":\"new file\"}");
    adapter_find("file")->close(a);

    a = open_adapter(); /* the old file's last line was not confirmed: gone with it */
    got again2 = next_event(a);
    assert_string_equal(again2.id, fresh_file.id);
    adapter_find("file")->close(a);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/in.ndjson", dir);
    snprintf(rotated, sizeof rotated, "%s/in.ndjson.1", dir);
    snprintf(checkpoint, sizeof checkpoint, "%s/cp", dir);
    return 0;
}

static int teardown(void **state)
{
    fresh(state);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", checkpoint);
    unlink(tmp);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_resume_after_checkpoint, fresh),
        cmocka_unit_test_setup(test_file_appears_then_crash, fresh),
        cmocka_unit_test_setup(test_crlf_lines, fresh),
        cmocka_unit_test_setup(test_truncation_and_rotation_before_checkpoint, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
