/*
 * mgmt: a client of RabbitMQ's management HTTP API (libcurl, json-c), for
 * what AMQP itself neither tells nor does: a queue's publish and deliver
 * rates (sluice-ctl status), policies (sluice-setup). An https:// API is
 * verified with the same five TLS settings as a broker connection (mq_tls,
 * mq.h; the rows are SETTING_MGMT_TLS in settings.h), so an API behind a
 * private CA, or one that asks for a client certificate, can be reached.
 * In libsluice_mgmt, so only the binaries that use it link libcurl.
 */
#ifndef SLUICE_MGMT_H
#define SLUICE_MGMT_H

#include <json-c/json.h>
#include <stddef.h>

#include "buf.h"
#include "mq.h"

typedef struct mgmt mgmt;

/*
 * A client of the API at `base_url` (its root, "http://127.0.0.1:15672/";
 * the final '/' may be left out) for virtual host `vhost` (as in an AMQP
 * URL, "/" by default). `user` and `password` log in with HTTP basic
 * authentication; a NULL user sends none of its own, so a base_url with
 * user:password@ logs in with those. `tls` (NULL: verify with the system's
 * CA store) applies to https:// only; check it first with mq_tls_check().
 * Strings are copied. Returns NULL with err on one line. Free with
 * mgmt_free().
 */
mgmt *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost,
               const mq_tls *tls, char *err, size_t errlen);
void mgmt_free(mgmt *m); /* accepts NULL */

/* The API's root as given, with any password removed: for messages.
 * Points into m. */
const char *mgmt_url(const mgmt *m);

/*
 * One request: `method` ("GET", "PUT", ...) on api/<kind>/<vhost>/<name>
 * (kind "queues", "exchanges", "policies", ...; the vhost and name are
 * URL-escaped here), with `body` as JSON (NULL: none). Fills *status with
 * the HTTP status and `reply` with the answer's body (text, a NUL after
 * it; at most 4 MiB; free with buf_free() whatever the outcome). Returns
 * 0 if an answer came, whatever its status; or -1 with err "management API
 * <url>: <why>" on one line when none did, where a TLS failure names the
 * setting to fix (mgmt_ca_file, mgmt_verify_hostname, mgmt_cert_file).
 */
int mgmt_call(mgmt *m, const char *method, const char *kind, const char *name, const char *body,
              long *status, buf *reply, char *err, size_t errlen);

/* As mgmt_call(), on an object of no vhost: api/<kind>/<name> (kind
 * "users"). */
int mgmt_call_global(mgmt *m, const char *method, const char *kind, const char *name,
                     const char *body, long *status, buf *reply, char *err, size_t errlen);

typedef struct mgmt_queue {
    int found;     /* 0: the API answered 404 (no such queue) */
    long messages; /* ready + unacknowledged */
    long ready;
    long consumers;
    double publish_rate; /* messages/s into the queue, as the API averages them */
    double deliver_rate; /* messages/s delivered to consumers (deliver + get) */
} mgmt_queue;

/* Fills q for queue `name`. Returns 0 (q->found says whether it exists),
 * or -1 with err on one line (the API did not answer, refused the
 * credentials, or answered something else than a queue). */
int mgmt_queue_get(mgmt *m, const char *name, mgmt_queue *q, char *err, size_t errlen);

#endif
