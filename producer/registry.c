/*
 * registry: the list of source adapters the producer knows. Adding an
 * adapter is one line here.
 */
#include <stdio.h>
#include <string.h>

#include "adapter.h"

extern const adapter_class generator_adapter, file_adapter, stdin_adapter, http_adapter;

static const adapter_class *const adapters[] = {
    &generator_adapter,
    &file_adapter,
    &stdin_adapter,
    &http_adapter,
};

const adapter_class *adapter_find(const char *name)
{
    for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++) {
        if (strcmp(adapters[i]->name, name) == 0)
            return adapters[i];
    }
    return NULL;
}

const char *adapter_names(void)
{
    /* Built from the list, so adding an adapter stays one line above. */
    static char names[256];
    if (!names[0]) {
        size_t n = 0;
        for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++) {
            int w = snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                             adapters[i]->name);
            if (w < 0 || (size_t)w >= sizeof names - n)
                break;
            n += (size_t)w;
        }
    }
    return names;
}
