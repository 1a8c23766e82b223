/*
 * db: see db.h.
 */
#include "db.h"

#include <stdio.h>
#include <string.h>

static const char *needs;

void db_set_needs(const char *text)
{
    needs = text;
}

int db_refused(const char *state, char *err, size_t errlen)
{
    if (!state || strcmp(state, "42501") != 0)
        return 0;
    if (needs) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (%s)", needs);
    }
    return 1;
}

PGresult *db_query(PGconn *db, ExecStatusType want, const char *what, const char *sql, int nparams,
                   const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    pg_error(db, r, err, errlen, "%s", what);
    db_refused(PQresultErrorField(r, PG_DIAG_SQLSTATE), err, errlen);
    PQclear(r);
    return NULL;
}

int db_command(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = db_query(db, PGRES_COMMAND_OK, sql, sql, 0, NULL, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}
