/*
 * deadletter: publishes what could not be processed even after retries to
 * sluice.dlx (bound to sluice.dead), with the reason in the x-sluice-reason
 * header, and waits for the broker's confirm, so the caller may then
 * acknowledge the original. It uses a connection of its own, opened on
 * first use, so its confirms never mix with the caller's deliveries. The
 * workers dead-letter events that keep failing; the notifier, alerts it
 * cannot deliver.
 *
 * It publishes with the mandatory flag: should sluice.dlx route a dead
 * letter to no queue (sluice.dead deleted or unbound), the broker returns
 * it before confirming it, and deadletter_publish fails, so the caller
 * keeps the original rather than acknowledging a message nobody holds.
 */
#ifndef SLUICE_DEADLETTER_H
#define SLUICE_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* One dead letter; all pointers are borrowed for the call. */
typedef struct dead_letter {
    const char *routing_key; /* the original's, so sluice.dead keeps it */
    const char *message_id;
    const char *source; /* header x-source; NULL to omit */
    const void *body;
    size_t len;
    const char *reason;     /* header x-sluice-reason */
    unsigned attempts;      /* header x-sluice-attempts; 0 to omit */
    int64_t produced_at_us; /* header x-produced-at-us and the timestamp
                               property (seconds), so a replayed event keeps
                               when it was produced; 0 to omit */
} dead_letter;

typedef struct deadletter deadletter;

/* Will connect to one of `urls` (borrowed; must outlive it) when first
 * needed. Free with deadletter_free(). Returns NULL on allocation failure. */
deadletter *deadletter_new(const strlist *urls, int heartbeat_s);
void deadletter_free(deadletter *dl); /* accepts NULL */

/* Publishes one dead letter. Returns 0 once confirmed and routed to a
 * queue; -1 with err otherwise: the broker returned it as unroutable (err
 * names sluice.dlx and the broker's reply), refused it, or the connection
 * failed (the next call then starts from a new one). */
int deadletter_publish(deadletter *dl, const dead_letter *m, char *err, size_t errlen);

/* How many deadletter_publish calls in a row have failed (0 after a
 * success): lets a caller that retries back off for longer. */
unsigned deadletter_failures(const deadletter *dl);

#endif
