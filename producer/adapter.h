/*
 * adapter: the interface of a source adapter, a small vtable in the manner
 * of rabbitmq-c's socket classes. The producer opens one adapter instance
 * per configured source and pulls events from it on a thread of its own;
 * adding a source type is one file defining an adapter_class and one line
 * in registry.c.
 *
 * Threads: all calls on one instance come from one thread at a time (the
 * source's reader thread, or the main thread before it starts and after it
 * ended), so an instance needs no locking of its own. The one exception is
 * confirmed(), which the publishing thread calls while the reader runs: an
 * adapter that has it locks what it shares with it.
 */
#ifndef SLUICE_ADAPTER_H
#define SLUICE_ADAPTER_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "event.h"

/* What an adapter instance is told about its source: its name, its own
 * settings (the lines of its "[source NAME]" section, read through the
 * class's table by adapter_open()) and the producer-wide values an adapter
 * may use as defaults. */
typedef struct source_spec {
    const char *name;          /* source name: routing key src.<name> */
    const cfg_entry *settings; /* the section's lines; owned by the producer */
    size_t nsettings;
    unsigned char *used;        /* one flag per setting: read by the producer (adapter, rate) */
    const char *file;           /* config file, for messages; NULL if none */
    int line;                   /* of the section header; 0 if none */
    uint64_t default_seed;      /* --seed */
    uint64_t default_count;     /* --count */
    const char *checkpoint_dir; /* where adapters keep checkpoints */
    const atomic_int *stop;     /* set when the producer stops reading */
    long rate;                  /* the section's `rate` (events/s; 0 = none), which the
                                   reader thread paces next() to; an adapter that is pushed
                                   to may refuse what would exceed it */
    size_t max_message_bytes;   /* the producer's bound, which its reader checks every event
                                   against (event_validate) */
} source_spec;

/* One event handed out by next(). body, msg_id and where point into memory
 * owned by the adapter instance, valid until its next call. The producer
 * zeroes it before each call; an adapter sets what applies. */
typedef struct source_event {
    const char *body;
    size_t len;
    const char *msg_id;      /* stable: the same event read again gets the same id */
    uint64_t position;       /* for checkpoint(): the source's position after this event */
    const char *where;       /* for messages: "line 12", "item 3 of response 7" */
    const char *skip_reason; /* non-NULL: unusable input ("line_too_long"), which the
                                producer reports with `where`, counts and skips */
} source_event;

typedef enum {
    ADAPTER_EVENT = 0, /* *ev holds an event */
    ADAPTER_IDLE = 1,  /* nothing now (the adapter already waited a little); ask again */
    ADAPTER_END = 2,   /* the source is exhausted */
    ADAPTER_ERROR = -1 /* err says why; the source stops */
} adapter_result;

/* What an integer setting without a default holds when its section does
 * not set it (so an adapter can fall back on a producer-wide value). */
#define SPEC_UNSET LONG_MIN

typedef struct adapter_class {
    const char *name;
    const char *summary; /* one line for --help and the README */
    /* Its settings, as a config table (config.h) whose offsets are those of
     * a struct of settings_size bytes: adapter_open() fills one from the
     * section (defaults, types, ranges, the words of an enum, unknown keys
     * refused) and hands it to open(). sluice-producer --help prints it. */
    const cfg_option *settings;
    size_t settings_size;
    /* Creates an instance in *state from `conf`, the struct the table
     * filled (owned by the caller, valid during the call only: copy what
     * is kept). Returns 0, or -1 with err naming the source and the
     * problem (a configuration error: the producer exits 2). */
    int (*open)(void **state, const source_spec *spec, const void *conf, char *err, size_t errlen);
    /* Hands out the next event. Must not block for long (at most a few
     * hundred ms, or until spec->stop is set) so that stopping is prompt. */
    adapter_result (*next)(void *state, source_event *ev, char *err, size_t errlen);
    /* Every event up to `position` is confirmed by the broker: the adapter
     * may record that it need not produce them again. May be NULL. */
    int (*checkpoint)(void *state, uint64_t position, char *err, size_t errlen);
    /* The same news as checkpoint(), at once and for every confirm: every
     * event up to `position` is confirmed by the broker. Called on the
     * publishing thread, concurrently with next() (see Threads above), so
     * it must be quick and thread-safe. For an adapter that owes someone
     * an answer per event (http_server answers a request once all its
     * events are confirmed), where checkpoint()'s interval would be too
     * slow. May be NULL. */
    void (*confirmed)(void *state, uint64_t position);
    void (*close)(void *state); /* accepts NULL */
} adapter_class;

/* Finds an adapter class by name; NULL if there is none. */
const adapter_class *adapter_find(const char *name);

/* Names of all adapters, comma-separated, for messages; statically
 * allocated (built on the first call, from the main thread). */
const char *adapter_names(void);

/* Prints every adapter with its summary and settings (for --help). */
void adapter_print_help(FILE *out);

/* ---- opening an instance (source_spec.c) ---- */

/*
 * The one place an adapter's settings are read: fills a struct of
 * a->settings_size bytes from a->settings and the section's lines not read
 * by the producer, then calls a->open(). A setting the table lacks, or a
 * value it refuses, is an error naming file:line, source and setting.
 * Returns 0 with *state set (free with a->close()), or -1 with err.
 */
int adapter_open(const adapter_class *a, const source_spec *spec, void **state, char *err,
                 size_t errlen);

/* Writes "file:line: source NAME: " for setting `key` (or the section
 * when key is NULL or absent) followed by the formatted text into err. */
void spec_error(const source_spec *spec, const char *key, char *err, size_t errlen, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* Sleeps up to ms milliseconds, returning early once *stop is set. For
 * adapters and reader threads, which must not read the signal flag of
 * util.h (only the main thread does, and then sets *stop). */
void source_sleep_ms(const atomic_int *stop, long ms);

/* Length of a message id made by source_event_id(), without the NUL. */
#define SOURCE_EVENT_ID_LEN EVENT_SHA256_ID_LEN

/*
 * Writes "sha256:<hex>" of the source name, a scope (e.g. a file's
 * identity; may be ""), the position and the body into out (at least
 * SOURCE_EVENT_ID_LEN + 1 bytes). The same line at the same place gets the
 * same id across restarts, so a re-read is absorbed by the warehouse, while
 * different content at the same place is a different event.
 */
void source_event_id(const char *source, const char *scope, uint64_t position, const char *body,
                     size_t len, char *out);

/*
 * The message id of an item that an adapter received (from an HTTP
 * response or request): "<source>:<value>" of the member id_pointer names
 * (a JSON pointer; NULL for none) when the item has it and the id stays
 * under 250 bytes, else source_event_id(source, scope, 0, item). Either
 * way the same item gets the same id whenever it comes again. Writes at
 * most cap bytes (at least SOURCE_EVENT_ID_LEN + 1) into out.
 */
void source_item_id(const char *source, const char *scope, const char *id_pointer, const char *item,
                    size_t len, char *out, size_t cap);

/*
 * Copies `in` into out (cap bytes) with each ${VAR} replaced by the
 * environment's VAR, so a secret never sits in the config file or on the
 * command line. An unset variable, an unclosed ${ or a result too long is
 * an error naming the setting `key`. Returns 0, or -1 with err.
 */
int spec_expand_env(const source_spec *spec, const char *key, const char *in, char *out, size_t cap,
                    char *err, size_t errlen);

#endif
