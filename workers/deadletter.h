/*
 * deadletter: publishes a message that could not be stored after bounded
 * retries to sluice.dlx (bound to sluice.dead), with the reason in the
 * x-sluice-reason header, and waits for the broker's confirm before the
 * caller acknowledges the original. It uses a connection of its own, opened
 * on first use, so its confirms never mix with the consumer's deliveries.
 */
#ifndef SLUICE_DEADLETTER_H
#define SLUICE_DEADLETTER_H

#include <stddef.h>

#include "batch.h"
#include "mq.h"
#include "util.h"

typedef struct deadletter deadletter;

/* Will connect to one of `urls` (borrowed; must outlive it) when first
 * needed. Free with deadletter_free(). */
deadletter *deadletter_new(const strlist *urls, int heartbeat_s);
void deadletter_free(deadletter *dl);

/*
 * Publishes delivery `d` of `b` with `reason` and its attempt count.
 * Returns 0 once confirmed, -1 with err otherwise (the next call starts
 * from a new connection).
 */
int deadletter_publish(deadletter *dl, const batch *b, const delivery *d, const char *reason,
                       unsigned attempts, char *err, size_t errlen);

#endif
