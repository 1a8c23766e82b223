/*
 * supervisor: runs a pool of worker processes. Forks each child, restarts
 * one that crashed (killed by a signal or exited non-zero) with backoff,
 * passes SIGTERM/SIGINT on to every child and waits for them. A child that
 * exits 0 by itself (say after --idle-exit-ms) is done and not restarted.
 * On SIGHUP (reload_install(), util.h) it calls `reload` and, if that
 * accepts the new files, passes SIGHUP on to every running child.
 */
#ifndef SLUICE_SUPERVISOR_H
#define SLUICE_SUPERVISOR_H

#include <stddef.h>

#include "metrics.h"

/* The body of child number `index`; its return value is the child's exit
 * code. Runs in the forked process. */
typedef int (*child_main)(size_t index, void *arg);

typedef struct supervisor_config {
    size_t children;
    child_main run;
    void *arg;
    metrics *m;           /* pids and restarts are recorded here; may be NULL */
    long restart_base_ms; /* first restart delay; doubles up to restart_max_ms */
    long restart_max_ms;
    long shutdown_timeout_ms; /* after SIGTERM, SIGKILL children still running then */
    /* Called between checks on the children, to wait up to ms milliseconds
     * doing other work (serving /metrics); NULL just sleeps. */
    void (*wait)(void *arg, long ms);
    void *wait_arg;
    /* Called in the supervisor on SIGHUP, before any child hears of it:
     * re-reads what the children will re-read (so a child started later
     * gets the new version too) and returns 0 to pass SIGHUP on, -1 to
     * refuse (the children keep what they have). NULL: always pass on. */
    int (*reload)(void *arg);
} supervisor_config;

/* Runs the pool until every child is done or shutdown was requested and
 * all children have exited. Returns 0 if every child's last exit was
 * clean (code 0), 1 otherwise. */
int supervisor_run(const supervisor_config *cfg);

#endif
