/*
 * registry: the list of source adapters the producer knows. Adding an
 * adapter is one line here (and its name in adapter_names()).
 */
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
    return "generator, file, stdin, http";
}
