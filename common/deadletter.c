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
    mq_conn *conn; /* in confirm mode; NULL until needed or after a failure */
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

static int wait_confirm(deadletter *dl, char *err, size_t errlen)
{
    for (;;) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame(mq_amqp(dl->conn), &frame);
        if (rc != AMQP_STATUS_OK)
            return mq_fail(dl->conn, rc, "waiting for the dead-letter confirm", err, errlen);
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD)
            return 0;
        snprintf(err, errlen, "broker refused the dead letter (method 0x%08x)",
                 frame.payload.method.id);
        mq_mark_broken(dl->conn);
        return -1;
    }
}

int deadletter_publish(deadletter *dl, const dead_letter *m, char *err, size_t errlen)
{
    amqp_table_entry_t headers[3];
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

    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(m->message_id);
    props.headers.num_entries = n;
    props.headers.entries = headers;

    int rc = ensure_connected(dl, err, errlen);
    if (rc == 0) {
        int status = amqp_basic_publish(mq_amqp(dl->conn), MQ_CHANNEL,
                                        amqp_cstring_bytes(SLUICE_EXCHANGE_DLX),
                                        amqp_cstring_bytes(m->routing_key), 0, 0, &props,
                                        (amqp_bytes_t){m->len, (void *)m->body});
        rc = status == AMQP_STATUS_OK
                 ? wait_confirm(dl, err, errlen)
                 : mq_fail(dl->conn, status, "publishing to " SLUICE_EXCHANGE_DLX, err, errlen);
    }
    if (rc != 0) {
        mq_close(dl->conn);
        dl->conn = NULL;
    }
    return rc;
}
