/*
 * source_list: which sources a deployment has, read the same way by every
 * binary from the one config file they share. sluice-setup declares a
 * queue for each, the workers consume them, the producer publishes them:
 * one list, so a source cannot have a producer but no queue by oversight.
 *
 * The list is the names of the file's "[source NAME]" sections, in file
 * order. A file without such sections (or no file) uses the flat `sources`
 * setting instead, by default the four simulated sources. A `sources`
 * setting given beside sections picks some of them (a worker for one
 * source, say); naming a source that has no section is a mistake.
 */
#ifndef SLUICE_SOURCE_LIST_H
#define SLUICE_SOURCE_LIST_H

#include <stddef.h>

#include "config.h"
#include "util.h"

/* The flat list when neither sections nor `sources` name any. */
#define SOURCE_LIST_DEFAULT "profiles,clickstream,orders,sensors"

/*
 * Fills `out` (free with strlist_free) from the sections of kind "source"
 * in `secs` and the flat setting `flat` (NULL or "" when not set); see the
 * top of this file. Sections of other kinds are left to whoever reads them.
 * Returns 0, or -1 with err naming file:line or the setting for a bad,
 * reserved or duplicate name, or a flat name without a section.
 */
int source_list_resolve(const cfg_sections *secs, const char *flat, strlist *out, char *err,
                        size_t errlen);

#endif
