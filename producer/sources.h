/*
 * sources: which sources a producer runs, from its config file's
 * "[source NAME]" sections or, without sections, from the flat settings
 * (`sources` list, one `adapter` for all: the simulated sources' set-up).
 * The names are those of source_list.h, which setup and the workers read
 * too; `sources` beside sections picks some of them.
 *
 * A section names its adapter and may set `rate` (events/s, read by the
 * producer for any adapter); every other line is the adapter's:
 *
 *   [source orders_api]
 *   adapter = http
 *   url = https://shop.example/api/orders
 *   header = Authorization: Bearer ${ORDERS_API_TOKEN}
 */
#ifndef SLUICE_SOURCES_H
#define SLUICE_SOURCES_H

#include <stddef.h>

#include "adapter.h"
#include "config.h"

typedef struct source_def {
    char *name;
    const adapter_class *adapter;
    long rate;                 /* events/s; 0 = no limit */
    const cfg_entry *settings; /* the adapter's lines; point into the cfg_sections */
    size_t nsettings;
    unsigned char *used; /* one flag per setting, for spec_check_unused */
    int line;            /* of the section header; 0 for flat settings */
} source_def;

typedef struct source_defs {
    source_def *items;
    size_t count;
} source_defs;

/*
 * Fills `out` with the sources to run: those of sections of kind "source"
 * if there are any, else one per name of `flat_sources` with adapter
 * `flat_adapter`. default_rate applies where a section sets none. `only`,
 * if not empty, keeps just that source (distributed mode). Returns 0, or -1
 * with err naming file:line for a bad section, a duplicate or unknown
 * name. `out` points into `sections`, which must outlive it. Free with
 * source_defs_free().
 */
int source_defs_build(const cfg_sections *sections, const char *flat_sources,
                      const char *flat_adapter, long default_rate, const char *only,
                      source_defs *out, char *err, size_t errlen);

void source_defs_free(source_defs *defs);

#endif
