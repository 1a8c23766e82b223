/*
 * ledger: the notifier's record of deliveries in PostgreSQL (tables alerts
 * and alert_deliveries, functions of sql/003). Before each attempt on a
 * channel the notifier claims it; after, it records the outcome. This is
 * what keeps a redelivered alert from being sent twice.
 */
#ifndef SLUICE_LEDGER_H
#define SLUICE_LEDGER_H

#include <stddef.h>

#include "alert.h"

typedef struct ledger ledger;

typedef enum {
    CLAIM_GO,         /* now 'sending': make the attempt */
    CLAIM_DONE,       /* already sent or failed: skip it */
    CLAIM_BUSY,       /* another live notifier is sending it now: ask again later */
    CLAIM_INTERRUPTED /* a request was under way when a notifier stopped: now failed */
} claim_result;

/* Connects; NULL with err (free with ledger_close()). */
ledger *ledger_open(const char *dsn, char *err, size_t errlen);
void ledger_close(ledger *l);

/* Records the alert (if new) and a pending delivery for each channel of
 * `channels` (comma-separated names). Returns 0 or -1 with err. */
int ledger_plan(ledger *l, const alert *a, const char *channels, char *err, size_t errlen);

/* Claims the delivery of alert a on `channel`. Returns 0 with *res set, or
 * -1 with err (the database is unreachable: the caller reconnects). */
int ledger_claim(ledger *l, const alert *a, const char *channel, claim_result *res, char *err,
                 size_t errlen);

/* Records an attempt's outcome: state is "sent", "retrying" or "failed";
 * error may be NULL. Returns 0 or -1 with err. */
int ledger_record(ledger *l, const char *alert_id, const char *channel, const char *state,
                  const char *error, char *err, size_t errlen);

#endif
