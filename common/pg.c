/*
 * pg: see pg.h.
 */
#include "pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char *pg_flatten(char *text)
{
    char *out = text;
    for (const char *p = text; *p;) {
        if (*p == '\n' || *p == '\r') {
            /* Drop the blanks before the break and after it (libpq indents
             * continuation lines with a tab). */
            while (out > text && (out[-1] == ' ' || out[-1] == '\t'))
                out--;
            while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
                p++;
            if (out > text && *p)
                *out++ = ' ';
            continue;
        }
        *out++ = *p++;
    }
    while (out > text && (out[-1] == ' ' || out[-1] == '\t'))
        out--;
    *out = '\0';
    return text;
}

int pg_error(PGconn *db, const PGresult *r, char *err, size_t errlen, const char *what, ...)
{
    const char *reason = r ? PQresultErrorMessage(r) : "";
    if (!reason[0])
        reason = db ? PQerrorMessage(db) : "";
    if (!reason[0])
        reason = "out of memory"; /* libpq returns no result and no message only then */
    va_list ap;
    va_start(ap, what);
    int n = vsnprintf(err, errlen, what, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ": %s", reason);
    pg_flatten(err);
    return -1;
}

PGconn *pg_connect(const char *dsn, char *err, size_t errlen)
{
    PGconn *db = PQconnectdb(dsn);
    if (PQstatus(db) == CONNECTION_OK)
        return db;
    pg_error(db, NULL, err, errlen, "cannot reach PostgreSQL");
    PQfinish(db);
    return NULL;
}

int pg_prepare(PGconn *db, const pg_statement *table, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *r = PQprepare(db, table[i].name, table[i].sql, table[i].nparams, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            pg_error(db, r, err, errlen, "preparing %s", table[i].name);
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

int pg_sqlstate_is_transient(const char *state)
{
    /* Classes by their first two characters; see pg.h for why each. */
    static const char *const classes[] = {"08", "40", "53", "57", "58"};
    if (!state || !*state)
        return 1;
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
        if (strncmp(state, classes[i], 2) == 0)
            return 1;
    return strcmp(state, "25006") == 0;
}
