/*
 * deadletter: see deadletter.h.
 */
#include "deadletter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "mq.h"

struct deadletter {
    const strlist *urls;
    size_t next_url;
    int heartbeat_s;
    mq_conn *conn;     /* in confirm mode; NULL until needed or after a failure */
    unsigned failures; /* publishes failed in a row */
};

deadletter *deadletter_new(const strlist *urls, int heartbeat_s)
{
    deadletter *dl = calloc(1, sizeof *dl);
    if (dl) {
        dl->urls = urls;
        dl->heartbeat_s = heartbeat_s;
    }
    return dl;
}

void deadletter_free(deadletter *dl)
{
    if (!dl)
        return;
    mq_close(dl->conn);
    free(dl);
}

static int ensure_connected(deadletter *dl, char *err, size_t errlen)
{
    if (dl->conn)
        return 0;
    dl->conn = mq_connect_any(dl->urls, &dl->next_url, dl->heartbeat_s, 5000, err, errlen);
    if (!dl->conn)
        return -1;
    amqp_confirm_select(mq_amqp(dl->conn), MQ_CHANNEL);
    return mq_check(dl->conn, amqp_get_rpc_reply(mq_amqp(dl->conn)), "dead-letter confirm.select",
                    err, errlen);
}

/* Reads frames until the confirm of the one message in flight. Published
 * with the mandatory flag, a message no queue took comes back first as
 * basic.return followed by its content header and body frames (read and
 * dropped here), and the broker still acks it after that. Returns 0 if
 * confirmed, 1 if returned (err says so; the connection stays usable), -1
 * with err if refused or the connection failed (marked broken). */
static int wait_confirm(deadletter *dl, char *err, size_t errlen)
{
    amqp_connection_state_t st = mq_amqp(dl->conn);
    int returned = 0;
    for (;;) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame(st, &frame);
        if (rc != AMQP_STATUS_OK)
            return mq_fail(dl->conn, rc, "waiting for the dead-letter confirm", err, errlen);
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD:
            return returned;
        case AMQP_BASIC_RETURN_METHOD: {
            /* Formatted first: ret points into frames the next reads may reuse. */
            const amqp_basic_return_t *ret = frame.payload.method.decoded;
            snprintf(err, errlen,
                     SLUICE_EXCHANGE_DLX
                     " routed the dead letter nowhere (%u %.*s): is " SLUICE_QUEUE_DEAD
                     " bound? run sluice-setup",
                     ret->reply_code, (int)ret->reply_text.len,
                     (const char *)ret->reply_text.bytes);
            amqp_message_t msg;
            char why[512];
            if (mq_check(dl->conn, amqp_read_message(st, MQ_CHANNEL, &msg, 0),
                         "reading a returned dead letter", why, sizeof why) != 0) {
                snprintf(err, errlen, "%s", why);
                return -1;
            }
            amqp_destroy_message(&msg);
            returned = 1;
            continue;
        }
        case AMQP_BASIC_NACK_METHOD:
            snprintf(err, errlen, "broker refused the dead letter (basic.nack)");
            mq_mark_broken(dl->conn);
            return -1;
        default:
            /* A close says why; anything else is not ours and is ignored. */
            if (mq_unexpected_frame(dl->conn, &frame, err, errlen) != 0)
                return -1;
        }
    }
}

int deadletter_publish(deadletter *dl, const dead_letter *m, char *err, size_t errlen)
{
    amqp_table_entry_t headers[4];
    int n = 0;
    headers[n].key = amqp_cstring_bytes(SLUICE_HEADER_REASON);
    headers[n].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[n++].value.value.bytes = amqp_cstring_bytes(m->reason);
    if (m->source) {
        headers[n].key = amqp_cstring_bytes(SLUICE_HEADER_SOURCE);
        headers[n].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[n++].value.value.bytes = amqp_cstring_bytes(m->source);
    }
    if (m->attempts) {
        headers[n].key = amqp_cstring_bytes(SLUICE_HEADER_ATTEMPTS);
        headers[n].value.kind = AMQP_FIELD_KIND_I32;
        headers[n++].value.value.i32 = (int32_t)m->attempts;
    }
    if (m->produced_at_us > 0) {
        headers[n].key = amqp_cstring_bytes(SLUICE_HEADER_PRODUCED_AT);
        headers[n].value.kind = AMQP_FIELD_KIND_I64;
        headers[n++].value.value.i64 = m->produced_at_us;
    }

    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(m->message_id);
    props.headers.num_entries = n;
    props.headers.entries = headers;
    if (m->produced_at_us > 0) {
        props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        props.timestamp = (uint64_t)(m->produced_at_us / 1000000);
    }

    int rc = ensure_connected(dl, err, errlen);
    if (rc == 0) {
        int status = amqp_basic_publish(mq_amqp(dl->conn), MQ_CHANNEL,
                                        amqp_cstring_bytes(SLUICE_EXCHANGE_DLX),
                                        amqp_cstring_bytes(m->routing_key), /* mandatory */ 1, 0,
                                        &props, (amqp_bytes_t){m->len, (void *)m->body});
        rc = status == AMQP_STATUS_OK
                 ? wait_confirm(dl, err, errlen)
                 : mq_fail(dl->conn, status, "publishing to " SLUICE_EXCHANGE_DLX, err, errlen);
    }
    if (rc < 0) {
        mq_close(dl->conn);
        dl->conn = NULL;
    } else {
        amqp_maybe_release_buffers(mq_amqp(dl->conn));
    }
    dl->failures = rc == 0 ? 0 : dl->failures + 1;
    return rc == 0 ? 0 : -1;
}

unsigned deadletter_failures(const deadletter *dl)
{
    return dl->failures;
}
