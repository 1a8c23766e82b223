/*
 * adapter_generator: the "generator" source adapter: simulated sources of
 * the kinds in generator.h, reproducible from a seed. Settings: the table
 * below.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapter.h"
#include "generator.h"

typedef struct generator_state {
    generator_kind kind;
    uint64_t seed, count, next_seq;
    char name[72];
    char body[2048];
    char msg_id[128];
    char where[48];
} generator_state;

typedef struct generator_conf {
    char *kind;
    long count, seed;
} generator_conf;

static const cfg_option generator_settings[] = {
    {"kind", CFG_STRING, offsetof(generator_conf, kind), NULL, 0, 0,
     "profiles, clickstream, orders or sensors, by default the source name", NULL},
    {"count", CFG_INT, offsetof(generator_conf, count), NULL, 0, 1L << 40,
     "events to make (0 = no end), by default --count", NULL},
    {"seed", CFG_INT, offsetof(generator_conf, seed), NULL, 0, 1L << 62,
     "the same seed makes the same events and ids, by default --seed", NULL},
    CFG_END,
};

static int gen_open(void **state, const source_spec *spec, const void *conf_, char *err,
                    size_t errlen)
{
    const generator_conf *conf = conf_;
    generator_kind kind;
    /* The flat configuration: the source name is the kind. */
    const char *kind_name = conf->kind ? conf->kind : spec->name;
    if (generator_kind_parse(kind_name, &kind) != 0) {
        spec_error(spec, "kind", err, errlen, "generator has no kind '%s' (known: %s)", kind_name,
                   generator_kind_list());
        return -1;
    }
    long count = conf->count == SPEC_UNSET ? (long)spec->default_count : conf->count;
    long seed = conf->seed == SPEC_UNSET ? (long)spec->default_seed : conf->seed;
    generator_state *g = calloc(1, sizeof *g);
    if (!g) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    g->kind = kind;
    g->seed = (uint64_t)seed;
    g->count = (uint64_t)count;
    snprintf(g->name, sizeof g->name, "%s", spec->name);
    *state = g;
    return 0;
}

static adapter_result gen_next(void *state, source_event *ev, char *err, size_t errlen)
{
    generator_state *g = state;
    if (g->count && g->next_seq >= g->count)
        return ADAPTER_END;
    int len = generator_make(g->kind, g->seed, g->name, g->next_seq, g->body, sizeof g->body,
                             g->msg_id, sizeof g->msg_id);
    if (len < 0) {
        snprintf(err, errlen, "source %s: event %llu does not fit its buffer", g->name,
                 (unsigned long long)g->next_seq);
        return ADAPTER_ERROR;
    }
    g->next_seq++;
    ev->body = g->body;
    ev->len = (size_t)len;
    ev->msg_id = g->msg_id;
    ev->position = g->next_seq;
    snprintf(g->where, sizeof g->where, "event %llu", (unsigned long long)(g->next_seq - 1));
    ev->where = g->where;
    return ADAPTER_EVENT;
}

static void gen_close(void *state)
{
    free(state);
}

const adapter_class generator_adapter = {
    .name = "generator",
    .summary = "the paper's simulated sources, reproducible from a seed",
    .settings = generator_settings,
    .settings_size = sizeof(generator_conf),
    .open = gen_open,
    .next = gen_next,
    .checkpoint = NULL, /* a seeded generator can always make the same events again */
    .close = gen_close,
};
