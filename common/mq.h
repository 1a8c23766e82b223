/*
 * mq: one AMQP 0-9-1 connection with one open channel (number MQ_CHANNEL),
 * on rabbitmq-c. Hides socket set-up, login and reply decoding; callers use
 * mq_amqp() for the protocol calls themselves.
 */
#ifndef SLUICE_MQ_H
#define SLUICE_MQ_H

#include "amqp_api.h"
#include <stddef.h>

#include "util.h"

#define MQ_CHANNEL 1

typedef struct mq_conn mq_conn;

/*
 * How to make TLS connections (amqps:// URLs). Paths of PEM files; NULL or
 * "" means not set. The field names match the settings rows of
 * SETTING_AMQP_TLS (settings.h), so a binary's settings struct can hold one.
 */
typedef struct mq_tls {
    char *ca_file;       /* CA(s) that sign the broker's certificate; unset: the system's store */
    char *cert_file;     /* client certificate, for brokers that ask for one */
    char *key_file;      /* private key of cert_file */
    int verify_peer;     /* check the broker's certificate chain */
    int verify_hostname; /* and that it names the host of the URL */
} mq_tls;

/*
 * Checks one set of TLS settings named <prefix>_ca_file, <prefix>_cert_file
 * and so on (prefix "amqp" for the broker, "mgmt" for its management API):
 * a client certificate comes with its key and the other way round, and
 * every file named can be read. Returns 0, or -1 with err on one line
 * naming the setting ("amqp_ca_file: cannot read /x: No such file ...").
 */
int mq_tls_check(const mq_tls *tls, const char *prefix, char *err, size_t errlen);

/*
 * Sets how every later mq_connect() makes amqps:// connections (one set per
 * process: a binary has one broker identity; call it before connecting,
 * from one thread). The settings are copied.
 * Plain amqp:// URLs ignore them. Returns 0, or -1 with err naming the
 * setting if a client certificate comes without its key (or the other way
 * round) or a file cannot be read.
 */
int mq_set_tls(const mq_tls *tls, char *err, size_t errlen);

/*
 * Connects to `url` (amqp://user:pass@host:port/vhost, or amqps:// for TLS
 * with the settings of mq_set_tls(): by default the broker's certificate
 * must chain to the system's CAs and name the URL's host), logs in with the
 * given heartbeat (seconds, 0 = off) and opens channel MQ_CHANNEL. Gives up
 * after timeout_ms for the TCP connect. Returns NULL with err filled (the
 * URL in it has its password removed). Free with mq_close().
 */
mq_conn *mq_connect(const char *url, int heartbeat_s, long timeout_ms, char *err, size_t errlen);

/*
 * Tries each URL of `urls` once, starting at index *next, and leaves *next
 * at the URL after the one that answered, so a caller that reconnects moves
 * round a cluster's nodes. Returns NULL with the last error if none answered.
 */
mq_conn *mq_connect_any(const strlist *urls, size_t *next, int heartbeat_s, long timeout_ms,
                        char *err, size_t errlen);

/* The rabbitmq-c connection, owned by `c`. */
amqp_connection_state_t mq_amqp(mq_conn *c);

/* The URL this connection was made to, without its password; owned by c. */
const char *mq_url(const mq_conn *c);

/*
 * Checks an RPC reply. Returns 0 if it is normal; otherwise fills err with
 * "<what>: <reason>" (the server's code and text for a channel or
 * connection close, the library's message otherwise), marks the connection
 * broken (mq_close then skips the polite close) and returns -1.
 */
int mq_check(mq_conn *c, amqp_rpc_reply_t reply, const char *what, char *err, size_t errlen);

/* Fills err for a failed rabbitmq-c status code; marks broken; returns -1. */
int mq_fail(mq_conn *c, int status, const char *what, char *err, size_t errlen);

/*
 * Sets missing[i] to 1 for each queue of `queues` that does not exist, 0
 * for each that does (passive declares on channels of their own, numbered
 * from MQ_CHANNEL + 1 and closed again; call it before anything else uses
 * those numbers). Returns 0, or -1 with err if the connection failed.
 */
int mq_queues_missing(mq_conn *c, const strlist *queues, int *missing, char *err, size_t errlen);

/*
 * After amqp_consume_message() answered AMQP_STATUS_UNEXPECTED_STATE (a
 * frame other than a delivery arrived), reads that frame. Returns 0 if it
 * is harmless (say a stray ack), or -1 with err saying what the broker did
 * (closed the channel or connection, with its code and text, or cancelled
 * the consumer because its queue was deleted); the connection is then
 * marked broken.
 */
int mq_read_unexpected(mq_conn *c, char *err, size_t errlen);

/* Handles a frame read by the caller the way mq_read_unexpected() does. */
int mq_unexpected_frame(mq_conn *c, const amqp_frame_t *frame, char *err, size_t errlen);

/* A second connection to the node `c` is connected to, with the same URL
 * and login (heartbeat off): for a short look at the broker that must not
 * disturb `c`'s channel, such as whether a queue exists again. Free with
 * mq_close(). NULL with err if it cannot connect. */
mq_conn *mq_connect_again(const mq_conn *c, long timeout_ms, char *err, size_t errlen);

/* Records that the channel or connection can no longer be used. */
void mq_mark_broken(mq_conn *c);

/* Closes the channel and connection (politely unless broken) and frees all.
 * What the broker still sends on the channel meanwhile (a consumer's
 * deliveries in flight, up to its prefetch) is read and dropped a frame at
 * a time, never held: the broker requeues every unacknowledged delivery,
 * and closing costs one frame of memory however large the prefetch.
 * Accepts NULL. */
void mq_close(mq_conn *c);

/* Copies url to out with any password replaced by nothing ("amqp://u@h/"). */
void mq_redact_url(const char *url, char *out, size_t outlen);

#endif
