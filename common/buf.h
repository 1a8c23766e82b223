/*
 * buf: a growable byte buffer, the one way sluice code gathers bytes of a
 * length it does not know in advance (an HTTP body, a COPY stream, a batch's
 * strings, an alert text). Capacity doubles, so appending n bytes costs
 * O(n) overall; the memory is kept across buf_clear() for the next use.
 *
 * The bytes are always followed by a NUL that len does not count, so text
 * gathered in a buf is a C string as it stands. A zeroed buf is empty and
 * ready. An allocation failure is sticky: appends become no-ops and
 * `failed` stays set until buf_clear(), so a caller appending many pieces
 * checks once at the end.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* malloc'd (NULL until the first append); free with buf_free() */
    size_t len; /* bytes held, without the NUL that follows them */
    size_t cap; /* bytes allocated */
    int failed; /* an allocation failed: the contents are incomplete */
} buf;

/* Makes room for `more` bytes after len (and the NUL). Returns 0, or -1
 * (and sets failed) if memory ran out or the buffer had failed already. */
int buf_reserve(buf *b, size_t more);

/* Appends n bytes. Returns 0, or -1 as buf_reserve(). */
int buf_append(buf *b, const void *bytes, size_t n);

/* Appends the whole file at `path`. Returns 0, or -1 with errno set if it
 * cannot be opened or read (ENOMEM, and failed set, if memory ran out);
 * what was appended before a read error stays. */
int buf_append_file(buf *b, const char *path);

/* Empties the buffer and forgets a failure; keeps the memory. */
void buf_clear(buf *b);

/* Frees the memory; b is then empty and ready again. Accepts a zeroed buf. */
void buf_free(buf *b);

#endif
