/*
 * roles: a PostgreSQL part of sluice-setup (main.c lists both servers'
 * parts): the warehouse's four roles, so each component connects with the
 * least it needs:
 *   owner     owns the schema's tables, functions and partitions; the only
 *             one with DDL. Setup does the schema's work (migrations,
 *             partitions, projections) as this role, and the functions
 *             that create and drop partitions, record alerts or fill the
 *             typed tables run with its rights (SECURITY DEFINER, search
 *             path fixed), so the other roles need no DDL
 *   writer    the workers and sluice-ctl reprocess-errors: store events,
 *             ingest errors and alerts; no UPDATE or DELETE of events, no
 *             DDL
 *   notifier  the alert and delivery tables
 *   reader    SELECT on every table (people, dashboards, sluice-ctl status)
 * What each may do is sql/functions/grants.sql.
 *
 * Setup logs in as a superuser or a role with CREATEROLE (the postgres
 * image's POSTGRES_USER): it creates the roles that are missing, sets the
 * passwords it is given, and hands what its own login owns in the schema
 * to the owner, so an existing warehouse is converted in place.
 * Idempotent; a password given again is set again (a rotation).
 */
#ifndef SLUICE_ROLES_H
#define SLUICE_ROLES_H

#include <libpq-fe.h>
#include <stddef.h>

typedef enum { ROLE_OWNER, ROLE_WRITER, ROLE_NOTIFIER, ROLE_READER, ROLE_COUNT } role_kind;

/* "owner", "writer", ...: the word in each role's settings
 * (pg_<word>_role); statically allocated. */
extern const char *const role_words[ROLE_COUNT];

typedef struct role_account {
    const char *name;
    const char *password; /* NULL or "": the role's password is left as it is */
} role_account;

#define ROLES_OK 0
#define ROLES_FAILED (-1)   /* the database refused or failed */
#define ROLES_CONFLICT (-2) /* a role named is a superuser or setup's own login */

/*
 * Before the schema's work, as setup's login: in one transaction (and an
 * advisory lock, as two setups may run at once), creates the missing
 * roles (LOGIN, no other attribute), sets the passwords given (sent as
 * SCRAM verifiers, so no statement log holds one), makes setup's login a
 * member of the owner if it is no superuser, gives the owner USAGE and
 * CREATE on schema public and the others USAGE (and takes CREATE on it
 * from PUBLIC), and hands the owner every table, sequence, view and
 * function of schema public that setup's login owns. Then switches the session to the owner role (SET
 * ROLE), so what setup creates next is the owner's. Returns ROLES_OK, or a
 * failure with err on one line (passwords never in it).
 */
int roles_prepare(PGconn *db, const role_account accounts[ROLE_COUNT], char *err, size_t errlen);

/*
 * After the schema's work, still as the owner: grants each role its rights
 * (sluice_grant_roles of grants.sql), then switches back to setup's login.
 * A warehouse whose sql folder has no grants.sql gets none. Returns
 * ROLES_OK or ROLES_FAILED with err.
 */
int roles_grant(PGconn *db, const role_account accounts[ROLE_COUNT], char *err, size_t errlen);

#endif
