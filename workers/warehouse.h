/*
 * warehouse: the PostgreSQL side of a worker. Stores a batch in one
 * transaction: valid events into `events` (a redelivered msg_id is a no-op),
 * the rest into `ingest_errors` with their raw bytes and the reason. Rows
 * the database itself refuses are isolated one by one into ingest_errors, so
 * one bad event never blocks or loses the others. A msg_id is taken once
 * (table event_ids), whichever time partition its first copy went to. The
 * projections a deployment declares (sluice-setup) fill their typed tables
 * from the new events in the same transaction, through a trigger; the
 * caller's own step (the worker's alerts) runs in it too, before COMMIT.
 */
#ifndef SLUICE_WAREHOUSE_H
#define SLUICE_WAREHOUSE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "batch.h"

typedef struct warehouse warehouse;

typedef struct store_result {
    size_t stored;     /* new rows in events */
    size_t duplicates; /* already there: redeliveries and republished copies */
    size_t rejected;   /* recorded in ingest_errors */
    size_t failed;     /* OUTCOME_FAILED: neither stored nor recorded; not acknowledged */
    /* New rows per source index (the caller's array of nsources entries,
     * zeroed by warehouse_store); NULL if not wanted. */
    size_t *stored_by_source;
    size_t nsources;
} store_result;

/* Connects with `dsn`, creates the time partitions due (partition
 * maintenance, see sql/005) and prepares the statements. Returns NULL with
 * err (which says to run sluice-setup if the tables are missing or older
 * than this worker). Free with warehouse_close(). */
warehouse *warehouse_open(const char *dsn, char *err, size_t errlen);
void warehouse_close(warehouse *w);

/* A step of the caller's run in the batch's transaction, on the
 * warehouse's connection, after its events are stored and each valid
 * delivery's outcome is set, just before COMMIT (so what it writes commits
 * with the batch, or not at all). Returns 0, or -1 with err: the
 * transaction is rolled back and warehouse_store returns -1. */
typedef struct warehouse_step {
    int (*fn)(void *arg, PGconn *db, const batch *b, char *err, size_t errlen);
    void *arg;
} warehouse_step;

/*
 * Commits the batch and sets each delivery's outcome; runs `step` (NULL:
 * none) in its transaction. Returns 0 once
 * committed: then every delivery but the OUTCOME_FAILED ones may be
 * acknowledged (a failed one carries its reason: retry it, then
 * dead-letter it). Returns -1 if nothing was committed because the
 * database is unreachable or the failure is transient (connection lost,
 * shutdown, serialisation failure, out of resources): the caller
 * reconnects and the broker redelivers.
 *
 * Each delivery's outcome says exactly whether it was new (STORED) or a
 * copy of a stored or recorded msg_id (DUPLICATE).
 */
int warehouse_store(warehouse *w, batch *b, const warehouse_step *step, store_result *res,
                    char *err, size_t errlen);

#endif
