/*
 * outage: one log line when a server is lost and one when it is back,
 * however many attempts reconnecting takes. sluice's long-running loops
 * reconnect with backoff (every 10 s at most) for as long as a server is
 * away; a line per attempt would bury the log during an hour-long outage or
 * a PostgreSQL failover. The first failed attempt is logged as a warning,
 * the others at debug level, and the first success after them at info,
 * with how many attempts and how long it took.
 */
#ifndef SLUICE_OUTAGE_H
#define SLUICE_OUTAGE_H

#include <stdint.h>

/* Zeroed: no outage. */
typedef struct outage {
    unsigned attempts;  /* failed attempts since the last success; 0: no outage */
    int64_t started_us; /* mono_us() of the first of them */
} outage;

/* Records a failed attempt at now_us. Returns 1 if it starts an outage
 * (the one to log), 0 if it goes on with one. */
int outage_fail(outage *o, int64_t now_us);

/* Records a success at now_us. Returns 1 if it ends an outage, with
 * *attempts (the failed ones) and *lasted_us filled; 0 if there was none.
 * Either way there is no outage afterwards. */
int outage_recover(outage *o, int64_t now_us, unsigned *attempts, int64_t *lasted_us);

/* Logs a failed attempt: "<what> error=\"<err>\" retry_in_ms=<delay>" as
 * a warning if it starts an outage, else at debug level with attempt=N. */
void outage_log_failure(outage *o, const char *what, const char *err, long retry_in_ms);

/* Logs "<what> attempts=N outage_s=S" at info level if a success ends an
 * outage; nothing otherwise. */
void outage_log_recovery(outage *o, const char *what);

#endif
