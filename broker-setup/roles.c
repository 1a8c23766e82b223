/*
 * roles: see roles.h. The role names reach the server as parameters only:
 * set_config() puts them in transaction-local settings that one DO block
 * reads, quoting them with format('%I'), since a DO block takes no
 * parameters and an identifier cannot be one.
 */
#include "roles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

const char *const role_words[ROLE_COUNT] = {"owner", "writer", "notifier", "reader"};

/* Serialises setups creating roles, which live outside any database. */
#define ROLES_LOCK_KEY "7366004"

static const char prepare_sql[] =
    "DO $$\n"
    "DECLARE\n"
    "    k text;\n"
    "    r text;\n"
    "    pw text;\n"
    "    o record;\n"
    "    owner text := current_setting('sluice.role_owner');\n"
    "BEGIN\n"
    "    PERFORM pg_advisory_xact_lock(" ROLES_LOCK_KEY ");\n"
    "    FOREACH k IN ARRAY ARRAY['owner', 'writer', 'notifier', 'reader'] LOOP\n"
    "        r := current_setting('sluice.role_' || k);\n"
    "        pw := nullif(current_setting('sluice.password_' || k), '');\n"
    "        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN\n"
    "            EXECUTE format('CREATE ROLE %I LOGIN', r);\n"
    "        ELSIF r = current_user OR (SELECT rolsuper FROM pg_roles WHERE rolname = r) THEN\n"
    "            RAISE EXCEPTION 'pg_%_role % is a superuser or setup''s own login: name a role "
    "of its own', k, r USING ERRCODE = '22023';\n"
    "        END IF;\n"
    "        IF pw IS NOT NULL THEN\n"
    "            EXECUTE format('ALTER ROLE %I PASSWORD %L', r, pw);\n"
    "        END IF;\n"
    "        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);\n"
    "    END LOOP;\n"
    "    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN\n"
    "        EXECUTE format('GRANT %I TO %I', owner, current_user);\n"
    "    END IF;\n"
    "    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA public TO %I', owner);\n"
    "    REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
    /* Identity and serial sequences follow their tables. */
    "    FOR o IN SELECT c.oid::regclass AS rel, CASE c.relkind WHEN 'S' THEN 'SEQUENCE'\n"
    "                    WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'\n"
    "                    WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind\n"
    "               FROM pg_class c\n"
    "              WHERE c.relnamespace = 'public'::regnamespace\n"
    "                AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')\n"
    "                AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)\n"
    "                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
    "'pg_class'::regclass\n"
    "                                   AND d.objid = c.oid AND d.deptype IN ('a', 'i')\n"
    "                                   AND c.relkind = 'S') LOOP\n"
    "        EXECUTE format('ALTER %s %s OWNER TO %I', o.kind, o.rel, owner);\n"
    "    END LOOP;\n"
    "    FOR o IN SELECT p.oid::regprocedure AS fn FROM pg_proc p\n"
    "              WHERE p.pronamespace = 'public'::regnamespace\n"
    "                AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
    "LOOP\n"
    "        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', o.fn, owner);\n"
    "    END LOOP;\n"
    "END $$";

/* Runs sql with params; 0 if it ended with status `want`. */
static int exec(PGconn *db, const char *what, const char *sql, int n, const char *const *params,
                ExecStatusType want, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == want ? 0 : -1;
    if (rc != 0)
        pg_error(db, r, err, errlen, "%s", what);
    PQclear(r);
    return rc;
}

/* Puts the role names and password verifiers in transaction-local
 * settings sluice.role_<word> and sluice.password_<word>. */
static int stage_accounts(PGconn *db, const role_account accounts[ROLE_COUNT], char *err,
                          size_t errlen)
{
    for (int k = 0; k < ROLE_COUNT; k++) {
        char role_key[64], password_key[64];
        snprintf(role_key, sizeof role_key, "sluice.role_%s", role_words[k]);
        snprintf(password_key, sizeof password_key, "sluice.password_%s", role_words[k]);
        char *verifier = NULL;
        if (accounts[k].password && *accounts[k].password) {
            verifier = PQencryptPasswordConn(db, accounts[k].password, accounts[k].name, NULL);
            if (!verifier)
                return pg_error(db, NULL, err, errlen, "hashing pg_%s_password", role_words[k]);
        }
        const char *params[] = {role_key, accounts[k].name, password_key, verifier ? verifier : ""};
        int rc = exec(db, "staging the role names",
                      "SELECT set_config($1, $2, true), set_config($3, $4, true)", 4, params,
                      PGRES_TUPLES_OK, err, errlen);
        PQfreemem(verifier);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int roles_prepare(PGconn *db, const role_account accounts[ROLE_COUNT], char *err, size_t errlen)
{
    for (int k = 0; k < ROLE_COUNT; k++) {
        if (!accounts[k].name || !*accounts[k].name) {
            snprintf(err, errlen, "pg_%s_role is empty: name the role", role_words[k]);
            return ROLES_CONFLICT;
        }
    }
    int rc = ROLES_FAILED;
    if (exec(db, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, err, errlen) != 0)
        return ROLES_FAILED;
    if (stage_accounts(db, accounts, err, errlen) != 0)
        goto rollback;
    PGresult *r = PQexec(db, prepare_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        rc = state && strcmp(state, "22023") == 0 ? ROLES_CONFLICT : ROLES_FAILED;
        pg_error(db, r, err, errlen, "creating the roles%s",
                 state && strcmp(state, "42501") == 0
                     ? " (setup's login needs to be a superuser or to have CREATEROLE; or set "
                       "pg_roles=false)"
                     : "");
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    if (exec(db, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK, err, errlen) != 0)
        return ROLES_FAILED;
    const char *owner[] = {accounts[ROLE_OWNER].name};
    if (exec(db, "switching to the owner role", "SELECT set_config('role', $1, false)", 1, owner,
             PGRES_TUPLES_OK, err, errlen) != 0)
        return ROLES_FAILED;
    return ROLES_OK;
rollback:
    PQclear(PQexec(db, "ROLLBACK"));
    return rc;
}

int roles_grant(PGconn *db, const role_account accounts[ROLE_COUNT], char *err, size_t errlen)
{
    PGresult *r = PQexec(db, "SELECT to_regproc('sluice_grant_roles') IS NOT NULL");
    int have = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    const char *params[] = {accounts[ROLE_WRITER].name, accounts[ROLE_NOTIFIER].name,
                            accounts[ROLE_READER].name};
    if (have && exec(db, "granting the roles their rights", "SELECT sluice_grant_roles($1, $2, $3)",
                     3, params, PGRES_TUPLES_OK, err, errlen) != 0)
        return ROLES_FAILED;
    if (exec(db, "RESET ROLE", "RESET ROLE", 0, NULL, PGRES_COMMAND_OK, err, errlen) != 0)
        return ROLES_FAILED;
    log_info("roles ready owner=%s writer=%s notifier=%s reader=%s%s", accounts[ROLE_OWNER].name,
             accounts[ROLE_WRITER].name, accounts[ROLE_NOTIFIER].name, accounts[ROLE_READER].name,
             have ? "" : " grants=none (the sql folder has no grants.sql)");
    return ROLES_OK;
}
