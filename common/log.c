/*
 * log: formats a whole line in a local buffer and writes it with one
 * write(2), so lines from several processes sharing stderr never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

log_level log_min_level = LOG_INFO;
static const char *log_component = "sluice";

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init(const char *component, log_level min_level)
{
    log_component = component;
    log_min_level = min_level;
}

int log_level_parse(const char *name, log_level *level)
{
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_write(log_level level, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof line - n, ".%03dZ %s %s: ", (int)(tv.tv_usec / 1000),
                     level_names[level], log_component);
    if (w > 0)
        n += (size_t)w;

    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w < sizeof line - n - 1 ? (size_t)w : sizeof line - n - 2;
    line[n++] = '\n';

    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}
