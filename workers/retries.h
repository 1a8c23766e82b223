/*
 * retries: counts, per message id, how often storing a message failed in
 * this process, so a message that keeps failing is dead-lettered after a
 * bounded number of attempts instead of looping forever. Bounded memory:
 * when the table fills up it starts afresh (a message may then get a few
 * more attempts, never unbounded ones).
 */
#ifndef SLUICE_RETRIES_H
#define SLUICE_RETRIES_H

#include <stddef.h>

typedef struct retries retries;

/* A table for up to `capacity` message ids. Free with retries_free(). */
retries *retries_new(size_t capacity);
void retries_free(retries *r);

/* Records one more failure of msg_id and returns its count so far (1 on
 * the first failure). */
unsigned retries_bump(retries *r, const char *msg_id);

/* Forgets msg_id (it was finally stored or dead-lettered). */
void retries_forget(retries *r, const char *msg_id);

#endif
