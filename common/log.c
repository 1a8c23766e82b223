/*
 * log: formats a whole line in a local buffer and writes it with one
 * write(2), so lines from several processes sharing stderr never interleave.
 *
 * One entry is one line whatever its values hold: libpq's messages end in
 * a newline and carry a second line ("Is the server running on that
 * host..."), HTTP bodies and broker texts may hold anything. Control
 * characters in the formatted text are therefore written as escapes (\n,
 * \r, \t, \xHH) and trailing blanks and newlines are dropped, so a reader
 * of the log (grep, a collector splitting on newlines) sees each entry once.
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

const char *const log_level_names[] = {"debug", "info", "warn", "error", "off", NULL};

void log_init(const char *component, log_level min_level)
{
    log_component = component;
    log_min_level = min_level;
}

size_t log_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (cap == 0)
        return 0;
    /* Trailing newlines and blanks say nothing and would end the line early. */
    while (len > 0 && (in[len - 1] == '\n' || in[len - 1] == '\r' || in[len - 1] == ' ' ||
                       in[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[4];
        size_t k = 0;
        if (c == '\n')
            esc[k++] = '\\', esc[k++] = 'n';
        else if (c == '\r')
            esc[k++] = '\\', esc[k++] = 'r';
        else if (c == '\t')
            esc[k++] = '\\', esc[k++] = 't';
        else if (c < 0x20 || c == 0x7f)
            esc[k++] = '\\', esc[k++] = 'x', esc[k++] = hex[c >> 4], esc[k++] = hex[c & 15];
        else
            esc[k++] = (char)c;
        if (n + k >= cap)
            break; /* cut at a whole escape, never inside one */
        memcpy(out + n, esc, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

void log_write(log_level level, const char *fmt, ...)
{
    char line[4096], text[4096];
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof line - n, ".%03dZ %s %s: ", (int)(tv.tv_usec / 1000),
                     log_level_names[level], log_component);
    if (w > 0)
        n += (size_t)w;

    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (w > 0) {
        size_t len = (size_t)w < sizeof text ? (size_t)w : sizeof text - 1;
        n += log_escape(text, len, line + n, sizeof line - n - 1);
    }
    line[n++] = '\n';

    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}
