/*
 * ledger: see ledger.h.
 */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

struct ledger {
    PGconn *db;
};

ledger *ledger_open(const char *dsn, char *err, size_t errlen)
{
    ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(l->db = pg_connect(dsn, err, errlen)))
        goto fail;
    static const pg_statement statements[] = {
        {"plan", "SELECT sluice_plan_deliveries($1, $2, $3, $4, $5, $6)", 6},
        {"claim", "SELECT sluice_claim_delivery($1, $2)", 2},
        {"record", "SELECT sluice_record_delivery($1, $2, $3, $4)", 4},
    };
    if (pg_prepare(l->db, statements, sizeof statements / sizeof *statements, err, errlen) != 0) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (has sluice-setup applied sql/003?)");
        goto fail;
    }
    return l;
fail:
    ledger_close(l);
    return NULL;
}

void ledger_close(ledger *l)
{
    if (!l)
        return;
    PQfinish(l->db);
    free(l);
}

static PGresult *exec(ledger *l, const char *name, int n, const char *const *values, char *err,
                      size_t errlen)
{
    PGresult *r = PQexecPrepared(l->db, name, n, values, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    pg_error(l->db, r, err, errlen, "%s", name);
    PQclear(r);
    return NULL;
}

int ledger_plan(ledger *l, const alert *a, const char *channels, char *err, size_t errlen)
{
    const char *values[6] = {a->alert_id, a->rule, a->severity, a->source, a->message, channels};
    PGresult *r = exec(l, "plan", 6, values, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

int ledger_claim(ledger *l, const alert *a, const char *channel, claim_result *res, char *err,
                 size_t errlen)
{
    const char *values[2] = {a->alert_id, channel};
    PGresult *r = exec(l, "claim", 2, values, err, errlen);
    if (!r)
        return -1;
    const char *state = PQgetvalue(r, 0, 0);
    *res = strcmp(state, "go") == 0            ? CLAIM_GO
           : strcmp(state, "interrupted") == 0 ? CLAIM_INTERRUPTED
           : strcmp(state, "busy") == 0        ? CLAIM_BUSY
                                               : CLAIM_DONE;
    PQclear(r);
    return 0;
}

int ledger_record(ledger *l, const char *alert_id, const char *channel, const char *state,
                  const char *error, char *err, size_t errlen)
{
    const char *values[4] = {alert_id, channel, state, error};
    PGresult *r = exec(l, "record", 4, values, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}
