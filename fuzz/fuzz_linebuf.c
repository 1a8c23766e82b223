/*
 * fuzz_linebuf: producer/linebuf.c splitting any bytes from a file or pipe
 * into NDJSON lines, with the bytes arriving in pieces of any size.
 *
 * Input: byte 0 sets the line limit (1..64), byte 1 how much room beyond
 * the limit the buffer has (see below), byte 2 the sizes of the pieces
 * written to a pipe; the rest is the stream.
 *
 * Properties checked, not only the absence of crashes: the lines come out
 * exactly as splitting the stream at '\n' gives them (one trailing '\r'
 * removed); a line longer than the limit comes out as LINE_TOO_LONG with
 * its full length; the bytes consumed add up to the stream's length.
 *
 * linebuf keeps max_line + 64 KiB of buffer so that a read fills it in
 * large pieces; the target shrinks that room to 1..16 bytes (linebuf only
 * needs cap > max_line) so short inputs reach the over-long path, where a
 * line is dropped piece by piece, and the buffer is exactly that size, so
 * AddressSanitizer sees any access past it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "linebuf.h"

typedef struct expect {
    const uint8_t *s; /* the stream */
    size_t len, pos;  /* pos: start of the next line to come out */
    size_t max_line, consumed;
} expect;

static void got(expect *e, line_result r, const char *line, size_t len, size_t consumed, int rest)
{
    const uint8_t *nl = memchr(e->s + e->pos, '\n', e->len - e->pos);
    CHECK(rest || nl, "a line before its newline arrived");
    size_t n = nl ? (size_t)(nl - (e->s + e->pos)) : e->len - e->pos;
    size_t taken = nl ? n + 1 : n;
    CHECK(consumed == taken, "consumed %zu, the line takes %zu", consumed, taken);
    if (n > e->max_line) {
        CHECK(r == LINE_TOO_LONG && len == n, "a line of %zu bytes (limit %zu): result %d len %zu",
              n, e->max_line, r, len);
    } else {
        size_t want = n > 0 && e->s[e->pos + n - 1] == '\r' ? n - 1 : n;
        CHECK(r == LINE_OK && len == want && memcmp(line, e->s + e->pos, want) == 0,
              "line at %zu: result %d, %zu bytes, expected %zu", e->pos, r, len, want);
    }
    e->pos += taken;
    e->consumed += consumed;
}

static void take_lines(linebuf *lb, expect *e)
{
    const char *line;
    size_t len, consumed;
    line_result r;
    while ((r = linebuf_next(lb, &line, &len, &consumed)) != LINE_NONE)
        got(e, r, line, len, consumed, 0);
}

/* Reads what the pipe holds, taking the lines after each read. */
static void drain(linebuf *lb, int fd, expect *e)
{
    for (;;) {
        ssize_t n = linebuf_fill(lb, fd);
        if (n <= 0) {
            CHECK(n == 0 || errno == EAGAIN, "read: %s", strerror(errno));
            return;
        }
        take_lines(lb, e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 60000) /* the stream fits the pipe */
        return 0;
    expect e = {.s = data + 3, .len = size - 3, .max_line = 1 + data[0] % 64};
    linebuf lb;
    CHECK(linebuf_init(&lb, e.max_line) == 0, "linebuf_init");
    free(lb.buf);
    lb.cap = e.max_line + 1 + data[1] % 16;
    lb.buf = malloc(lb.cap);

    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    size_t off = 0;
    for (unsigned k = 1; off < e.len; k++) {
        size_t piece = 1 + (data[2] * k) % 97;
        if (piece > e.len - off)
            piece = e.len - off;
        CHECK(write(fds[1], e.s + off, piece) == (ssize_t)piece, "write");
        off += piece;
        drain(&lb, fds[0], &e);
    }
    close(fds[1]);
    drain(&lb, fds[0], &e); /* to end of file */
    const char *line;
    size_t len, consumed;
    line_result r = linebuf_rest(&lb, &line, &len, &consumed);
    if (e.pos < e.len)
        got(&e, r, line, len, consumed, 1);
    else
        CHECK(r == LINE_NONE, "a line after the end: %d", r);
    CHECK(e.consumed == e.len, "consumed %zu of %zu bytes", e.consumed, e.len);
    close(fds[0]);
    linebuf_free(&lb);
    return 0;
}
