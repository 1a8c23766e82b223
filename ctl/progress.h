/*
 * progress: a one-line progress bar on stderr, drawn only when stderr is a
 * terminal (in a pipe or a log file it would be noise), redrawn at most
 * ten times a second.
 */
#ifndef SLUICE_CTL_PROGRESS_H
#define SLUICE_CTL_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int on; /* stderr is a terminal */
    const char *what;
    uint64_t total;
    int64_t last_draw_us;
} progress;

void progress_start(progress *p, const char *what, uint64_t total);
/* done of total; `note` (may be NULL) follows the bar. */
void progress_update(progress *p, uint64_t done, const char *note);
/* Clears the bar's line. */
void progress_end(progress *p);

#endif
