/*
 * migrate: see migrate.h.
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

/* Any constant works; it only has to be the same for every sluice-setup. */
#define MIGRATION_LOCK_KEY "7366001"

static long migration_number(const char *name)
{
    char *end;
    long n = strtol(name, &end, 10);
    if (end == name || *end != '_' || n <= 0)
        return -1;
    size_t len = strlen(name);
    if (len < 5 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    return n;
}

static int by_number(const void *a, const void *b)
{
    long x = migration_number(*(char *const *)a), y = migration_number(*(char *const *)b);
    return (x > y) - (x < y);
}

int migrate_list(const char *dir, char ***names, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "migrations folder %s: %s", dir, strerror(errno));
        return -1;
    }
    char **list = NULL;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (migration_number(e->d_name) < 0)
            continue;
        char **grown = realloc(list, (size_t)(count + 1) * sizeof *list);
        if (!grown || !(grown[count] = strdup(e->d_name))) {
            list = grown ? grown : list;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        list = grown;
        count++;
    }
    closedir(d);
    d = NULL;
    qsort(list, (size_t)count, sizeof *list, by_number);
    for (int i = 1; i < count; i++) {
        if (migration_number(list[i]) == migration_number(list[i - 1])) {
            snprintf(err, errlen, "migrations %s and %s in %s share a number", list[i - 1], list[i],
                     dir);
            goto fail;
        }
    }
    *names = list;
    return count;
fail:
    if (d)
        closedir(d);
    for (int i = 0; i < count; i++)
        free(list[i]);
    free(list);
    return -1;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto io_fail;
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto io_fail;
    text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size)
        goto io_fail;
    text[size] = '\0';
    fclose(f);
    return text;
io_fail:
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    free(text);
    fclose(f);
    return NULL;
}

/* Runs one command; returns 0 if it succeeded, else -1 with err. */
static int exec_ok(PGconn *db, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        pg_error(db, r, err, errlen, "%s", what);
    PQclear(r);
    return ok ? 0 : -1;
}

static int is_applied(PGconn *db, long number, int *applied, char *err, size_t errlen)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", number);
    const char *params[] = {num};
    PGresult *r = PQexecParams(db, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                               params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_error(db, r, err, errlen, "reading schema_migrations");
        rc = -1;
    } else {
        *applied = PQntuples(r) > 0;
    }
    PQclear(r);
    return rc;
}

static int apply_one(PGconn *db, const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *sql = read_file(path, err, errlen);
    if (!sql)
        return -1;
    char num[32];
    snprintf(num, sizeof num, "%ld", migration_number(name));
    const char *params[] = {num, name};
    int rc = exec_ok(db, "BEGIN", "BEGIN", err, errlen);
    if (rc == 0)
        rc = exec_ok(db, sql, path, err, errlen);
    if (rc == 0) {
        PGresult *r =
            PQexecParams(db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                         NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            pg_error(db, r, err, errlen, "recording %s", name);
            rc = -1;
        }
        PQclear(r);
    }
    if (rc == 0)
        rc = exec_ok(db, "COMMIT", "COMMIT", err, errlen);
    else
        PQclear(PQexec(db, "ROLLBACK"));
    free(sql);
    return rc;
}

int migrate_apply(PGconn *db, const char *dir, char *err, size_t errlen)
{
    char **names = NULL;
    int count = migrate_list(dir, &names, err, errlen);
    if (count < 0)
        return -1;
    int applied_now = 0, rc = 0;
    if (exec_ok(db, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", "taking migration lock", err,
                errlen) != 0 ||
        exec_ok(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                "creating schema_migrations", err, errlen) != 0) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < count && rc == 0; i++) {
        int applied = 0;
        rc = is_applied(db, migration_number(names[i]), &applied, err, errlen);
        if (rc != 0 || applied)
            continue;
        rc = apply_one(db, dir, names[i], err, errlen);
        if (rc == 0) {
            applied_now++;
            log_info("migration applied file=%s", names[i]);
        }
    }
done:
    PQclear(PQexec(db, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")"));
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc == 0 ? applied_now : -1;
}
