/*
 * deadletter: publishes what could not be processed even after retries to
 * sluice.dlx (bound to sluice.dead), with the reason in the x-sluice-reason
 * header, and waits for the broker's confirm, so the caller may then
 * acknowledge the original. It uses a connection of its own, opened on
 * first use, so its confirms never mix with the caller's deliveries. The
 * workers dead-letter events that keep failing; the notifier, alerts it
 * cannot deliver.
 */
#ifndef SLUICE_DEADLETTER_H
#define SLUICE_DEADLETTER_H

#include <stddef.h>

#include "util.h"

/* One dead letter; all pointers are borrowed for the call. */
typedef struct dead_letter {
    const char *routing_key; /* the original's, so sluice.dead keeps it */
    const char *message_id;
    const char *source; /* header x-source; NULL to omit */
    const void *body;
    size_t len;
    const char *reason; /* header x-sluice-reason */
    unsigned attempts;  /* header x-sluice-attempts; 0 to omit */
} dead_letter;

typedef struct deadletter deadletter;

/* Will connect to one of `urls` (borrowed; must outlive it) when first
 * needed. Free with deadletter_free(). Returns NULL on allocation failure. */
deadletter *deadletter_new(const strlist *urls, int heartbeat_s);
void deadletter_free(deadletter *dl); /* accepts NULL */

/* Publishes one dead letter. Returns 0 once confirmed, -1 with err
 * otherwise (the next call starts from a new connection). */
int deadletter_publish(deadletter *dl, const dead_letter *m, char *err, size_t errlen);

#endif
