/*
 * util: see util.h.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t shutdown_requested = 0;
volatile sig_atomic_t reload_requested = 0;

int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_shutdown_signal(int sig)
{
    (void)sig;
    shutdown_requested = 1;
}

void shutdown_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_shutdown_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

void reload_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reload_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
}

int sleep_interruptible_ms(long ms)
{
    int64_t deadline = mono_us() + (int64_t)ms * 1000;
    while (!shutdown_requested) {
        int64_t left = deadline - mono_us();
        if (left <= 0)
            return 0;
        if (left > 100000)
            left = 100000; /* wake often enough to notice a signal lost to a race */
        struct timespec ts = {.tv_sec = left / 1000000, .tv_nsec = (left % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

long backoff_ms(unsigned attempt, long base_ms, long max_ms)
{
    long delay = base_ms;
    for (unsigned i = 0; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    return delay / 2 + (long)(random() % (delay / 2 + 1));
}

int strlist_split(const char *text, strlist *out)
{
    out->items = NULL;
    out->count = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s) {
            char **grown = realloc(out->items, (out->count + 1) * sizeof *grown);
            if (!grown)
                goto fail;
            out->items = grown;
            out->items[out->count] = strndup(s, (size_t)(e - s));
            if (!out->items[out->count])
                goto fail;
            out->count++;
        }
        p = comma ? comma + 1 : end;
    }
    return 0;
fail:
    strlist_free(out);
    return -1;
}

int strlist_push(strlist *list, const char *item)
{
    char **grown = realloc(list->items, (list->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    list->items = grown;
    if (!(list->items[list->count] = strdup(item)))
        return -1;
    list->count++;
    return 0;
}

void strlist_free(strlist *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

char *str_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}
