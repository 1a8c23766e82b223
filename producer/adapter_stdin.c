/*
 * adapter_stdin: the "stdin" source adapter: NDJSON lines from standard
 * input (a pipe or a file), one event per non-blank line. At end of input
 * the source ends, so the producer exits once everything read is
 * confirmed. Nothing can be read twice, so there is no checkpoint; the
 * message id derives from the line number and content, so piping the same
 * input again stores nothing new. Settings: the table below.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "line_event.h"
#include "linebuf.h"

typedef struct stdin_state {
    char name[72];
    int fd;
    int eof;
    linebuf lb;
    uint64_t lineno;
    char msg_id[SOURCE_EVENT_ID_LEN + 1];
    char where[48];
} stdin_state;

static void stdin_close(void *state)
{
    stdin_state *s = state;
    if (!s)
        return;
    linebuf_free(&s->lb);
    free(s);
}

typedef struct stdin_conf {
    long max_line_bytes;
} stdin_conf;

static const cfg_option stdin_settings[] = {
    LINE_SETTING_MAX_LINE_BYTES(stdin_conf),
    CFG_END,
};

static int stdin_open(void **state, const source_spec *spec, const void *conf_, char *err,
                      size_t errlen)
{
    const stdin_conf *conf = conf_;
    stdin_state *s = calloc(1, sizeof *s);
    if (!s || linebuf_init(&s->lb, (size_t)conf->max_line_bytes) != 0) {
        stdin_close(s);
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    snprintf(s->name, sizeof s->name, "%s", spec->name);
    s->fd = STDIN_FILENO;
    *state = s;
    return 0;
}

/* Fills ev from a line result; returns 1 if it is something to hand out
 * (an event or a skip), 0 for a blank line. */
static int make_event(stdin_state *s, line_result r, const char *line, size_t len, source_event *ev)
{
    s->lineno++;
    snprintf(s->where, sizeof s->where, "line %llu", (unsigned long long)s->lineno);
    memset(ev, 0, sizeof *ev);
    ev->where = s->where;
    ev->position = s->lineno;
    return line_event(ev, r, line, len, s->name, "stdin", s->lineno, s->msg_id);
}

static adapter_result stdin_next(void *state, source_event *ev, char *err, size_t errlen)
{
    stdin_state *s = state;
    const char *line;
    size_t len, consumed;
    for (;;) {
        line_result r = linebuf_next(&s->lb, &line, &len, &consumed);
        if (r == LINE_NONE && s->eof) {
            r = linebuf_rest(&s->lb, &line, &len, &consumed);
            if (r == LINE_NONE)
                return ADAPTER_END;
        }
        if (r != LINE_NONE) {
            if (make_event(s, r, line, len, ev))
                return ADAPTER_EVENT;
            continue;
        }
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 200);
        if (ready < 0 && errno != EINTR) {
            snprintf(err, errlen, "source %s: poll on stdin: %s", s->name, strerror(errno));
            return ADAPTER_ERROR;
        }
        if (ready <= 0)
            return ADAPTER_IDLE;
        ssize_t n = linebuf_fill(&s->lb, s->fd);
        if (n == 0)
            s->eof = 1;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "source %s: reading stdin: %s", s->name, strerror(errno));
            return ADAPTER_ERROR;
        }
    }
}

const adapter_class stdin_adapter = {
    .name = "stdin",
    .summary = "NDJSON from standard input, to its end (one stdin source per process)",
    .settings = stdin_settings,
    .settings_size = sizeof(stdin_conf),
    .open = stdin_open,
    .next = stdin_next,
    .checkpoint = NULL, /* a pipe cannot be read again */
    .close = stdin_close,
};
