/*
 * projections: a PostgreSQL part of sluice-setup (main.c lists both
 * servers' parts). The typed tables a deployment declares per source, read
 * from "[projection NAME]" sections of a file and turned into tables and
 * the trigger that fills them (sql/005: sluice_build_projections).
 *
 *   [projection orders]                 # the table's name
 *   source = orders                     # the source whose events fill it
 *   upsert_key = order_id               # optional: one row per key, latest wins
 *   column order_id = text /order_id    # column NAME = TYPE JSON-POINTER
 *   column total = numeric /total
 *   column item_count = length /items   # length of an array
 *
 * Types: text (a string; any other value as its JSON text), integer,
 * bigint, numeric, boolean, timestamptz (ISO 8601
 * strings), jsonb (any value), length (of an array). A value of another
 * JSON type, or out of range, becomes NULL: it never fails its batch.
 * Every table also has msg_id and produced_at. Fields not declared stay in
 * events.payload only.
 */
#ifndef SLUICE_PROJECTIONS_H
#define SLUICE_PROJECTIONS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"

/* Checks every "projection" section of `sections` (others are ignored).
 * Returns 0, or -1 with err naming file:line, projection and problem. */
int projections_check(const cfg_sections *sections, char *err, size_t errlen);

/* Reads the sections of the file at `path` (free with cfg_sections_free()).
 * Returns 0, or -1 with err. */
int projections_read(const char *path, cfg_sections *out, char *err, size_t errlen);

typedef enum {
    PROJECTIONS_OK = 0,
    PROJECTIONS_FAILED = -1,   /* database trouble: err says what */
    PROJECTIONS_CONFLICT = -2, /* a table disagrees with its declaration: err says how */
} projections_status;

/*
 * Replaces the declarations recorded in the warehouse with those of
 * `sections` (checked first) and builds them, in one transaction: tables
 * created or given the columns they lack, the upsert keys' indexes, the
 * filling trigger. A projection no longer declared stops being filled; its
 * table stays. Returns the status; *count gets the number of projections.
 */
projections_status projections_apply(PGconn *db, const cfg_sections *sections, int *count,
                                     char *err, size_t errlen);

#endif
