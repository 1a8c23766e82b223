/*
 * pgcopy: builds a PostgreSQL binary COPY stream in memory (header, rows of
 * length-prefixed fields, trailer). Binary COPY needs no escaping of the
 * JSON text and lets the server skip parsing timestamps.
 */
#ifndef SLUICE_PGCOPY_H
#define SLUICE_PGCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The stream is data[0..len) of a buf (buf.h); `failed` set means an
 * allocation failed and the stream is unusable. Free with pgcopy_free(). */
typedef buf pgcopy;

/* Empties the buffer (keeping its memory) and writes the stream header. */
void pgcopy_begin(pgcopy *c);
/* Starts a row of nfields fields. */
void pgcopy_row(pgcopy *c, int nfields);
void pgcopy_text(pgcopy *c, const char *s, size_t len);
/* A jsonb field: version byte 1 followed by the JSON text. */
void pgcopy_jsonb(pgcopy *c, const char *json, size_t len);
/* A timestamptz field from microseconds since the Unix epoch. */
void pgcopy_timestamptz(pgcopy *c, int64_t unix_us);
/* An int4 field. */
void pgcopy_int4(pgcopy *c, int32_t v);
void pgcopy_null(pgcopy *c);
/* Writes the trailer. */
void pgcopy_end(pgcopy *c);
void pgcopy_free(pgcopy *c);

#endif
