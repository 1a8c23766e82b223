/*
 * event: the message contract's pure rules, shared by producers and workers:
 * what a source name may be, what makes a body storable in the warehouse,
 * and the deterministic id of a message that arrived without message_id.
 */
#ifndef SLUICE_EVENT_H
#define SLUICE_EVENT_H

#include "amqp_api.h"
#include <stddef.h>
#include <stdint.h>

/* Source names: [a-z0-9_-]{1,64}. Returns 1 if valid, 0 if not. */
int source_name_valid(const char *name);

/* Returns 1 if `name` is valid but taken by one of sluice's own queues
 * (sluice.q.notifier, sluice.q.unrouted), else 0. */
int source_name_reserved(const char *name);

/* Returns 1 if s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. */
int utf8_valid(const char *s, size_t len);

/* Why a body cannot be stored as an event (each becomes the `reason` of an
 * ingest_errors row). Order matters only for the strings below. */
typedef enum {
    EVENT_OK = 0,
    EVENT_TOO_LARGE,      /* over max_message_bytes */
    EVENT_BAD_UTF8,       /* not valid UTF-8 */
    EVENT_BAD_JSON,       /* not valid JSON */
    EVENT_NOT_OBJECT,     /* valid JSON but not an object */
    EVENT_NUL_CHAR,       /* contains \u0000, which jsonb refuses */
    EVENT_UNKNOWN_SOURCE, /* came through sluice.unrouted: no source queue took it */
} event_verdict;

/* Short, stable reason text for a verdict ("invalid_json", ...);
 * statically allocated. */
const char *event_verdict_reason(event_verdict v);

/* How deep objects and arrays may nest in an event. A json-c tokener that
 * reads events must allow one level more, json_tokener_new_ex(
 * EVENT_MAX_DEPTH + 1), as json-c counts the innermost value as a level
 * (json_tokener_new() stops at 32). */
#define EVENT_MAX_DEPTH 1000

typedef struct event_validator event_validator;

/* Creates a validator for bodies of at most max_bytes. Free with
 * event_validator_free(). Returns NULL on allocation failure. */
event_validator *event_validator_new(size_t max_bytes);
void event_validator_free(event_validator *v);

/* Checks a body against the contract: at most max_bytes, UTF-8, one JSON
 * object (surrounding whitespace allowed) nested at most EVENT_MAX_DEPTH
 * deep, no \u0000 escape. */
event_verdict event_validate(event_validator *v, const void *body, size_t len);

/* Length of a "sha256:<64 hex digits>" id, without the NUL. */
#define EVENT_SHA256_ID_LEN (7 + 64)

/* One piece of what an id is the digest of. */
typedef struct id_part {
    const void *bytes;
    size_t len;
} id_part;

/*
 * Writes "sha256:<64 hex digits>" of the parts, one after the other, into
 * out (at least EVENT_SHA256_ID_LEN + 1 bytes). Callers that hash several
 * strings include each one's NUL in its part, so ("ab","c") and ("a","bc")
 * stay apart. The one way sluice derives a stable message id: the worker's
 * for a message without one, an adapter's for a line at a place.
 */
void event_sha256_id(const id_part *parts, size_t nparts, char *out);

/* Length of the text event_derive_id() writes, without the NUL. */
#define EVENT_DERIVED_ID_LEN EVENT_SHA256_ID_LEN

/* Writes "sha256:<64 hex digits>" of source, a NUL byte and the body into
 * out (at least EVENT_DERIVED_ID_LEN + 1 bytes): the same message from the
 * same source always gets the same id, so a republished copy is absorbed. */
void event_derive_id(const char *source, const void *body, size_t len, char *out);

/* Message headers of the contract: what a producer sets, what a dead letter
 * carries. */
#define SLUICE_HEADER_SOURCE "x-source"
#define SLUICE_HEADER_PRODUCED_AT "x-produced-at-us" /* microseconds since the epoch */
#define SLUICE_HEADER_REASON "x-sluice-reason"       /* why it was dead-lettered */
#define SLUICE_HEADER_ATTEMPTS "x-sluice-attempts"   /* how often it failed first */

/* When a message was produced, in microseconds since the epoch, read from
 * its AMQP properties as any publisher may have set them: the header
 * x-produced-at-us (an integer of any AMQP width, or its decimal text) if
 * present and plausible (after the epoch, before 10^17 us: the year 5138),
 * else the timestamp property (seconds) if plausible, else 0 (unknown).
 * Reads nothing but *p. */
int64_t event_produced_at_us(const amqp_basic_properties_t *p);

/* The topology every component agrees on (declared by sluice-setup,
 * broker-setup/topology.c): exchanges, queues and routing keys. */
#define SLUICE_EXCHANGE_INGEST "sluice.ingest"
#define SLUICE_EXCHANGE_DLX "sluice.dlx"
#define SLUICE_EXCHANGE_ALERTS "sluice.alerts"
#define SLUICE_QUEUE_DEAD "sluice.dead"
#define SLUICE_QUEUE_NOTIFIER "sluice.q.notifier"
/* The alternate exchange of sluice.ingest and its queue: a message that no
 * source queue is bound for (a source without a queue, a foreign routing
 * key) goes there instead of being dropped or returned. Workers record its
 * messages in ingest_errors with reason unknown_source and the raw body. */
#define SLUICE_EXCHANGE_UNROUTED "sluice.unrouted"
#define SLUICE_UNROUTED_NAME "unrouted" /* queue sluice.q.unrouted */
#define SLUICE_QUEUE_UNROUTED "sluice.q.unrouted"
#define SLUICE_QUEUE_PREFIX "sluice.q."  /* + source name */
#define SLUICE_ROUTING_PREFIX "src."     /* + source name */
#define SLUICE_MAX_MESSAGE_BYTES 1048576 /* default max_message_bytes */
#endif
