/*
 * ledger: see ledger.h.
 */
#include "ledger.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    l->db = PQconnectdb(dsn);
    if (PQstatus(l->db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(l->db));
        err[strcspn(err, "\n")] = '\0'; /* one log line */
        goto fail;
    }
    static const struct {
        const char *name, *sql;
        int n;
    } statements[] = {
        {"plan", "SELECT sluice_plan_deliveries($1, $2, $3, $4, $5, $6)", 6},
        {"claim", "SELECT sluice_claim_delivery($1, $2)", 2},
        {"record", "SELECT sluice_record_delivery($1, $2, $3, $4)", 4},
    };
    for (size_t i = 0; i < sizeof statements / sizeof *statements; i++) {
        PGresult *r =
            PQprepare(l->db, statements[i].name, statements[i].sql, statements[i].n, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "preparing %s: %s (has sluice-setup applied sql/003?)",
                     statements[i].name, PQresultErrorMessage(r));
        err[strcspn(err, "\n")] = '\0';
        PQclear(r);
        if (!ok)
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
    snprintf(err, errlen, "%s: %s", name, PQresultErrorMessage(r));
    err[strcspn(err, "\n")] = '\0';
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
