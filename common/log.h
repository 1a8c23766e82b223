/*
 * log: one line per event on stderr, with time, level, component and
 * key=value fields, e.g.
 *   2026-11-24T10:00:00.123Z info worker: batch stored rows=500 duplicates=0
 * The level is checked before the arguments are evaluated, so a disabled
 * debug line costs one comparison.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level;

extern log_level log_min_level;

/* Names the component printed on every line ("worker", "producer", ...).
 * The string must outlive all logging (a literal is the usual argument). */
void log_init(const char *component, log_level min_level);

/* The levels' names in the order of log_level, NULL-terminated: the
 * choices of the log_level setting (settings.h). Statically allocated. */
extern const char *const log_level_names[];

/*
 * Copies len bytes of `in` to `out` (cap bytes, NUL-terminated, cut at a
 * whole escape when full) with control characters written as \n, \r, \t
 * or \xHH and trailing newlines and blanks dropped: what log_write() does
 * to every entry so that it stays one line. Returns the length written.
 */
size_t log_escape(const char *in, size_t len, char *out, size_t cap);

/* Writes one entry (one line: see log_escape()). */
void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) >= log_min_level)                                                                \
            log_write((lvl), __VA_ARGS__);                                                         \
    } while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
