/*
 * supervisor: see supervisor.h. Polls waitpid every 50 ms rather than
 * acting inside a SIGCHLD handler: simpler, and restarts are not urgent to
 * the millisecond.
 */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A child that ran this long before crashing starts its backoff afresh. */
#define STABLE_RUN_US (30 * 1000000LL)

typedef enum { CHILD_RUNNING, CHILD_WAITING, CHILD_DONE } child_state;

typedef struct child {
    pid_t pid;
    child_state state;
    int last_exit;     /* exit code, or -1 after a signal */
    unsigned failures; /* consecutive crashes, for the backoff */
    int64_t started_us;
    int64_t restart_at_us; /* when CHILD_WAITING */
} child;

static int spawn(const supervisor_config *cfg, child *c, size_t index)
{
    /* Taken before fork: the child compares it with getppid() below. A
     * fixed "parent is 1" test would be wrong when the supervisor itself is
     * PID 1 (a container's entry point, unshare --pid). */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("cannot fork worker=%zu error=\"%s\"", index, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* If the supervisor dies, its workers should not live on unseen. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* The supervisor may have died between fork and prctl, so the
         * death signal would never come: stop now, saying why. */
        if (getppid() != parent) {
            log_error("supervisor gone before worker started worker=%zu supervisor_pid=%d",
                      index, (int)parent);
            _exit(1);
        }
        int rc = cfg->run(index, cfg->arg);
        /* Whatever path made the body fail, one line says so here, in the
         * worker's own log, before the supervisor's "worker failed". */
        if (rc != 0)
            log_error("worker exiting worker=%zu exit=%d", index, rc);
        _exit(rc);
    }
    c->pid = pid;
    c->state = CHILD_RUNNING;
    c->started_us = mono_us();
    metrics_set_pid(cfg->m, index, (int)pid);
    log_info("worker started worker=%zu pid=%d", index, (int)pid);
    return 0;
}

static void reap(const supervisor_config *cfg, child *kids)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < cfg->children; i++) {
            child *c = &kids[i];
            if (c->pid != pid || c->state != CHILD_RUNNING)
                continue;
            metrics_set_pid(cfg->m, i, 0);
            c->pid = 0;
            c->last_exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            if (c->last_exit == 0) {
                c->state = CHILD_DONE;
                log_info("worker finished worker=%zu", i);
                break;
            }
            if (WIFSIGNALED(status))
                log_error("worker crashed worker=%zu signal=%d", i, WTERMSIG(status));
            else
                log_error("worker failed worker=%zu exit=%d", i, c->last_exit);
            if (shutdown_requested) {
                c->state = CHILD_DONE;
                break;
            }
            if (mono_us() - c->started_us >= STABLE_RUN_US)
                c->failures = 0;
            long delay = backoff_ms(c->failures++, cfg->restart_base_ms, cfg->restart_max_ms);
            c->state = CHILD_WAITING;
            c->restart_at_us = mono_us() + delay * 1000LL;
            metrics_count_restart(cfg->m, i);
            log_warn("restarting worker worker=%zu in_ms=%ld", i, delay);
            break;
        }
    }
}

/* Sends sig to every running child; for SIGTERM/SIGKILL also stops the
 * restarts of those waiting for one. */
static void stop_children(const supervisor_config *cfg, child *kids, int sig)
{
    for (size_t i = 0; i < cfg->children; i++) {
        if (kids[i].state == CHILD_RUNNING)
            kill(kids[i].pid, sig);
        else if (kids[i].state == CHILD_WAITING && sig != SIGHUP)
            kids[i].state = CHILD_DONE; /* never restarted now */
    }
}

int supervisor_run(const supervisor_config *cfg)
{
    child *kids = calloc(cfg->children, sizeof *kids);
    if (!kids)
        return 1;
    for (size_t i = 0; i < cfg->children; i++) {
        if (spawn(cfg, &kids[i], i) != 0) {
            kids[i].state = CHILD_DONE;
            kids[i].last_exit = 1;
        }
    }
    int stopping = 0;
    int64_t kill_at_us = 0;
    for (;;) {
        reap(cfg, kids);
        if (shutdown_requested && !stopping) {
            stopping = 1;
            log_info("stopping workers on signal");
            stop_children(cfg, kids, SIGTERM);
            kill_at_us = mono_us() + cfg->shutdown_timeout_ms * 1000LL;
        }
        if (reload_requested && !stopping) {
            reload_requested = 0;
            if (!cfg->reload || cfg->reload(cfg->arg) == 0)
                stop_children(cfg, kids, SIGHUP);
        }
        if (stopping && mono_us() >= kill_at_us) {
            log_error("workers still running after shutdown_timeout_ms=%ld: killing them",
                      cfg->shutdown_timeout_ms);
            stop_children(cfg, kids, SIGKILL);
            kill_at_us = INT64_MAX;
        }
        size_t active = 0;
        for (size_t i = 0; i < cfg->children; i++) {
            child *c = &kids[i];
            if (c->state == CHILD_WAITING && mono_us() >= c->restart_at_us && !stopping &&
                spawn(cfg, c, i) != 0) {
                c->restart_at_us = mono_us() + cfg->restart_max_ms * 1000LL;
            }
            active += c->state != CHILD_DONE;
        }
        if (active == 0)
            break;
        if (cfg->wait) {
            cfg->wait(cfg->wait_arg, 50);
        } else {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    int rc = 0;
    for (size_t i = 0; i < cfg->children; i++)
        rc |= kids[i].last_exit != 0;
    free(kids);
    return rc;
}
