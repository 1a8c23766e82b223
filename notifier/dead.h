/*
 * dead: dead-letters an alert that could not be delivered (a 400 from the
 * Bot API, retries exhausted) to sluice.dlx → sluice.dead, with the reason
 * in the x-sluice-reason header, and waits for the broker's confirm. Uses a
 * connection of its own (opened on first use), so its confirms never mix
 * with the notifier's deliveries.
 */
#ifndef SLUICE_DEAD_H
#define SLUICE_DEAD_H

#include <stddef.h>

#include "util.h"

typedef struct dead_letters dead_letters;

/* Borrows urls (must outlive it). Free with dead_letters_free(). */
dead_letters *dead_letters_new(const strlist *urls, int heartbeat_s);
void dead_letters_free(dead_letters *d);

/* Publishes body with routing key rk. Returns 0 once confirmed, else -1
 * with err (the next call starts from a new connection). */
int dead_letters_publish(dead_letters *d, const char *rk, const char *alert_id, const void *body,
                         size_t len, const char *reason, char *err, size_t errlen);

#endif
