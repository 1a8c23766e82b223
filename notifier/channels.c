/*
 * channels: the registry of notification channels. Adding a channel is a
 * file defining its channel_class and one line here.
 */
#include "channels.h"

#include <stdio.h>
#include <string.h>

/* The channels, one line each: X(NAME) stands for the channel_class
 * NAME_channel that notifier/channel_NAME.c defines. Routes and --help name
 * them in this order. */
#define CHANNELS(X)                                                                                \
    X(log)                                                                                         \
    X(webhook)                                                                                     \
    X(telegram)

#define DECLARE(name) extern const channel_class name##_channel;
CHANNELS(DECLARE)
#define ENTRY(name) &name##_channel,
static const channel_class *const channels[] = {CHANNELS(ENTRY)};

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
