/*
 * publisher: publishes messages with publisher confirms and a window of
 * outstanding (unconfirmed) messages, so one connection keeps many messages
 * in flight instead of waiting one round trip each.
 *
 * Every message is copied into the window when it is taken and stays there
 * until the broker confirms it. If the connection fails, the caller connects
 * again and calls publisher_attach(), which republishes every unconfirmed
 * message with its original message_id: nothing taken is ever dropped, and
 * the warehouse absorbs the copies the broker had already received.
 *
 * Confirmed positions: each message may carry an owner and a position (say
 * a source and the offset after the event). Once a message and every
 * message taken before it are confirmed, the confirm handler receives its
 * owner and position, in publishing order. So for any one owner the
 * positions arrive in the order they were taken, and a position handed
 * over means everything that owner published up to it is safe at the
 * broker: what a checkpoint may record.
 *
 * A message the broker returns as unroutable (published with the mandatory
 * flag, it found no queue, not even through sluice.ingest's alternate
 * exchange) is counted and logged. With publisher_hold_returned() it is
 * not confirmed: it stays in the window, holding back every position after
 * it, and is published again with backoff (1 s doubling to 30 s) until a
 * queue takes it. Without, its ack confirms it (for messages also kept
 * elsewhere, as alerts are in the warehouse).
 */
#ifndef SLUICE_PUBLISHER_H
#define SLUICE_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "mq.h"

/* One message per the contract; all pointers are borrowed for the call. */
typedef struct pub_message {
    const char *routing_key; /* "src.<source>" */
    const char *message_id;
    const char *source; /* header x-source */
    const void *body;   /* one JSON object */
    size_t body_len;
    int64_t produced_at_us; /* header x-produced-at-us; also sets `timestamp` */
    void *owner;            /* opaque; handed back to the confirm handler */
    uint64_t position;      /* opaque; handed back to the confirm handler */
} pub_message;

/* Called from within publisher_poll/publish/drain for each confirmed
 * message, in publishing order (see the top of this file). */
typedef void (*publisher_confirm_fn)(void *arg, void *owner, uint64_t position);

typedef struct publisher_stats {
    uint64_t taken;       /* accepted by publisher_publish */
    uint64_t confirmed;   /* acked by the broker */
    uint64_t returned;    /* unroutable (basic.return); see publisher_hold_returned() */
    uint64_t republished; /* sent again after a reconnect */
    uint64_t nacked;      /* refused by the broker; republished after reconnect */
} publisher_stats;

typedef struct publisher publisher;

/* Creates a publisher to `exchange` holding at most `window` unconfirmed
 * messages. app_id is set on every message. Free with publisher_free(). */
publisher *publisher_new(const char *exchange, const char *app_id, size_t window);
void publisher_free(publisher *p);

/* Returned messages are never confirmed: held and published again (see
 * the top of this file). The producer's choice: its events exist nowhere
 * else. */
void publisher_hold_returned(publisher *p);

/* Bounds the window in bytes too: at most `bytes` of bodies unconfirmed
 * (0: no byte bound, the default). A message bigger than the bound still
 * goes, alone. Trimmed slots drop buffers over 64 KiB, so the window's
 * memory follows what it holds. */
void publisher_set_window_bytes(publisher *p, size_t bytes);

/* 1 if a body of body_len bytes would be taken now without waiting, else 0
 * (the window is full in messages or in bytes). */
int publisher_has_room(const publisher *p, size_t body_len);

/* Sets the handler told about confirmed messages (NULL: none). */
void publisher_on_confirm(publisher *p, publisher_confirm_fn fn, void *arg);

/*
 * Uses `conn` from now on (the caller keeps ownership and must call
 * publisher_detach() before closing it): puts the channel in confirm mode
 * and republishes every message not yet handed to the confirm handler
 * (including one confirmed out of order behind an unconfirmed one: its
 * copy is absorbed downstream, and the handler still sees positions in
 * order). Returns 0, or -1 with err.
 */
int publisher_attach(publisher *p, mq_conn *conn, char *err, size_t errlen);

/* Forgets the connection (after a failure or before closing it). Accepts
 * NULL. */
void publisher_detach(publisher *p);

/*
 * Takes one message: waits while the window is full, copies the message in
 * and sends it. Returns 0 once taken (it will be confirmed, or republished
 * after the next attach). Returns -1, not having taken it, if the connection
 * failed (err says why) or shutdown was requested while waiting for room:
 * the caller reconnects or stops, and offers the same message again.
 */
int publisher_publish(publisher *p, const pub_message *m, char *err, size_t errlen);

/*
 * Processes confirms and returns for up to timeout_ms (0 = only what has
 * already arrived). Returns 0, or -1 if the connection failed.
 */
int publisher_poll(publisher *p, long timeout_ms, char *err, size_t errlen);

/*
 * Waits until every taken message is confirmed, at most timeout_ms.
 * Returns 0 when none is outstanding, 1 on timeout, -1 if the connection
 * failed.
 */
int publisher_drain(publisher *p, long timeout_ms, char *err, size_t errlen);

size_t publisher_outstanding(const publisher *p);
const publisher_stats *publisher_get_stats(const publisher *p);

#endif
