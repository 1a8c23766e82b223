/*
 * db: see db.h.
 */
#include "db.h"

#include <stdio.h>
#include <string.h>

/* libpq's messages end in a newline and may hold several lines; sluice
 * logs and prints one line per event. */
static void one_line(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

PGconn *db_connect(const char *dsn, char *err, size_t errlen)
{
    PGconn *db = PQconnectdb(dsn);
    if (PQstatus(db) == CONNECTION_OK)
        return db;
    snprintf(err, errlen, "PostgreSQL: %s", PQerrorMessage(db));
    one_line(err);
    PQfinish(db);
    return NULL;
}

PGresult *db_query(PGconn *db, ExecStatusType want, const char *what, const char *sql, int nparams,
                   const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    snprintf(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(db));
    one_line(err);
    PQclear(r);
    return NULL;
}

int db_command(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = db_query(db, PGRES_COMMAND_OK, sql, sql, 0, NULL, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}
