/*
 * adapter: the interface of a source adapter, a small vtable in the manner
 * of rabbitmq-c's socket classes. The producer opens one adapter instance
 * per configured source and pulls events from it; adding a source type is
 * one file defining an adapter_class and one line in registry.c.
 */
#ifndef SLUICE_ADAPTER_H
#define SLUICE_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

/* What an adapter instance is told about its source. */
typedef struct source_spec {
    const char *name; /* source name: routing key src.<name> */
    const char *kind; /* adapter-specific shape or location (generator: its kind) */
    uint64_t seed;    /* for reproducible adapters */
    uint64_t count;   /* events to produce; 0 = no limit */
} source_spec;

/* One event handed out by next(). body and msg_id point into memory owned
 * by the adapter instance, valid until its next call. */
typedef struct source_event {
    const char *body;
    size_t len;
    const char *msg_id;
    uint64_t position; /* for checkpoint(): the source's position after this event */
} source_event;

typedef enum {
    ADAPTER_EVENT = 0, /* *ev holds an event */
    ADAPTER_IDLE = 1,  /* nothing now; ask again later */
    ADAPTER_END = 2,   /* the source is exhausted */
    ADAPTER_ERROR = -1 /* err says why; the source stops */
} adapter_result;

typedef struct adapter_class {
    const char *name;
    /* Creates an instance in *state. Returns 0, or -1 with err naming the
     * source and the problem (a configuration error). */
    int (*open)(void **state, const source_spec *spec, char *err, size_t errlen);
    adapter_result (*next)(void *state, source_event *ev, char *err, size_t errlen);
    /* Every event up to `position` is confirmed by the broker: the adapter
     * may record that it need not produce them again. May be NULL. */
    int (*checkpoint)(void *state, uint64_t position, char *err, size_t errlen);
    void (*close)(void *state); /* accepts NULL */
} adapter_class;

/* Finds an adapter class by name; NULL if there is none. */
const adapter_class *adapter_find(const char *name);

/* Names of all adapters, comma-separated, for messages; static. */
const char *adapter_names(void);

#endif
