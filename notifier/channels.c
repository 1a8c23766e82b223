/*
 * channels: the registry of notification channels. Adding a channel is a
 * file defining its channel_class and one line here.
 */
#include "channels.h"

#include <stdio.h>
#include <string.h>

extern const channel_class webhook_channel, telegram_channel;

static const channel_class *const channels[] = {
    &log_channel,
    &webhook_channel,
    &telegram_channel,
};

const channel_class *channel_find(const char *name)
{
    for (size_t i = 0; i < sizeof channels / sizeof *channels; i++) {
        if (strcmp(channels[i]->name, name) == 0)
            return channels[i];
    }
    return NULL;
}

const char *channel_names(void)
{
    /* Built from the list, so adding a channel stays one line above. */
    static char names[512];
    if (!names[0]) {
        size_t n = 0;
        for (size_t i = 0; i < sizeof channels / sizeof *channels; i++) {
            const channel_class *c = channels[i];
            int w = snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", c->name);
            if (w >= 0 && (size_t)w < sizeof names - n && c->target)
                w += snprintf(names + n + (size_t)w, sizeof names - n - (size_t)w, ", %s:%s",
                              c->name, c->target);
            if (w < 0 || (size_t)w >= sizeof names - n)
                break;
            n += (size_t)w;
        }
    }
    return names;
}
