/*
 * dead: see dead.h.
 */
#include "dead.h"

#include <stdio.h>
#include <stdlib.h>

#include "event.h"
#include "mq.h"

struct dead_letters {
    const strlist *urls;
    size_t next_url;
    int heartbeat_s;
    mq_conn *conn; /* in confirm mode; NULL until needed or after a failure */
};

dead_letters *dead_letters_new(const strlist *urls, int heartbeat_s)
{
    dead_letters *d = calloc(1, sizeof *d);
    if (d) {
        d->urls = urls;
        d->heartbeat_s = heartbeat_s;
    }
    return d;
}

void dead_letters_free(dead_letters *d)
{
    if (!d)
        return;
    mq_close(d->conn);
    free(d);
}

static int confirmed(dead_letters *d, char *err, size_t errlen)
{
    for (;;) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame(mq_amqp(d->conn), &frame);
        if (rc != AMQP_STATUS_OK)
            return mq_fail(d->conn, rc, "waiting for the dead-letter confirm", err, errlen);
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD)
            return 0;
        snprintf(err, errlen, "broker refused the dead letter (method 0x%08x)",
                 frame.payload.method.id);
        mq_mark_broken(d->conn);
        return -1;
    }
}

int dead_letters_publish(dead_letters *d, const char *rk, const char *alert_id, const void *body,
                         size_t len, const char *reason, char *err, size_t errlen)
{
    int rc = 0;
    if (!d->conn) {
        d->conn = mq_connect_any(d->urls, &d->next_url, d->heartbeat_s, 5000, err, errlen);
        rc = d->conn ? 0 : -1;
        if (rc == 0) {
            amqp_confirm_select(mq_amqp(d->conn), MQ_CHANNEL);
            rc = mq_check(d->conn, amqp_get_rpc_reply(mq_amqp(d->conn)), "confirm.select", err,
                          errlen);
        }
    }
    if (rc == 0) {
        amqp_table_entry_t headers[1];
        headers[0].key = amqp_cstring_bytes("x-sluice-reason");
        headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[0].value.value.bytes = amqp_cstring_bytes(reason);
        amqp_basic_properties_t props;
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
        props.message_id = amqp_cstring_bytes(alert_id);
        props.headers.num_entries = 1;
        props.headers.entries = headers;
        int status = amqp_basic_publish(
            mq_amqp(d->conn), MQ_CHANNEL, amqp_cstring_bytes(SLUICE_EXCHANGE_DLX),
            amqp_cstring_bytes(rk), 0, 0, &props, (amqp_bytes_t){len, (void *)body});
        rc = status == AMQP_STATUS_OK
                 ? confirmed(d, err, errlen)
                 : mq_fail(d->conn, status, "publishing to " SLUICE_EXCHANGE_DLX, err, errlen);
    }
    if (rc != 0) {
        mq_close(d->conn);
        d->conn = NULL;
    }
    return rc;
}
