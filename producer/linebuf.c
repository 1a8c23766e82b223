/*
 * linebuf: see linebuf.h. The buffer holds at most max_line + 1 bytes of
 * one line; older bytes are moved down before each read.
 */
#include "linebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int linebuf_init(linebuf *lb, size_t max_line)
{
    memset(lb, 0, sizeof *lb);
    lb->max_line = max_line;
    lb->cap = max_line + 65536;
    lb->buf = malloc(lb->cap);
    return lb->buf ? 0 : -1;
}

void linebuf_free(linebuf *lb)
{
    free(lb->buf);
    memset(lb, 0, sizeof *lb);
}

void linebuf_reset(linebuf *lb)
{
    lb->start = lb->end = 0;
    lb->dropping = 0;
}

ssize_t linebuf_fill(linebuf *lb, int fd)
{
    if (lb->start > 0) {
        memmove(lb->buf, lb->buf + lb->start, lb->end - lb->start);
        lb->end -= lb->start;
        lb->start = 0;
    }
    if (lb->end == lb->cap) {
        /* No newline in a full buffer: the line is over-long; drop what we
         * have and remember its size. */
        lb->dropping += lb->end;
        lb->end = 0;
    }
    ssize_t n;
    do
        n = read(fd, lb->buf + lb->end, lb->cap - lb->end);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        lb->end += (size_t)n;
    return n;
}

static line_result finish(linebuf *lb, const char *s, size_t n, size_t taken, const char **line,
                          size_t *len, size_t *consumed)
{
    lb->start += taken;
    *consumed = (size_t)lb->dropping + taken;
    if (lb->dropping || n > lb->max_line) {
        *len = (size_t)lb->dropping + n;
        lb->dropping = 0;
        return LINE_TOO_LONG;
    }
    if (n > 0 && s[n - 1] == '\r')
        n--;
    *line = s;
    *len = n;
    return LINE_OK;
}

line_result linebuf_next(linebuf *lb, const char **line, size_t *len, size_t *consumed)
{
    char *s = lb->buf + lb->start;
    char *nl = memchr(s, '\n', lb->end - lb->start);
    if (!nl)
        return LINE_NONE;
    size_t n = (size_t)(nl - s);
    return finish(lb, s, n, n + 1, line, len, consumed);
}

line_result linebuf_rest(linebuf *lb, const char **line, size_t *len, size_t *consumed)
{
    size_t n = lb->end - lb->start;
    if (n == 0 && !lb->dropping)
        return LINE_NONE;
    return finish(lb, lb->buf + lb->start, n, n, line, len, consumed);
}
