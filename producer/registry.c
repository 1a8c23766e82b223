/*
 * registry: the list of source adapters the producer knows. Adding an
 * adapter is one file defining its adapter_class (adapter.h) and one line
 * here; --help and the README's settings list follow from its table.
 */
#include <stdio.h>
#include <string.h>

#include "adapter.h"

/* The adapters, one line each: X(NAME) stands for the adapter_class
 * NAME_adapter that producer/adapter_NAME.c defines. --help lists them in
 * this order. */
#define ADAPTERS(X)                                                                                \
    X(generator)                                                                                   \
    X(file)                                                                                        \
    X(stdin)                                                                                       \
    X(http)                                                                                        \
    X(http_server)

#define DECLARE(name) extern const adapter_class name##_adapter;
ADAPTERS(DECLARE)
#define ENTRY(name) &name##_adapter,
static const adapter_class *const adapters[] = {ADAPTERS(ENTRY)};

const adapter_class *adapter_find(const char *name)
{
    for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++) {
        if (strcmp(adapters[i]->name, name) == 0)
            return adapters[i];
    }
    return NULL;
}

void adapter_print_help(FILE *out)
{
    fprintf(out, "Adapters (a [source NAME] section sets adapter = NAME, optionally rate = "
                 "events/s, and the adapter's settings):\n");
    for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++) {
        fprintf(out, "  %s: %s\n", adapters[i]->name, adapters[i]->summary);
        cfg_print_keys(adapters[i]->settings, out, "    ");
    }
}

const char *adapter_names(void)
{
    /* Built from the list, so adding an adapter stays one line above. */
    static char names[256];
    if (!names[0]) {
        size_t n = 0;
        for (size_t i = 0; i < sizeof adapters / sizeof *adapters; i++) {
            int w = snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", adapters[i]->name);
            if (w < 0 || (size_t)w >= sizeof names - n)
                break;
            n += (size_t)w;
        }
    }
    return names;
}
