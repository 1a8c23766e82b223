/*
 * migrate: brings the warehouse's schema to what the sql folder holds, in
 * one transaction, serialised by an advisory lock (two set-ups starting
 * together are safe).
 *
 * The folder holds two kinds of files:
 * - numbered migrations (NNN_name.sql): what must run once (tables,
 *   columns, indexes, data moves), applied in number order, each recorded
 *   in schema_migrations with the SHA-256 of its text;
 * - function files (functions/<area>.sql): every function, trigger and
 *   view, each with one current definition in the tree, applied on every
 *   run after the pending migrations, in name order.
 *
 * So that order is sound:
 * - a migration uses only the tables of earlier migrations and what it
 *   creates itself, never a function of functions/: on a fresh install
 *   those do not exist yet, on an upgrade they are the previous release's;
 * - a function file uses any table (every migration has run) and, in a
 *   LANGUAGE sql body (checked when created), only functions defined above
 *   it in the same file; a trigger lives in the file of its function;
 * - function files say CREATE OR REPLACE, never DROP and CREATE: running
 *   workers and notifiers hold prepared statements on the functions. A
 *   function renamed, or given other arguments or another result type,
 *   needs a migration that drops the old one; so does one nothing calls.
 *
 * An applied migration never changes: its checksum is compared on every
 * run. A warehouse recorded before checksums existed has rows without
 * one; each is adopted, with the checksum of the file as first seen.
 */
#ifndef SLUICE_MIGRATE_H
#define SLUICE_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* migrate_apply's failures (a count of migrations applied is >= 0). */
typedef enum migrate_status {
    MIGRATE_FAILED = -1,   /* the database refused or failed, or a file is unreadable */
    MIGRATE_MISMATCH = -2, /* the folder is at odds with itself or with the warehouse:
                              an applied migration changed or missing, two files with
                              one number, no functions/ folder: bad configuration */
} migrate_status;

/*
 * Applies, in one transaction, every migration of `dir` not yet recorded,
 * then every function file of dir/functions, after checking the recorded
 * migrations against their files. Returns the number of migrations applied
 * (0 when up to date), or a migrate_status with err on one line naming the
 * file and what is wrong; then nothing changed.
 */
int migrate_apply(PGconn *db, const char *dir, char *err, size_t errlen);

#endif
