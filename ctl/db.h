/*
 * db: sluice-ctl's few needs of libpq: a connection that fails with one
 * line, and results checked the same way each time.
 */
#ifndef SLUICE_CTL_DB_H
#define SLUICE_CTL_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connects to dsn. Returns the connection (free with PQfinish()), or NULL
 * with err holding one line. */
PGconn *db_connect(const char *dsn, char *err, size_t errlen);

/* Runs a parameterised statement (params are text; NULL is SQL NULL) and
 * returns its result if its status is `want`; otherwise clears it, fills
 * err with "<what>: <server's message>" on one line and returns NULL. The
 * result is the caller's: free with PQclear(). */
PGresult *db_query(PGconn *db, ExecStatusType want, const char *what, const char *sql, int nparams,
                   const char *const *params, char *err, size_t errlen);

/* Runs a command without parameters and result (BEGIN, COMMIT, ...).
 * Returns 0, or -1 with err as db_query. */
int db_command(PGconn *db, const char *sql, char *err, size_t errlen);

#endif
