/*
 * migrate: see migrate.h.
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "event.h"
#include "log.h"
#include "pg.h"

/* Any constant works; it only has to be the same for every sluice-setup. */
#define MIGRATION_LOCK_KEY "7366001"

/* The checksum printed in a refusal: "sha256:" and 12 hex digits. */
#define CHECKSUM_SHOWN 19

/* File names of one folder, in the order they are applied. */
typedef struct name_list {
    char **names;
    int count;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->count = 0;
}

static int is_sql_file(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".sql") == 0;
}

/* NNN_name.sql's number, or -1 if name is not a migration's. */
static long migration_number(const char *name)
{
    char *end;
    long n = strtol(name, &end, 10);
    if (end == name || *end != '_' || n <= 0 || !is_sql_file(name))
        return -1;
    return n;
}

static int is_migration(const char *name)
{
    return migration_number(name) > 0;
}

static int by_number(const void *a, const void *b)
{
    long x = migration_number(*(char *const *)a), y = migration_number(*(char *const *)b);
    return (x > y) - (x < y);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files of `dir` that `keep` accepts into out, sorted by
 * `order`. A folder that cannot be read is bad configuration. */
static int list_files(const char *dir, int (*keep)(const char *),
                      int (*order)(const void *, const void *), name_list *out, char *err,
                      size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "sql folder %s: %s", dir, strerror(errno));
        return MIGRATE_MISMATCH;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!keep(e->d_name))
            continue;
        char **grown = realloc(out->names, (size_t)(out->count + 1) * sizeof *grown);
        if (grown)
            out->names = grown;
        if (!grown || !(grown[out->count] = strdup(e->d_name))) {
            snprintf(err, errlen, "out of memory");
            rc = MIGRATE_FAILED;
        } else {
            out->count++;
        }
    }
    closedir(d);
    if (rc == 0 && out->count > 0)
        qsort(out->names, (size_t)out->count, sizeof *out->names, order);
    return rc;
}

/* Two migrations with one number would each count as the other. */
static int check_numbers(const name_list *m, const char *dir, char *err, size_t errlen)
{
    for (int i = 1; i < m->count; i++) {
        if (migration_number(m->names[i]) == migration_number(m->names[i - 1])) {
            snprintf(err, errlen, "migrations %s and %s in %s share a number", m->names[i - 1],
                     m->names[i], dir);
            return MIGRATE_MISMATCH;
        }
    }
    return 0;
}

/* The whole file dir/name, NUL-terminated, its length in *len; NULL with
 * err if it cannot be read. Free with free(). */
static char *read_file(const char *dir, const char *name, size_t *len, char *err, size_t errlen)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "%s: path too long", name);
        return NULL;
    }
    buf text = {0};
    /* buf_reserve: an empty file still gives a string. */
    if (buf_append_file(&text, path) != 0 || buf_reserve(&text, 0) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        buf_free(&text);
        return NULL;
    }
    *len = text.len;
    return text.data;
}

/* "sha256:<hex>" of the file's bytes, as they are. */
static void checksum(const char *text, size_t len, char out[EVENT_SHA256_ID_LEN + 1])
{
    id_part part = {text, len};
    event_sha256_id(&part, 1, out);
}

/* Runs one command (or several, a file's); 0 if it succeeded, else
 * MIGRATE_FAILED with err. A file of comments only is an empty query. */
static int exec_ok(PGconn *db, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (!ok)
        pg_error(db, r, err, errlen, "%s", what);
    PQclear(r);
    return ok ? 0 : MIGRATE_FAILED;
}

/* Runs a statement with text parameters; 0, or MIGRATE_FAILED with err. */
static int exec_params(PGconn *db, const char *sql, int n, const char *const *params,
                       const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pg_error(db, r, err, errlen, "%s", what);
    PQclear(r);
    return ok ? 0 : MIGRATE_FAILED;
}

/* The row of `rows` (version, checksum) recording migration `number`, or -1. */
static int recorded_row(const PGresult *rows, long number)
{
    for (int i = 0; i < PQntuples(rows); i++) {
        if (atol(PQgetvalue(rows, i, 0)) == number)
            return i;
    }
    return -1;
}

/* The migration of `m` numbered `number`, or NULL. */
static const char *migration_named(const name_list *m, long number)
{
    for (int i = 0; i < m->count; i++) {
        if (migration_number(m->names[i]) == number)
            return m->names[i];
    }
    return NULL;
}

/*
 * Every recorded migration must still be in the folder, as it was applied.
 * A row without a checksum was recorded before sluice kept them: it is
 * adopted with the checksum of the file as it is now, so what is compared
 * from then on is the text this warehouse met first. (Migrations 001-009
 * were rewritten once, to move their functions into functions/, just
 * before checksums existed; the warehouses that ran their first texts
 * adopt the new ones, which leave the same schema.)
 */
static int check_applied(PGconn *db, const char *dir, const name_list *m, const PGresult *rows,
                         char *err, size_t errlen)
{
    int adopted = 0;
    for (int i = 0; i < PQntuples(rows); i++) {
        long number = atol(PQgetvalue(rows, i, 0));
        const char *name = migration_named(m, number);
        if (!name) {
            snprintf(err, errlen,
                     "the warehouse has migration %ld applied, which %s lacks: this "
                     "sluice-setup is older than the warehouse",
                     number, dir);
            return MIGRATE_MISMATCH;
        }
        size_t len;
        char *text = read_file(dir, name, &len, err, errlen);
        if (!text)
            return MIGRATE_FAILED;
        char sum[EVENT_SHA256_ID_LEN + 1];
        checksum(text, len, sum);
        free(text);
        if (PQgetisnull(rows, i, 1)) {
            const char *params[] = {PQgetvalue(rows, i, 0), sum};
            if (exec_params(db, "UPDATE schema_migrations SET checksum = $2 WHERE version = $1", 2,
                            params, "recording a checksum", err, errlen) != 0)
                return MIGRATE_FAILED;
            adopted++;
        } else if (strcmp(PQgetvalue(rows, i, 1), sum) != 0) {
            snprintf(err, errlen,
                     "migration %s/%s changed after it was applied to this warehouse "
                     "(recorded %.*s..., now %.*s...): put it back as it was and make the "
                     "change a new migration",
                     dir, name, CHECKSUM_SHOWN, PQgetvalue(rows, i, 1), CHECKSUM_SHOWN, sum);
            return MIGRATE_MISMATCH;
        }
    }
    if (adopted > 0)
        log_info("migration checksums recorded as first seen count=%d", adopted);
    return 0;
}

/* Runs one pending migration and records it with its checksum. */
static int apply_migration(PGconn *db, const char *dir, const char *name, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(dir, name, &len, err, errlen);
    if (!text)
        return MIGRATE_FAILED;
    char sum[EVENT_SHA256_ID_LEN + 1], num[32], path[4096];
    checksum(text, len, sum);
    snprintf(num, sizeof num, "%ld", migration_number(name));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const char *params[] = {num, name, sum};
    int rc = exec_ok(db, text, path, err, errlen);
    free(text);
    if (rc == 0)
        rc = exec_params(db,
                         "INSERT INTO schema_migrations (version, name, checksum)"
                         " VALUES ($1, $2, $3)",
                         3, params, name, err, errlen);
    if (rc == 0)
        log_info("migration applied file=%s", name);
    return rc;
}

static int apply_function_file(PGconn *db, const char *dir, const char *name, char *err,
                               size_t errlen)
{
    size_t len;
    char *text = read_file(dir, name, &len, err, errlen);
    if (!text)
        return MIGRATE_FAILED;
    /* The file's name in messages; a path too long for it is only cut short
     * there (read_file() has opened it already). */
    char path[8192];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        snprintf(path, sizeof path, "%s", name);
    int rc = exec_ok(db, text, path, err, errlen);
    free(text);
    return rc;
}

/* Inside the transaction: the record, the checks, the pending migrations,
 * the function files. Returns the number of migrations applied or a
 * migrate_status. */
static int apply_all(PGconn *db, const char *dir, const name_list *m, const char *fdir,
                     const name_list *f, char *err, size_t errlen)
{
    /* checksum is nullable for the rows of warehouses older than it
     * (check_applied adopts them), and last, as ADD COLUMN puts it. */
    if (exec_ok(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(),"
                " checksum text)",
                "creating schema_migrations", err, errlen) != 0 ||
        exec_ok(db, "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text",
                "adding schema_migrations.checksum", err, errlen) != 0)
        return MIGRATE_FAILED;
    PGresult *rows = PQexec(db, "SELECT version, checksum FROM schema_migrations ORDER BY 1");
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        pg_error(db, rows, err, errlen, "reading schema_migrations");
        PQclear(rows);
        return MIGRATE_FAILED;
    }
    int rc = check_applied(db, dir, m, rows, err, errlen), applied = 0;
    for (int i = 0; i < m->count && rc == 0; i++) {
        if (recorded_row(rows, migration_number(m->names[i])) >= 0)
            continue;
        rc = apply_migration(db, dir, m->names[i], err, errlen);
        applied += rc == 0;
    }
    PQclear(rows);
    for (int i = 0; i < f->count && rc == 0; i++)
        rc = apply_function_file(db, fdir, f->names[i], err, errlen);
    if (rc == 0)
        log_info("function files applied folder=%s count=%d", fdir, f->count);
    return rc == 0 ? applied : rc;
}

int migrate_apply(PGconn *db, const char *dir, char *err, size_t errlen)
{
    name_list migrations = {0}, functions = {0};
    char fdir[4096];
    snprintf(fdir, sizeof fdir, "%s/functions", dir);
    int locked = 0;
    int rc = list_files(dir, is_migration, by_number, &migrations, err, errlen);
    if (rc == 0)
        rc = check_numbers(&migrations, dir, err, errlen);
    if (rc == 0)
        rc = list_files(fdir, is_sql_file, by_name, &functions, err, errlen);
    if (rc == 0)
        rc = exec_ok(db, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", "taking migration lock",
                     err, errlen);
    locked = rc == 0;
    if (rc == 0)
        rc = exec_ok(db, "BEGIN", "BEGIN", err, errlen);
    if (rc == 0) {
        rc = apply_all(db, dir, &migrations, fdir, &functions, err, errlen);
        if (rc >= 0 && exec_ok(db, "COMMIT", "COMMIT", err, errlen) != 0)
            rc = MIGRATE_FAILED;
        else if (rc < 0)
            PQclear(PQexec(db, "ROLLBACK"));
    }
    if (locked)
        PQclear(PQexec(db, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")"));
    names_free(&migrations);
    names_free(&functions);
    return rc;
}
