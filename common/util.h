/*
 * util: small helpers every sluice binary needs: clocks, the shutdown flag
 * set by SIGTERM/SIGINT, interruptible backoff sleeps and comma lists.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Microseconds since the Unix epoch (wall clock), as in x-produced-at-us. */
int64_t now_us(void);

/* Microseconds from a monotonic clock, for durations and deadlines. */
int64_t mono_us(void);

/* Set to 1 by SIGTERM or SIGINT once shutdown_install() ran. */
extern volatile sig_atomic_t shutdown_requested;

/* Installs SIGTERM/SIGINT handlers that set shutdown_requested (without
 * SA_RESTART, so blocking calls return EINTR) and ignores SIGPIPE. */
void shutdown_install(void);

/* Set to 1 by SIGHUP once reload_install() ran; whoever acts on it (re-reads
 * its files) sets it back to 0 first. */
extern volatile sig_atomic_t reload_requested;

/* Installs a SIGHUP handler that sets reload_requested (with SA_RESTART:
 * a reload is never urgent enough to cut a blocking call short). */
void reload_install(void);

/* Sleeps up to `ms` milliseconds, returning early once shutdown is requested.
 * Returns 0 if it slept the whole time, -1 if shutdown cut it short. */
int sleep_interruptible_ms(long ms);

/* Exponential backoff with jitter: the delay before attempt number `attempt`
 * (0-based), doubling from base_ms up to max_ms, then randomised to 50-100%
 * so that many clients reconnecting at once spread out. */
long backoff_ms(unsigned attempt, long base_ms, long max_ms);

/* Cuts the blanks off both ends of s, in place: returns the first
 * non-blank character, with a NUL written after the last. */
char *str_trim(char *s);

/* A list of strings split from "a,b, c". Free with strlist_free(). */
typedef struct strlist {
    char **items;
    size_t count;
} strlist;

/* Splits `text` at commas, trimming blanks and skipping empty items.
 * Returns 0, or -1 on allocation failure. */
int strlist_split(const char *text, strlist *out);
/* Appends a copy of `item`. Returns 0, or -1 on allocation failure (list
 * unchanged). */
int strlist_push(strlist *list, const char *item);
void strlist_free(strlist *list);

#endif
