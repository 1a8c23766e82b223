/*
 * projections: see projections.h. The client checks the declarations and
 * hands them over as parameters; the DDL itself is written server-side
 * (sluice_build_projections, with format('%I')), so no SQL is built here
 * from the user's text.
 */
#include "projections.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = {"text",    "integer",     "bigint", "numeric",
                                    "boolean", "timestamptz", "jsonb",  "length"};

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    }
    return 1;
}

static int valid_source(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    }
    return 1;
}

static int is_projection(const cfg_section *s)
{
    return strcmp(s->kind, "projection") == 0;
}

/* "column NAME" -> NAME, or NULL if the key is not a column. */
static const char *column_name(const char *key)
{
    if (strncmp(key, "column", 6) != 0 || !isspace((unsigned char)key[6]))
        return NULL;
    key += 6;
    while (isspace((unsigned char)*key))
        key++;
    return key;
}

/* Splits "TYPE POINTER" into its parts. */
static int split_column(const char *value, char *type, size_t tcap, char *pointer, size_t pcap)
{
    const char *sp = value;
    while (*sp && !isspace((unsigned char)*sp))
        sp++;
    size_t tlen = (size_t)(sp - value);
    while (isspace((unsigned char)*sp))
        sp++;
    if (tlen == 0 || tlen >= tcap || strlen(sp) >= pcap || strpbrk(sp, " \t"))
        return -1;
    memcpy(type, value, tlen);
    type[tlen] = '\0';
    strcpy(pointer, sp);
    return 0;
}

static int known_type(const char *t)
{
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        if (strcmp(t, types[i]) == 0)
            return 1;
    }
    return 0;
}

/* Checks one upsert_key list ("a, b") against the section's columns. */
static int check_key(const cfg_section *sec, const char *list, const char *where, char *err,
                     size_t errlen)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *k = strtok_r(copy, ", \t", &save); k;
         k = strtok_r(NULL, ", \t", &save)) {
        int found = 0;
        for (size_t i = 0; i < sec->count && !found; i++) {
            const char *c = column_name(sec->entries[i].key);
            found = c && strcmp(c, k) == 0;
        }
        if (!found) {
            snprintf(err, errlen,
                     "%s: projection '%s': upsert_key names '%s', not a declared column", where,
                     sec->name, k);
            return -1;
        }
    }
    return 0;
}

/* A "column NAME = TYPE /pointer" line, the i-th of its section: a good
 * name, a known type, a JSON pointer, and not declared before. */
static int check_column(const cfg_section *sec, size_t i, const char *col, const char *where,
                        char *err, size_t errlen)
{
    const cfg_entry *e = &sec->entries[i];
    char type[64], pointer[1024];
    if (!valid_name(col) || strcmp(col, "msg_id") == 0 || strcmp(col, "produced_at") == 0) {
        snprintf(err, errlen,
                 "%s: projection '%s': bad column name '%s' ([a-z_][a-z0-9_]{0,62}; "
                 "msg_id and produced_at are always there)",
                 where, sec->name, col);
        return -1;
    }
    if (split_column(e->value, type, sizeof type, pointer, sizeof pointer) != 0) {
        snprintf(err, errlen,
                 "%s: projection '%s': column %s: expected 'TYPE /json/pointer', got '%s'", where,
                 sec->name, col, e->value);
        return -1;
    }
    if (!known_type(type)) {
        snprintf(err, errlen,
                 "%s: projection '%s': column %s: unknown type '%s' (text, integer, "
                 "bigint, numeric, boolean, timestamptz, jsonb, length)",
                 where, sec->name, col, type);
        return -1;
    }
    if (pointer[0] != '/') {
        snprintf(err, errlen,
                 "%s: projection '%s': column %s: '%s' is not a JSON pointer "
                 "(e.g. /shipping/country)",
                 where, sec->name, col, pointer);
        return -1;
    }
    for (size_t o = 0; o < i; o++) {
        const char *prev = column_name(sec->entries[o].key);
        if (prev && strcmp(prev, col) == 0) {
            snprintf(err, errlen, "%s: projection '%s': column %s is declared twice", where,
                     sec->name, col);
            return -1;
        }
    }
    return 0;
}

int projections_check(const cfg_sections *sections, char *err, size_t errlen)
{
    const char *path = sections->path ? sections->path : "(projections)";
    for (size_t s = 0; s < sections->count; s++) {
        const cfg_section *sec = &sections->items[s];
        if (!is_projection(sec))
            continue;
        char where[1100];
        snprintf(where, sizeof where, "%s:%d", path, sec->line);
        if (!valid_name(sec->name)) {
            snprintf(err, errlen, "%s: projection '%s': a table name is [a-z_][a-z0-9_]{0,62}",
                     where, sec->name);
            return -1;
        }
        for (size_t o = 0; o < s; o++) {
            if (is_projection(&sections->items[o]) &&
                strcmp(sections->items[o].name, sec->name) == 0) {
                snprintf(err, errlen, "%s: projection '%s' is declared twice", where, sec->name);
                return -1;
            }
        }
        int has_source = 0, columns = 0;
        for (size_t i = 0; i < sec->count; i++) {
            const cfg_entry *e = &sec->entries[i];
            snprintf(where, sizeof where, "%s:%d", path, e->line);
            const char *col = column_name(e->key);
            if (strcmp(e->key, "source") == 0) {
                if (!valid_source(e->value)) {
                    snprintf(err, errlen, "%s: projection '%s': bad source name '%s'", where,
                             sec->name, e->value);
                    return -1;
                }
                has_source = 1;
            } else if (strcmp(e->key, "upsert_key") == 0) {
                if (check_key(sec, e->value, where, err, errlen) != 0)
                    return -1;
            } else if (col) {
                if (check_column(sec, i, col, where, err, errlen) != 0)
                    return -1;
                columns++;
            } else {
                snprintf(err, errlen,
                         "%s: projection '%s': unknown setting '%s' (source, upsert_key, "
                         "column NAME = TYPE POINTER)",
                         where, sec->name, e->key);
                return -1;
            }
        }
        snprintf(where, sizeof where, "%s:%d", path, sec->line);
        if (!has_source || columns == 0) {
            snprintf(err, errlen, "%s: projection '%s' needs a source and at least one column",
                     where, sec->name);
            return -1;
        }
    }
    return 0;
}

int projections_read(const char *path, cfg_sections *out, char *err, size_t errlen)
{
    /* cfg_read_sections reads the file a command line names: name this one. */
    char *argv[] = {(char *)"sluice-setup", (char *)"--config", (char *)path, NULL};
    return cfg_read_sections(3, argv, out, err, errlen);
}

/* Runs one parameterised command; on failure fills err and returns the
 * error's SQLSTATE class as status. */
static projections_status exec(PGconn *db, const char *sql, int n, const char *const *values,
                               ExecStatusType want, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, values, NULL, NULL, 0);
    projections_status st = PROJECTIONS_OK;
    if (PQresultStatus(r) != want) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(err, errlen, "%s", msg ? msg : PQerrorMessage(db));
        /* P0001: sluice_build_projections found a table at odds with its
         * declaration. */
        st = state && strcmp(state, "P0001") == 0 ? PROJECTIONS_CONFLICT : PROJECTIONS_FAILED;
    }
    PQclear(r);
    return st;
}

static projections_status record(PGconn *db, const cfg_section *sec, char *err, size_t errlen)
{
    const char *source = NULL, *key = NULL;
    for (size_t i = 0; i < sec->count; i++) {
        if (strcmp(sec->entries[i].key, "source") == 0)
            source = sec->entries[i].value;
        else if (strcmp(sec->entries[i].key, "upsert_key") == 0)
            key = sec->entries[i].value;
    }
    /* The key's columns as a text[] literal: checked names need no quoting. */
    char keys[1100] = "";
    if (key) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", key);
        size_t n = (size_t)snprintf(keys, sizeof keys, "{");
        for (char *save = NULL, *k = strtok_r(copy, ", \t", &save); k;
             k = strtok_r(NULL, ", \t", &save))
            n += (size_t)snprintf(keys + n, sizeof keys - n, "%s%s", n > 1 ? "," : "", k);
        snprintf(keys + n, sizeof keys - n, "}");
    }
    const char *p[3] = {sec->name, source, key ? keys : NULL};
    projections_status st =
        exec(db, "INSERT INTO projections (name, source, upsert_key) VALUES ($1, $2, $3)", 3, p,
             PGRES_COMMAND_OK, err, errlen);
    int position = 0;
    for (size_t i = 0; i < sec->count && st == PROJECTIONS_OK; i++) {
        const char *col = column_name(sec->entries[i].key);
        if (!col)
            continue;
        char type[64], pointer[1024], pos[16];
        if (split_column(sec->entries[i].value, type, sizeof type, pointer, sizeof pointer) != 0)
            continue; /* checked before: cannot happen */
        snprintf(pos, sizeof pos, "%d", ++position);
        const char *c[5] = {sec->name, pos, col, type, pointer};
        st = exec(db,
                  "INSERT INTO projection_columns (projection, position, name, type, pointer)"
                  " VALUES ($1, $2, $3, $4, $5)",
                  5, c, PGRES_COMMAND_OK, err, errlen);
    }
    return st;
}

projections_status projections_apply(PGconn *db, const cfg_sections *sections, int *count,
                                     char *err, size_t errlen)
{
    char why[1024];
    *count = 0;
    if (projections_check(sections, err, errlen) != 0)
        return PROJECTIONS_CONFLICT;
    projections_status st = exec(db, "BEGIN", 0, NULL, PGRES_COMMAND_OK, why, sizeof why);
    if (st == PROJECTIONS_OK)
        st = exec(db, "DELETE FROM projections", 0, NULL, PGRES_COMMAND_OK, why, sizeof why);
    for (size_t s = 0; s < sections->count && st == PROJECTIONS_OK; s++) {
        if (is_projection(&sections->items[s])) {
            st = record(db, &sections->items[s], why, sizeof why);
            if (st != PROJECTIONS_OK) {
                snprintf(err, errlen, "projection '%s': %s", sections->items[s].name, why);
                goto fail;
            }
        }
    }
    if (st == PROJECTIONS_OK) {
        PGresult *r = PQexec(db, "SELECT sluice_build_projections()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            *count = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
        } else {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            snprintf(why, sizeof why, "%s", msg ? msg : PQerrorMessage(db));
            st = state && strcmp(state, "P0001") == 0 ? PROJECTIONS_CONFLICT : PROJECTIONS_FAILED;
        }
        PQclear(r);
    }
    if (st == PROJECTIONS_OK)
        st = exec(db, "COMMIT", 0, NULL, PGRES_COMMAND_OK, why, sizeof why);
    if (st == PROJECTIONS_OK)
        return st;
    snprintf(err, errlen, "%s", why);
fail:
    PQclear(PQexec(db, "ROLLBACK"));
    return st;
}
