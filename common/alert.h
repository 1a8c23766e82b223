/*
 * alert: the alert contract, beside the event contract of event.h. A rule
 * that fires on an event raises an alert; the worker publishes it to
 * sluice.alerts with routing key alert.<severity>.<rule> and a JSON body
 * (alert_id, rule, severity, source, msg_id, message, dedup_key,
 * raised_at_us); the notifier decodes it and delivers it. Both sides use
 * this module, so the two cannot drift apart. Pure: no I/O.
 */
#ifndef SLUICE_ALERT_H
#define SLUICE_ALERT_H

#include <stddef.h>
#include <stdint.h>

/* The severities, mildest first, as error messages name them. */
#define ALERT_SEVERITIES "info, warning or critical"

/*
 * The statically allocated name of the severity `name` ("info", "warning",
 * "critical"), or NULL if it is none of them. One list for the rules file,
 * the notifier's routes and decoding.
 */
const char *alert_severity(const char *name);

/*
 * One alert. Built by the worker to encode (strings borrowed from the
 * caller), or filled by alert_decode() (strings point into memory owned by
 * the alert_doc it came with).
 */
typedef struct alert {
    const char *alert_id; /* "<rule>:<msg_id>": the same event raises the same alert */
    const char *rule;
    const char *severity; /* one of alert_severity()'s names */
    const char *source;
    const char *msg_id; /* the event's; NULL if the message did not say */
    const char *message;
    const char *dedup_key; /* "" if the rule has none; NULL if the message did not say */
    int64_t raised_at_us;  /* 0 if the message did not say */
    const char *body;      /* decoded: the whole JSON text as received; else NULL */
    size_t body_len;
} alert;

/* The alert id of `rule` firing on event `msg_id`: "<rule>:<msg_id>".
 * Returns a malloc'd string (free with free()), or NULL on allocation
 * failure. */
char *alert_make_id(const char *rule, const char *msg_id);

/* Writes the routing key "alert.<severity>.<rule>" into out. Returns 0, or
 * -1 if it does not fit (out then holds as much as fits). */
int alert_routing_key(const alert *a, char *out, size_t outlen);

/* The JSON body of alert a (every field but body). Returns a malloc'd,
 * NUL-terminated text with its length in *len (free with free()), or NULL
 * on allocation failure. */
char *alert_encode(const alert *a, size_t *len);

/* What alert_decode() parsed; the decoded alert's strings point into it.
 * Free with alert_doc_free() (accepts NULL). */
typedef struct alert_doc alert_doc;
void alert_doc_free(alert_doc *doc);

/*
 * Decodes an alert message body (len bytes, need not be NUL-terminated).
 * Returns 0 if it is one: UTF-8, a JSON object with string fields
 * alert_id (non-empty), rule, severity (a known one), source and message.
 * Otherwise returns -1 and the caller dead-letters it (retrying could not
 * help); *out then has what could be read. Either way *doc is set (possibly
 * to NULL) and is the caller's to free after it is done with *out.
 */
int alert_decode(const char *body, size_t len, alert *out, alert_doc **doc);

/* Why alert_decode() refuses a message: one line, statically allocated. */
#define ALERT_DECODE_ERROR                                                                         \
    "not an alert: expected a UTF-8 JSON object with string fields alert_id, rule, "               \
    "severity (" ALERT_SEVERITIES "), source and message (alert_id, rule, source, msg_id "         \
    "and dedup_key of at most 1024 bytes)"

/* The longest alert message, in bytes. A message is for a person (a
 * Telegram message holds 4,096 characters): a worker cuts the message it
 * fills from a large event's fields, and the notifier cuts a longer one it
 * is sent, so what the destinations load per alert stays small. */
#define ALERT_MESSAGE_MAX 16384

/* The longest alert_id, rule, source, msg_id and dedup_key the notifier
 * takes, in bytes: PostgreSQL cannot index a value of more than about
 * 2.7 KB, and a row it refused would hold back every alert. A worker's are
 * far shorter (a rule name, a message id of at most 255 bytes, a dedup key
 * of at most 512). */
#define ALERT_FIELD_MAX 1024

/* Cuts the NUL-terminated UTF-8 text to at most max bytes (max >= 4): if it
 * is longer, it ends at a character boundary with "…" (U+2026) inside the
 * max. A shorter text is left as it is. */
void alert_cut_text(char *text, size_t max);

/* Why the notifier refuses a message larger than its max_message_bytes. */
#define ALERT_TOO_LARGE "not an alert: larger than the notifier's max_message_bytes"

#endif
