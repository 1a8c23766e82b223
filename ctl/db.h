/*
 * db: the two query shapes sluice-ctl repeats, on top of common/pg.h
 * (connection and one-line errors): a statement whose result status is
 * checked, and a command without result; a refusal for lack of rights
 * says which role the command needs.
 */
#ifndef SLUICE_CTL_DB_H
#define SLUICE_CTL_DB_H

#include <stddef.h>

#include "pg.h"

/* Runs a parameterised statement (params are text; NULL is SQL NULL) and
 * returns its result if its status is `want`; otherwise clears it, fills
 * err with "<what>: <server's message>" on one line (pg_error) and returns
 * NULL. The result is the caller's: free with PQclear(). */
PGresult *db_query(PGconn *db, ExecStatusType want, const char *what, const char *sql, int nparams,
                   const char *const *params, char *err, size_t errlen);

/* What the running command needs of PostgreSQL, said after a "permission
 * denied" (SQLSTATE 42501) so the message names the role to use, e.g.
 * "sluice-ctl status needs the reader role". `text` is borrowed: a
 * string literal. */
void db_set_needs(const char *text);

/* Whether SQLSTATE `state` (NULL: none) is a refusal for lack of rights;
 * if so, appends to err what the command needs. */
int db_refused(const char *state, char *err, size_t errlen);

/* Runs a command without parameters and result (BEGIN, COMMIT, ...).
 * Returns 0, or -1 with err as db_query. */
int db_command(PGconn *db, const char *sql, char *err, size_t errlen);

#endif
