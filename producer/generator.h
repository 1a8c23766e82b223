/*
 * generator: the simulated sources of the paper's experiment, as pure
 * functions. Each kind makes semi-structured objects with identifiers,
 * names, preferences and behavioural indicators whose attributes vary from
 * object to object. Event number `seq` of a source depends only on the
 * kind, the seed, the source name and seq, so a run can be reproduced, and
 * republished, exactly.
 */
#ifndef SLUICE_GENERATOR_H
#define SLUICE_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GEN_PROFILES,    /* user profiles: names, preferences, behaviour */
    GEN_CLICKSTREAM, /* page views and clicks from web sessions */
    GEN_ORDERS,      /* shop orders with a variable list of items */
    GEN_SENSORS,     /* readings from devices of several kinds */
    GEN_KIND_COUNT
} generator_kind;

/* Finds a kind by name ("profiles", ...). Returns 0, or -1 if unknown. */
int generator_kind_parse(const char *name, generator_kind *kind);

/* The kind's name; statically allocated. */
const char *generator_kind_name(generator_kind kind);

/* The names of all kinds, comma-separated, for messages; static. */
const char *generator_kind_list(void);

/*
 * Writes event number `seq` of `source` as one JSON object into buf (cap
 * bytes; 2048 always suffice) and returns its length, or -1 if it did not
 * fit. Also writes its message id ("<source>-<seed>-<seq>") into id
 * (idcap bytes).
 */
int generator_make(generator_kind kind, uint64_t seed, const char *source, uint64_t seq, char *buf,
                   size_t cap, char *id, size_t idcap);

#endif
