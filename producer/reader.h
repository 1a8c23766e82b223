/*
 * reader: a source's reader thread. It pulls events from the source's
 * adapter at the source's rate, checks each against the message contract,
 * reports and skips unusable input, and puts the rest into the source's
 * queue in the hub, where the publishing thread (main.c) takes them. It
 * also hands the adapter the latest position the broker confirmed, now and
 * then, so a checkpoint never covers an unconfirmed event.
 *
 * Threads: a source_run's adapter is called by its reader thread while it
 * runs and by the main thread before and after; the fields marked atomic
 * are written by the main thread (confirms) or read by it (counters) while
 * the reader runs.
 */
#ifndef SLUICE_READER_H
#define SLUICE_READER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "event.h"
#include "hub.h"
#include "sources.h"

typedef struct source_run {
    /* Set before the reader starts; read-only afterwards. */
    size_t index; /* the source's queue in the hub */
    const source_def *def;
    char routing_key[80];
    source_spec spec;
    void *state; /* the adapter instance; closed by the owner of the run */
    hub *hub;
    event_validator *validator;
    const atomic_int *stop; /* set by the main thread: stop reading */
    long checkpoint_interval_ms;
    pthread_t thread;
    int started;
    /* Written by the main thread (reader_confirmed), read by the reader. */
    _Atomic uint64_t confirmed_pos;
    atomic_int has_confirmed;
    _Atomic uint64_t confirmed;
    /* Counters for the logs. */
    _Atomic uint64_t read, skipped;
    atomic_int failed;
    /* Owned by whoever calls the adapter (reader thread, then main). */
    uint64_t saved_pos;
    int saved;
    int64_t next_checkpoint_us;
    uint64_t last_put_pos; /* position of the last event put in the hub */
    int has_put;
    /* The latest skipped input, and the last event put before it: once
     * that event is confirmed, everything up to the skip is done with, so
     * a restart does not report the skipped input again. */
    uint64_t skip_pos, skip_after;
    int skip_pending, skip_after_any;
} source_run;

/* Starts a reader thread per run. They block SIGTERM and SIGINT, so the
 * signal flag is set and read by the main thread alone, which stops the
 * readers through *stop. Returns 0, or -1 if a thread could not start
 * (those started run on: stop and join them as usual). */
int readers_start(source_run *runs, size_t n);

/* The publisher's confirm handler (publisher_on_confirm): `owner` is the
 * source_run of the confirmed event, at `position`. Main thread. */
void reader_confirmed(void *arg, void *owner, uint64_t position);

/* Hands the latest confirmed position to the adapter if it moved (and,
 * unless `force`, if checkpoint_interval_ms passed). Called by whoever
 * owns the adapter: the reader thread, or the main thread once it ended. */
void reader_save_checkpoint(source_run *r, int force);

#endif
