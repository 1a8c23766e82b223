/*
 * warehouse: the PostgreSQL side of a worker. Stores a batch in one
 * transaction: valid events into `events` (a redelivered msg_id is a no-op),
 * the rest into `ingest_errors` with their raw bytes and the reason. Rows
 * the database itself refuses are isolated one by one into ingest_errors, so
 * one bad event never blocks or loses the others.
 */
#ifndef SLUICE_WAREHOUSE_H
#define SLUICE_WAREHOUSE_H

#include <stddef.h>

#include "batch.h"

typedef struct warehouse warehouse;

typedef struct store_result {
    size_t stored;     /* new rows in events */
    size_t duplicates; /* already there: redeliveries and republished copies */
    size_t rejected;   /* recorded in ingest_errors */
} store_result;

/* Connects with `dsn` and prepares the statements. Returns NULL with err
 * (which says to run sluice-setup if the tables are missing). Free with
 * warehouse_close(). */
warehouse *warehouse_open(const char *dsn, char *err, size_t errlen);
void warehouse_close(warehouse *w);

/*
 * Commits the batch. Returns 0 once committed (then, and only then, may the
 * batch be acknowledged), or -1 if nothing could be committed (the
 * connection is lost, or an error other than bad data): the caller
 * reconnects and the broker redelivers.
 */
int warehouse_store(warehouse *w, const batch *b, store_result *res, char *err, size_t errlen);

#endif
