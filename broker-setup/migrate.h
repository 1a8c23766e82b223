/*
 * migrate: applies the warehouse's numbered migrations (sql/NNN_name.sql) in
 * order, each once, recording them in schema_migrations. Concurrent runs are
 * serialised by an advisory lock, so two set-ups starting together are safe.
 */
#ifndef SLUICE_MIGRATE_H
#define SLUICE_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Applies every migration in `dir` not yet recorded. Each runs in its own
 * transaction together with its record. Returns the number applied (0 when
 * up to date), or -1 with err naming the file and the database's message.
 */
int migrate_apply(PGconn *db, const char *dir, char *err, size_t errlen);

/*
 * Lists the migration files of `dir` sorted by number into *names (free each
 * and the array with free()). File names must start with digits then '_' and
 * end in ".sql"; two files with the same number are an error. Returns the
 * count or -1 with err filled.
 */
int migrate_list(const char *dir, char ***names, char *err, size_t errlen);

#endif
