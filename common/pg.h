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

/*
 * Whether an error with SQLSTATE `state` (PQresultErrorField(r,
 * PG_DIAG_SQLSTATE); NULL if the result carries none) says "try again
 * later" rather than "this statement or its data is wrong": the same
 * statement, on the same data, may succeed once the server or the
 * connection is well again, so a caller retries (reconnecting first) and
 * never blames the row. Returns 1 for:
 *   no SQLSTATE   the error came from libpq itself (connection lost, out of
 *                 memory), not from the server's verdict on the statement;
 *   class 08      connection exception: the connection failed or broke;
 *   class 40      transaction rollback: serialization failure, deadlock,
 *                 a commit of unknown outcome (40003); retrying is the
 *                 documented answer to each;
 *   class 53      insufficient resources: disk full, out of memory, too
 *                 many connections; they pass as the server recovers;
 *   class 57      operator intervention: admin or crash shutdown (57P01,
 *                 57P02), cannot connect now (57P03, a server starting),
 *                 query cancelled (57014) - the server's state, not ours;
 *   class 58      system error, external to PostgreSQL (58030 I/O error):
 *                 the server's disk or files, not the data sent;
 *   25006         read_only_sql_transaction: the node is a standby, as a
 *                 former primary is after a failover; reconnecting with a
 *                 multi-host DSN finds the new primary.
 * Every other state, data exceptions (22) and integrity violations (23)
 * among them, returns 0: the caller decides what the row's fault means.
 */
int pg_sqlstate_is_transient(const char *state);

#endif
