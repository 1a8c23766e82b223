/*
 * db: see db.h.
 */
#include "db.h"

PGresult *db_query(PGconn *db, ExecStatusType want, const char *what, const char *sql, int nparams,
                   const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    pg_error(db, r, err, errlen, "%s", what);
    PQclear(r);
    return NULL;
}

int db_command(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = db_query(db, PGRES_COMMAND_OK, sql, sql, 0, NULL, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}
