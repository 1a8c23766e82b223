/*
 * outage: see outage.h.
 */
#include "outage.h"

#include "log.h"
#include "util.h"

int outage_fail(outage *o, int64_t now_us)
{
    if (o->attempts++ == 0) {
        o->started_us = now_us;
        return 1;
    }
    return 0;
}

int outage_recover(outage *o, int64_t now_us, unsigned *attempts, int64_t *lasted_us)
{
    int ended = o->attempts > 0;
    if (ended) {
        *attempts = o->attempts;
        *lasted_us = now_us - o->started_us;
    }
    o->attempts = 0;
    o->started_us = 0;
    return ended;
}

void outage_log_failure(outage *o, const char *what, const char *err, long retry_in_ms)
{
    if (outage_fail(o, mono_us()))
        log_warn("%s error=\"%s\" retry_in_ms=%ld", what, err, retry_in_ms);
    else
        log_debug("%s attempt=%u error=\"%s\" retry_in_ms=%ld", what, o->attempts, err,
                  retry_in_ms);
}

void outage_log_recovery(outage *o, const char *what)
{
    unsigned attempts;
    int64_t lasted_us;
    if (outage_recover(o, mono_us(), &attempts, &lasted_us))
        log_info("%s attempts=%u outage_s=%.1f", what, attempts, (double)lasted_us / 1e6);
}
