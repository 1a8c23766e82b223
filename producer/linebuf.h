/*
 * linebuf: splits bytes read from a file descriptor into lines, for the
 * NDJSON adapters (file, stdin). A line longer than the limit is not kept:
 * its bytes are counted and dropped up to its newline, and it is reported
 * as one over-long line, so memory stays bounded whatever the input.
 */
#ifndef SLUICE_LINEBUF_H
#define SLUICE_LINEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct linebuf {
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start, end) */
    size_t max_line;
    uint64_t dropping; /* bytes of an over-long line dropped so far; 0 = none */
} linebuf;

typedef enum {
    LINE_NONE = 0,     /* no complete line buffered */
    LINE_OK = 1,       /* *line, *len: the line without '\n' (and '\r') */
    LINE_TOO_LONG = 2, /* an over-long line ended; *len is its size in bytes */
} line_result;

/* Prepares a buffer for lines of at most max_line bytes. Returns 0 or -1
 * (out of memory). Free with linebuf_free(). */
int linebuf_init(linebuf *lb, size_t max_line);
void linebuf_free(linebuf *lb);

/* Forgets everything buffered (after a truncation). */
void linebuf_reset(linebuf *lb);

/* Reads once from fd into the buffer. Returns the bytes read, 0 at end of
 * file, or -1 with errno (EAGAIN when a non-blocking fd has nothing). */
ssize_t linebuf_fill(linebuf *lb, int fd);

/* Takes the next complete line. *consumed is how many input bytes it took
 * (the newline included), for keeping offsets. *line points into the
 * buffer, valid until the next call. */
line_result linebuf_next(linebuf *lb, const char **line, size_t *len, size_t *consumed);

/* Takes the unterminated rest (at end of input), as LINE_OK or LINE_NONE
 * if empty, or LINE_TOO_LONG. */
line_result linebuf_rest(linebuf *lb, const char **line, size_t *len, size_t *consumed);

#endif
