/*
 * progress: see progress.h.
 */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util.h"

#define BAR_WIDTH 30

void progress_start(progress *p, const char *what, uint64_t total)
{
    p->on = isatty(STDERR_FILENO);
    p->what = what;
    p->total = total;
    p->last_draw_us = 0;
}

void progress_update(progress *p, uint64_t done, const char *note)
{
    if (!p->on)
        return;
    int64_t now = mono_us();
    if (done < p->total && now - p->last_draw_us < 100000)
        return;
    p->last_draw_us = now;
    int fill = p->total ? (int)(done * BAR_WIDTH / p->total) : BAR_WIDTH;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    fprintf(stderr, "\r%s [%.*s%*s] %llu/%llu %s", p->what, fill, "##############################",
            BAR_WIDTH - fill, "", (unsigned long long)done, (unsigned long long)p->total,
            note ? note : "");
    fflush(stderr);
}

void progress_end(progress *p)
{
    if (p->on)
        fprintf(stderr, "\r\033[K");
}
