/*
 * publisher: see publisher.h.
 *
 * The window is a ring of slots in publishing order. On a channel, delivery
 * tags count up from 1 in the same order, so the slot for tag t sits at
 * ring position t - (tag of the head slot). Confirmed slots are trimmed from
 * the head; a slot confirmed out of order waits there until the head
 * reaches it.
 *
 * A message the broker returns (basic.return: no queue was bound for it,
 * and sluice.ingest's alternate exchange did not take it either) is
 * flagged when its return arrives, which RabbitMQ sends before the
 * message's ack. Its ack then confirms nothing: it is not counted, and it
 * stays in the window, so no confirmed position passes it and no
 * checkpoint moves past it. Once it reaches the head, the whole window is
 * sent again after a backoff (tags stay in ring order that way), until a
 * queue takes it or the caller gives up at shutdown.
 */
#include "publisher.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "event.h"
#include "log.h"
#include "util.h"

/* A slot's buffer up to this size is kept for the next message. */
#define SLOT_KEEP_BYTES 65536

typedef struct slot {
    uint64_t tag; /* delivery tag on the current channel */
    int confirmed;
    int counted;  /* already in stats.confirmed (confirmed once before a reconnect) */
    int returned; /* the broker returned it on this channel: its ack confirms nothing */
    void *owner;
    uint64_t position;
    char *buf; /* routing key, NUL, message id, NUL, source, NUL, body */
    size_t cap;
    size_t rk_len, id_len, src_len, body_len;
    int64_t produced_at_us;
} slot;

struct publisher {
    char why_broken[256]; /* what broke the connection, for the next caller */
    char *exchange;
    char *app_id;
    mq_conn *conn;
    int broken;
    slot *slots;
    size_t window, head, count;
    size_t window_bytes, bytes; /* bound and sum of the outstanding bodies */
    uint64_t next_tag;
    publisher_stats stats;
    publisher_confirm_fn on_confirm;
    void *on_confirm_arg;
    int hold_returned;        /* publisher_hold_returned() */
    int64_t resend_at_us;     /* when a returned head is sent again; 0 = not scheduled */
    unsigned resend_attempts; /* since a returned message last found a queue */
};

void publisher_on_confirm(publisher *p, publisher_confirm_fn fn, void *arg)
{
    p->on_confirm = fn;
    p->on_confirm_arg = arg;
}

publisher *publisher_new(const char *exchange, const char *app_id, size_t window)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->exchange = strdup(exchange);
    p->app_id = strdup(app_id);
    p->window = window ? window : 1;
    p->window_bytes = SIZE_MAX;
    p->slots = calloc(p->window, sizeof *p->slots);
    p->broken = 1; /* until attached */
    if (!p->exchange || !p->app_id || !p->slots) {
        publisher_free(p);
        return NULL;
    }
    return p;
}

void publisher_free(publisher *p)
{
    if (!p)
        return;
    if (p->slots) {
        for (size_t i = 0; i < p->window; i++)
            free(p->slots[i].buf);
    }
    free(p->slots);
    free(p->exchange);
    free(p->app_id);
    free(p);
}

static slot *slot_at(publisher *p, size_t pos)
{
    return &p->slots[(p->head + pos) % p->window];
}

void publisher_hold_returned(publisher *p)
{
    p->hold_returned = 1;
}

/* A returned message this publisher does not count as confirmed. */
static int held(const publisher *p, const slot *s)
{
    return s->returned && p->hold_returned;
}

void publisher_set_window_bytes(publisher *p, size_t bytes)
{
    p->window_bytes = bytes ? bytes : SIZE_MAX;
}

int publisher_has_room(const publisher *p, size_t body_len)
{
    if (p->count == p->window)
        return 0;
    return p->count == 0 || p->bytes + body_len <= p->window_bytes;
}

size_t publisher_outstanding(const publisher *p)
{
    return p->count;
}

const publisher_stats *publisher_get_stats(const publisher *p)
{
    return &p->stats;
}

/* The connection cannot be used any more: mq_close must then skip the
 * polite close, which would wait for a channel.close-ok that a broker that
 * closed the connection (or a dead socket) never sends, holding up the
 * move to another node until the heartbeat gives up. */
static void mark_broken(publisher *p)
{
    p->broken = 1;
    if (p->conn)
        mq_mark_broken(p->conn);
}

static int fail(publisher *p, char *err, size_t errlen, const char *what, int status)
{
    mark_broken(p);
    snprintf(err, errlen, "%s: %s", what, amqp_error_string2(status));
    snprintf(p->why_broken, sizeof p->why_broken, "%s", err);
    return -1;
}

/* The error for a call that finds the connection already unusable. */
static int not_connected(const publisher *p, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", p->why_broken[0] ? p->why_broken : "not connected");
    return -1;
}

static int send_slot(publisher *p, slot *s, char *err, size_t errlen)
{
    const char *rk = s->buf;
    const char *id = rk + s->rk_len + 1;
    const char *src = id + s->id_len + 1;
    const char *body = src + s->src_len + 1;

    amqp_table_entry_t headers[2];
    headers[0].key = amqp_cstring_bytes(SLUICE_HEADER_SOURCE);
    headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[0].value.value.bytes = (amqp_bytes_t){s->src_len, (void *)src};
    headers[1].key = amqp_cstring_bytes(SLUICE_HEADER_PRODUCED_AT);
    headers[1].value.kind = AMQP_FIELD_KIND_I64;
    headers[1].value.value.i64 = s->produced_at_us;

    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG |
                   AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = (amqp_bytes_t){s->id_len, (void *)id};
    props.timestamp = (uint64_t)(s->produced_at_us / 1000000);
    props.app_id = amqp_cstring_bytes(p->app_id);
    props.headers.num_entries = 2;
    props.headers.entries = headers;

    s->tag = p->next_tag++;
    s->confirmed = 0;
    s->returned = 0;
    int rc = amqp_basic_publish(mq_amqp(p->conn), MQ_CHANNEL, amqp_cstring_bytes(p->exchange),
                                (amqp_bytes_t){s->rk_len, (void *)rk}, 1, 0, &props,
                                (amqp_bytes_t){s->body_len, (void *)body});
    if (rc != AMQP_STATUS_OK)
        return fail(p, err, errlen, "publish", rc);
    return 0;
}

static void trim_confirmed(publisher *p)
{
    while (p->count > 0 && slot_at(p, 0)->confirmed && !held(p, slot_at(p, 0))) {
        slot *s = slot_at(p, 0);
        p->resend_attempts = 0;
        if (p->on_confirm)
            p->on_confirm(p->on_confirm_arg, s->owner, s->position);
        p->bytes -= s->body_len;
        /* Slots keep their buffer for the next message, but not a big one:
         * a window that once held large events must not keep all of them. */
        if (s->cap > SLOT_KEEP_BYTES) {
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
        p->head = (p->head + 1) % p->window;
        p->count--;
    }
}

static void on_ack(publisher *p, uint64_t tag, int multiple)
{
    if (p->count == 0)
        return;
    uint64_t first = slot_at(p, 0)->tag;
    if (tag < first)
        return; /* already trimmed: a duplicate or late confirm */
    size_t pos = (size_t)(tag - first);
    if (pos >= p->count)
        pos = p->count - 1; /* never expected; do not run past the ring */
    for (size_t i = multiple ? 0 : pos; i <= pos; i++) {
        slot *s = slot_at(p, i);
        if (!s->confirmed) {
            s->confirmed = 1;
            if (!s->counted && !held(p, s)) {
                p->stats.confirmed++;
                s->counted = 1;
            }
        }
    }
    trim_confirmed(p);
}

/* The outstanding message a basic.return is about: the first one with its
 * message id and routing key not yet acked or returned (returns and acks
 * come in publishing order). NULL if none. */
static slot *returned_slot(publisher *p, const amqp_basic_return_t *ret,
                           const amqp_basic_properties_t *props)
{
    if (!(props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG))
        return NULL;
    for (size_t i = 0; i < p->count; i++) {
        slot *s = slot_at(p, i);
        const char *id = s->buf + s->rk_len + 1;
        if (!s->confirmed && !s->returned && s->id_len == props->message_id.len &&
            memcmp(id, props->message_id.bytes, s->id_len) == 0 &&
            s->rk_len == ret->routing_key.len &&
            memcmp(s->buf, ret->routing_key.bytes, s->rk_len) == 0)
            return s;
    }
    return NULL;
}

static int on_return(publisher *p, amqp_basic_return_t *ret, char *err, size_t errlen)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(mq_amqp(p->conn), MQ_CHANNEL, &msg, 0);
    if (mq_check(p->conn, r, "reading a returned message", err, errlen) != 0) {
        p->broken = 1;
        return -1;
    }
    p->stats.returned++;
    slot *s = returned_slot(p, ret, &msg.properties);
    if (s)
        s->returned = 1;
    const amqp_bytes_t *id = &msg.properties.message_id;
    int has_id = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
    /* A source without a queue returns every message: log the first ten,
     * then at powers of two, with the running total. */
    uint64_t n = p->stats.returned;
    if (n <= 10 || (n & (n - 1)) == 0)
        log_warn("message returned, %s exchange=%.*s routing_key=%.*s "
                 "message_id=%.*s reason=\"%u %.*s\" returned_total=%llu",
                 p->hold_returned ? "held to be published again" : "no queue took it",
                 (int)ret->exchange.len, (const char *)ret->exchange.bytes,
                 (int)ret->routing_key.len, (const char *)ret->routing_key.bytes,
                 has_id ? (int)id->len : 1, has_id ? (const char *)id->bytes : "-", ret->reply_code,
                 (int)ret->reply_text.len, (const char *)ret->reply_text.bytes,
                 (unsigned long long)p->stats.returned);
    amqp_destroy_message(&msg);
    return 0;
}

/* Sends every outstanding message again, in order, on the same channel:
 * new tags in ring order, so acks for the old ones (all lower) are
 * ignored. Returns 0 or -1 if the connection failed. */
static int resend_window(publisher *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->count; i++) {
        if (send_slot(p, slot_at(p, i), err, errlen) != 0)
            return -1;
        p->stats.republished++;
    }
    return 0;
}

/* While the head is a returned message, schedules (with backoff) and makes
 * the next attempt to publish it. Returns 0 or -1 if the connection failed. */
static int retry_returned(publisher *p, char *err, size_t errlen)
{
    if (p->count == 0 || !held(p, slot_at(p, 0)) || !slot_at(p, 0)->confirmed) {
        p->resend_at_us = 0;
        return 0;
    }
    int64_t now = mono_us();
    if (p->resend_at_us == 0) {
        long delay = backoff_ms(p->resend_attempts++, 1000, 30000);
        p->resend_at_us = now + (int64_t)delay * 1000;
        slot *s = slot_at(p, 0);
        log_warn("no queue took routing_key=%.*s (and no alternate exchange); holding %zu "
                 "unconfirmed messages, publishing them again in %ld ms",
                 (int)s->rk_len, s->buf, p->count, delay);
        return 0;
    }
    if (now < p->resend_at_us)
        return 0;
    p->resend_at_us = 0;
    return resend_window(p, err, errlen);
}

static int handle_frame(publisher *p, amqp_frame_t *f, char *err, size_t errlen)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *ack = f->payload.method.decoded;
        on_ack(p, ack->delivery_tag, ack->multiple);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        /* The broker could not take responsibility for the message. Start
         * over on a new channel: attach republishes everything unconfirmed. */
        amqp_basic_nack_t *nack = f->payload.method.decoded;
        p->stats.nacked++;
        snprintf(err, errlen, "broker refused message (nack) delivery_tag=%llu",
                 (unsigned long long)nack->delivery_tag);
        p->broken = 1;
        return -1;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return on_return(p, f->payload.method.decoded, err, errlen);
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = f->payload.method.decoded;
        snprintf(err, errlen, "server closed the channel: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        mark_broken(p);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = f->payload.method.decoded;
        snprintf(err, errlen, "server closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        mark_broken(p);
        return -1;
    }
    default:
        return 0;
    }
}

int publisher_poll(publisher *p, long timeout_ms, char *err, size_t errlen)
{
    if (p->broken || !p->conn)
        return not_connected(p, err, errlen);
    amqp_connection_state_t st = mq_amqp(p->conn);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    for (;;) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame_noblock(st, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK)
            return fail(p, err, errlen, "waiting for confirms", rc);
        if (handle_frame(p, &frame, err, errlen) != 0) {
            snprintf(p->why_broken, sizeof p->why_broken, "%s", err);
            return -1;
        }
        /* Whatever else has already arrived is taken without waiting. */
        tv.tv_sec = 0;
        tv.tv_usec = 0;
    }
    if (retry_returned(p, err, errlen) != 0)
        return -1;
    if (!amqp_frames_enqueued(st) && !amqp_data_in_buffer(st))
        amqp_maybe_release_buffers(st);
    return 0;
}

int publisher_attach(publisher *p, mq_conn *conn, char *err, size_t errlen)
{
    p->conn = conn;
    p->broken = 0;
    p->why_broken[0] = '\0';
    amqp_confirm_select(mq_amqp(conn), MQ_CHANNEL);
    if (mq_check(conn, amqp_get_rpc_reply(mq_amqp(conn)), "confirm.select", err, errlen) != 0) {
        p->broken = 1;
        return -1;
    }
    p->next_tag = 1;

    /* A slot confirmed out of order (behind an unconfirmed one) is sent
     * again too: the confirm handler must see positions in publishing
     * order, and the copy is a duplicate the warehouse absorbs. */
    p->resend_at_us = 0;
    return resend_window(p, err, errlen);
}

void publisher_detach(publisher *p)
{
    if (!p)
        return;
    p->conn = NULL;
    p->broken = 1;
}

int publisher_publish(publisher *p, const pub_message *m, char *err, size_t errlen)
{
    while (!publisher_has_room(p, m->body_len)) {
        if (shutdown_requested) {
            snprintf(err, errlen, "shutdown requested while the window was full");
            return -1;
        }
        if (publisher_poll(p, 200, err, errlen) != 0)
            return -1;
    }
    if (p->broken || !p->conn)
        return not_connected(p, err, errlen);

    slot *s = slot_at(p, p->count);
    size_t rk_len = strlen(m->routing_key), id_len = strlen(m->message_id);
    size_t src_len = strlen(m->source);
    size_t need = rk_len + id_len + src_len + m->body_len + 3;
    if (need > s->cap) {
        char *grown = realloc(s->buf, need);
        if (!grown) {
            snprintf(err, errlen, "out of memory for a %zu-byte message", need);
            return -1;
        }
        s->buf = grown;
        s->cap = need;
    }
    char *w = s->buf;
    memcpy(w, m->routing_key, rk_len + 1);
    w += rk_len + 1;
    memcpy(w, m->message_id, id_len + 1);
    w += id_len + 1;
    memcpy(w, m->source, src_len + 1);
    w += src_len + 1;
    memcpy(w, m->body, m->body_len);
    s->rk_len = rk_len;
    s->id_len = id_len;
    s->src_len = src_len;
    s->body_len = m->body_len;
    s->produced_at_us = m->produced_at_us;
    s->owner = m->owner;
    s->position = m->position;
    s->counted = 0;
    p->count++;
    p->bytes += m->body_len;
    p->stats.taken++;

    /* Once in the window the message is ours: a failed send only means the
     * next attach republishes it, so the call still reports it taken. */
    char why[256];
    if (send_slot(p, s, why, sizeof why) != 0)
        log_debug("send failed, message kept for republishing: %s", why);
    return 0;
}

int publisher_drain(publisher *p, long timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;
    while (p->count > 0) {
        int64_t left_ms = (deadline - mono_us()) / 1000;
        if (left_ms <= 0)
            return 1;
        if (publisher_poll(p, left_ms < 200 ? left_ms : 200, err, errlen) != 0)
            return -1;
    }
    return 0;
}
