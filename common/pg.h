/*
 * pg: PostgreSQL the sluice way, beside mq.h for RabbitMQ: connect with a
 * one-line error, prepare a table of statements, and turn libpq's
 * multi-line messages into one log line. Callers keep using libpq itself
 * (PGconn, PQexecPrepared, COPY) for the queries; this only settles the
 * parts every component wrote by hand. In libsluice_pg, so binaries that
 * never talk to PostgreSQL do not link libpq.
 */
#ifndef SLUICE_PG_H
#define SLUICE_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Connects to `dsn` (a libpq connection string or postgresql:// URI).
 * Returns the connection, or NULL with err "cannot reach PostgreSQL:
 * <libpq's reason>" on one line. Free with PQfinish() (accepts NULL).
 */
PGconn *pg_connect(const char *dsn, char *err, size_t errlen);

/* One statement to prepare: its name, its SQL ($1, $2, ... for
 * parameters) and how many parameters it takes. */
typedef struct pg_statement {
    const char *name;
    const char *sql;
    int nparams;
} pg_statement;

/*
 * Prepares the n statements of `table` on db, in order, for later
 * PQexecPrepared(db, name, ...). Returns 0, or -1 at the first that fails
 * with err "preparing <name>: <reason>" on one line (a missing function or
 * table usually means sluice-setup has not applied a migration: callers
 * add that advice, they know which one).
 */
int pg_prepare(PGconn *db, const pg_statement *table, size_t n, char *err, size_t errlen);

/*
 * Fills err with "<what>: <reason>" on one line, where `what` is formatted
 * like printf and the reason is r's error message, or the connection's if r
 * is NULL or carries none (the connection was lost). r is not cleared.
 * Returns -1, so a caller can `return pg_error(...)`.
 */
int pg_error(PGconn *db, const PGresult *r, char *err, size_t errlen, const char *what, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Makes text one line, in place: every line break and the blanks around
 * it become one space ("ERROR:  x\nLINE 1: ..." -> "ERROR:  x LINE 1: ..."),
 * and trailing blanks go. libpq ends its messages with a newline and
 * splits details over several lines; sluice logs one line per event.
 * Returns text.
 */
char *pg_flatten(char *text);

#endif
