/*
 * ctl: sluice-ctl's settings and its three commands, each a function that
 * returns the process's exit code (0 done, 1 runtime failure, 2 bad usage).
 *
 *   status            the pipeline at a glance: queues (management API),
 *                     warehouse, ingest_errors, dead letters, alerts
 *   replay-dead       sluice.dead back to the source queues, with confirms
 *   reprocess-errors  ingest_errors rows stored as events, once fixed
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include "mq.h"
#include "util.h"

typedef struct ctl_settings {
    char *amqp_url;
    mq_tls amqp_tls;
    char *pg_dsn;
    char *sources;
    char *mgmt_url;
    char *mgmt_user;
    char *mgmt_password;
    mq_tls mgmt_tls;
    long heartbeat;
    long max_message_bytes;
    int log_level; /* log_level (log.h) */
    int json;
    char *source; /* filter: one source; "" = all */
    char *reason; /* filter: one reason; "" = all */
    long min_id, max_id;
    long dead_scan_max;
} ctl_settings;

/* What main() resolved from the settings, for every command. */
typedef struct ctl_env {
    const ctl_settings *s;
    strlist urls;    /* amqp_url split into nodes */
    strlist sources; /* the configured source list */
    mq_tls mgmt_tls; /* the management API's TLS settings (cli_mgmt_tls) */
} ctl_env;

int ctl_status(const ctl_env *env);
int ctl_replay_dead(const ctl_env *env);
int ctl_reprocess_errors(const ctl_env *env);

#endif
