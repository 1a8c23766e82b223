/*
 * consumer: see consumer.h. All queues share one channel, so delivery tags
 * are one sequence and a single ack with `multiple` covers a whole batch.
 * Each queue has its own consumer tag "<program>:<name>", which is how a
 * delivery (or a broker's basic.cancel) names its queue.
 */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "event.h"

/* rabbitmq-c decodes frames into a per-channel pool whose page is frame_max
 * (128 KiB) bytes; releasing it makes the next delivery zero a fresh page.
 * Released after every delivery, that zeroing was a quarter of a worker's
 * instructions (callgrind) and about 8 % of its CPU time, so it is released
 * every RELEASE_EVERY deliveries: a few hundred bytes of frames each, so
 * the pool still stays within one page. Nothing a caller holds lives in
 * that pool (an envelope owns its copies). */
#define RELEASE_EVERY 256

struct consumer {
    mq_conn *conn;
    const strlist *sources; /* the names of the queues, borrowed */
    char prefix[64];        /* "<program>:", the consumer tags' common part */
    amqp_envelope_t envelope;
    int holding;            /* envelope must be destroyed before the next delivery */
    unsigned since_release; /* deliveries since the frame buffers were released */
};

consumer *consumer_open(mq_conn *conn, const char *program, const strlist *sources, long prefetch,
                        char *err, size_t errlen)
{
    consumer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->conn = conn;
    c->sources = sources;
    snprintf(c->prefix, sizeof c->prefix, "%s:", program);
    amqp_connection_state_t st = mq_amqp(conn);
    /* global=0: in RabbitMQ the limit applies to each consumer (queue). */
    amqp_basic_qos(st, MQ_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (mq_check(conn, amqp_get_rpc_reply(st), "basic.qos", err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < sources->count; i++) {
        char queue[128], tag[128], what[256];
        snprintf(queue, sizeof queue, SLUICE_QUEUE_PREFIX "%s", sources->items[i]);
        snprintf(tag, sizeof tag, "%s%s", c->prefix, sources->items[i]);
        amqp_basic_consume(st, MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(tag), 0, 0,
                           0, amqp_empty_table);
        snprintf(what, sizeof what, "consuming %s (has sluice-setup declared it?)", queue);
        if (mq_check(conn, amqp_get_rpc_reply(st), what, err, errlen) != 0)
            goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

void consumer_free(consumer *c)
{
    if (!c)
        return;
    if (c->holding)
        amqp_destroy_envelope(&c->envelope);
    free(c);
}

/* The index in the source list of the consumer a delivery came to, or -1. */
static int source_of(consumer *c, amqp_bytes_t tag)
{
    size_t plen = strlen(c->prefix);
    if (tag.len < plen || memcmp(tag.bytes, c->prefix, plen) != 0)
        return -1;
    for (size_t i = 0; i < c->sources->count; i++) {
        const char *name = c->sources->items[i];
        if (tag.len == plen + strlen(name) &&
            memcmp((const char *)tag.bytes + plen, name, tag.len - plen) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * A frame other than a delivery arrived. A basic.cancel sent by the broker
 * (the queue was deleted; a quorum queue lost its leader) comes through
 * here and nowhere else: today mq_read_unexpected() reports it as an error
 * and marks the connection broken, so the caller reconnects and consumes
 * every queue anew. Handling a cancel without reconnecting (re-consume the
 * one queue whose tag it names: source_of() maps it) belongs in this
 * function.
 */
static int other_frame(consumer *c, char *err, size_t errlen)
{
    return mq_read_unexpected(c->conn, err, errlen);
}

int consumer_next(consumer *c, incoming *in, long timeout_ms, char *err, size_t errlen)
{
    amqp_connection_state_t st = mq_amqp(c->conn);
    if (c->holding) {
        amqp_destroy_envelope(&c->envelope);
        c->holding = 0;
    }
    if (++c->since_release >= RELEASE_EVERY) {
        amqp_maybe_release_buffers(st);
        c->since_release = 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    amqp_rpc_reply_t r = amqp_consume_message(st, &c->envelope, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
            return other_frame(c, err, errlen);
    }
    if (mq_check(c->conn, r, "consuming", err, errlen) != 0)
        return -1;
    c->holding = 1;

    const amqp_envelope_t *e = &c->envelope;
    const amqp_basic_properties_t *p = &e->message.properties;
    int source = source_of(c, e->consumer_tag);
    if (source < 0) {
        snprintf(err, errlen, "delivery for unknown consumer tag %.*s", (int)e->consumer_tag.len,
                 (const char *)e->consumer_tag.bytes);
        mq_mark_broken(c->conn);
        return -1;
    }
    memset(in, 0, sizeof *in);
    in->delivery_tag = e->delivery_tag;
    in->source = c->sources->items[source];
    in->source_index = source;
    in->routing_key = e->routing_key.bytes;
    in->routing_key_len = e->routing_key.len;
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        in->message_id = p->message_id.bytes;
        in->message_id_len = p->message_id.len;
    }
    in->body = e->message.body.bytes;
    in->body_len = e->message.body.len;
    in->produced_at_us = event_produced_at_us(p);
    in->received_at_us = now_us();
    return 1;
}

/* One place for the four ways to settle, so their errors read alike. */
static int settle(consumer *c, int status, const char *what, char *err, size_t errlen)
{
    if (status != AMQP_STATUS_OK)
        return mq_fail(c->conn, status, what, err, errlen);
    return 0;
}

int consumer_ack(consumer *c, uint64_t tag, char *err, size_t errlen)
{
    return settle(c, amqp_basic_ack(mq_amqp(c->conn), MQ_CHANNEL, tag, 0), "acknowledging", err,
                  errlen);
}

int consumer_ack_through(consumer *c, uint64_t tag, char *err, size_t errlen)
{
    return settle(c, amqp_basic_ack(mq_amqp(c->conn), MQ_CHANNEL, tag, 1), "acknowledging", err,
                  errlen);
}

int consumer_requeue(consumer *c, uint64_t tag, char *err, size_t errlen)
{
    return settle(c, amqp_basic_nack(mq_amqp(c->conn), MQ_CHANNEL, tag, 0, 1), "requeueing", err,
                  errlen);
}

int consumer_reject(consumer *c, uint64_t tag, char *err, size_t errlen)
{
    return settle(c, amqp_basic_reject(mq_amqp(c->conn), MQ_CHANNEL, tag, 0), "rejecting", err,
                  errlen);
}
