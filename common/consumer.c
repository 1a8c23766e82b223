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
#include "log.h"

/* rabbitmq-c decodes frames into a per-channel pool whose page is frame_max
 * (128 KiB) bytes; releasing it makes the next delivery zero a fresh page.
 * Released after every delivery, that zeroing was a quarter of a worker's
 * instructions (callgrind) and about 8 % of its CPU time, so it is released
 * every RELEASE_EVERY deliveries: a few hundred bytes of frames each, so
 * the pool still stays within one page. Large bodies fill the pool by their
 * size, though (a 1 MiB body is eight frames in it), so it is also released
 * once RELEASE_BYTES of bodies went through: memory stays bounded in bytes.
 * Nothing a caller holds lives in that pool (an envelope owns its copies). */
#define RELEASE_EVERY 256
#define RELEASE_BYTES (256 * 1024)

/* While a queue is not consumed (missing, or its consumer cancelled by the
 * broker), it is looked for again after a backoff from RETRY_BASE_MS
 * doubling to RETRY_MAX_MS, on a connection of its own. */
#define RETRY_BASE_MS 1000
#define RETRY_MAX_MS 30000

typedef struct queue_state {
    int active;          /* its consumer is subscribed */
    unsigned attempts;   /* looked for in vain since it stopped */
    int64_t retry_at_us; /* monotonic; when inactive */
} queue_state;

struct consumer {
    mq_conn *conn;
    const strlist *sources; /* the names of the queues, borrowed */
    queue_state *queues;    /* one per name */
    size_t inactive;        /* queues not consumed now */
    unsigned changes;       /* consumer_changes() */
    char prefix[64];        /* "<program>:", the consumer tags' common part */
    amqp_envelope_t envelope;
    int holding;                /* envelope must be destroyed before the next delivery */
    unsigned since_release;     /* deliveries since the frame buffers were released */
    size_t bytes_since_release; /* bodies since then */
};

static void queue_name(const consumer *c, size_t i, char *out, size_t cap)
{
    snprintf(out, cap, SLUICE_QUEUE_PREFIX "%s", c->sources->items[i]);
}

/* Subscribes queue i without waiting for consume-ok (nowait): rabbitmq-c
 * parks the deliveries that arrive during a synchronous call in a frame
 * queue, and while a frame is parked it never releases the channel's frame
 * buffers, which then grow with every body consumed. */
static int subscribe(consumer *c, size_t i, char *err, size_t errlen)
{
    char queue[128], tag[128];
    queue_name(c, i, queue, sizeof queue);
    snprintf(tag, sizeof tag, "%s%s", c->prefix, c->sources->items[i]);
    amqp_basic_consume_t req = {.queue = amqp_cstring_bytes(queue),
                                .consumer_tag = amqp_cstring_bytes(tag),
                                .nowait = 1,
                                .arguments = amqp_empty_table};
    int rc = amqp_send_method(mq_amqp(c->conn), MQ_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &req);
    if (rc != AMQP_STATUS_OK)
        return mq_fail(c->conn, rc, "starting a consumer", err, errlen);
    if (!c->queues[i].active) {
        c->queues[i].active = 1;
        c->inactive--;
        c->changes++;
    }
    return 0;
}

/* Queue i is not consumed from now on; it is looked for again later. */
static void deactivate(consumer *c, size_t i)
{
    queue_state *q = &c->queues[i];
    if (q->active) {
        q->active = 0;
        c->inactive++;
        c->changes++;
    }
    q->attempts = 0;
    q->retry_at_us = mono_us() + backoff_ms(0, RETRY_BASE_MS, RETRY_MAX_MS) * 1000;
}

consumer *consumer_open(mq_conn *conn, const char *program, const strlist *sources, long prefetch,
                        char *err, size_t errlen)
{
    int *missing = NULL;
    consumer *c = calloc(1, sizeof *c);
    if (!c || !(c->queues = calloc(sources->count ? sources->count : 1, sizeof *c->queues)) ||
        !(missing = calloc(sources->count ? sources->count : 1, sizeof *missing))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->conn = conn;
    c->sources = sources;
    c->inactive = sources->count;
    snprintf(c->prefix, sizeof c->prefix, "%s:", program);
    amqp_connection_state_t st = mq_amqp(conn);
    /* global=0: in RabbitMQ the limit applies to each consumer (queue). */
    amqp_basic_qos(st, MQ_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (mq_check(conn, amqp_get_rpc_reply(st), "basic.qos", err, errlen) != 0)
        goto fail;
    /* Looked for while no delivery can arrive yet (see subscribe()); a
     * missing queue does not stop the others from being consumed. */
    strlist queues = {0};
    for (size_t i = 0; i < sources->count; i++) {
        char queue[128];
        queue_name(c, i, queue, sizeof queue);
        if (strlist_push(&queues, queue) != 0) {
            strlist_free(&queues);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    int rc = mq_queues_missing(conn, &queues, missing, err, errlen);
    strlist_free(&queues);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < sources->count; i++) {
        char queue[128];
        queue_name(c, i, queue, sizeof queue);
        if (!missing[i]) {
            if (subscribe(c, i, err, errlen) != 0)
                goto fail;
            continue;
        }
        deactivate(c, i);
        log_warn("queue %s does not exist (has sluice-setup declared it?): not consumed until it "
                 "does, looking again with backoff",
                 queue);
    }
    c->changes = 0;
    free(missing);
    return c;
fail:
    free(missing);
    consumer_free(c);
    return NULL;
}

int consumer_active(const consumer *c, size_t index)
{
    return index < c->sources->count && c->queues[index].active;
}

unsigned consumer_changes(const consumer *c)
{
    return c->changes;
}

/* Looks, on a connection of its own (a passive declare of a missing queue
 * would close this consumer's channel), for the queues whose retry is due,
 * and subscribes those that exist again. Returns 0, or -1 if this
 * consumer's connection failed. */
static int retry_inactive(consumer *c, char *err, size_t errlen)
{
    int64_t now = mono_us();
    strlist due = {0};
    size_t *index = calloc(c->sources->count, sizeof *index);
    int *missing = calloc(c->sources->count, sizeof *missing);
    int rc = 0;
    if (!index || !missing)
        goto done; /* tried again at the next call */
    for (size_t i = 0; i < c->sources->count; i++) {
        char queue[128];
        if (c->queues[i].active || c->queues[i].retry_at_us > now)
            continue;
        queue_name(c, i, queue, sizeof queue);
        if (strlist_push(&due, queue) != 0)
            goto done;
        index[due.count - 1] = i;
    }
    if (due.count == 0)
        goto done;
    char why[512];
    mq_conn *probe = mq_connect_again(c->conn, 2000, why, sizeof why);
    if (!probe || mq_queues_missing(probe, &due, missing, why, sizeof why) != 0) {
        for (size_t k = 0; k < due.count; k++)
            missing[k] = 1; /* the broker cannot say now: look again later */
        log_debug("cannot look for queues now: %s", why);
    }
    mq_close(probe);
    for (size_t k = 0; k < due.count; k++) {
        queue_state *q = &c->queues[index[k]];
        if (missing[k]) {
            long delay = backoff_ms(++q->attempts, RETRY_BASE_MS, RETRY_MAX_MS);
            q->retry_at_us = mono_us() + (int64_t)delay * 1000;
            log_debug("queue %s still missing, looking again in %ld ms", due.items[k], delay);
            continue;
        }
        if ((rc = subscribe(c, index[k], err, errlen)) != 0)
            goto done;
        log_info("consuming again queue=%s after %u look(s)", due.items[k], q->attempts + 1);
    }
done:
    strlist_free(&due);
    free(index);
    free(missing);
    return rc;
}

void consumer_free(consumer *c)
{
    if (!c)
        return;
    if (c->holding)
        amqp_destroy_envelope(&c->envelope);
    free(c->queues);
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
 * A frame other than a delivery arrived. A basic.cancel from the broker
 * (the queue was deleted, its node went away, a quorum queue's consumer
 * timeout fired; sent because mq_connect() announces
 * consumer_cancel_notify) stops only that queue's consumer: it is logged,
 * shown as not consumed (consumer_active) and subscribed again once the
 * queue exists. Deliveries already taken from it are settled as usual.
 * Anything else goes to mq_unexpected_frame().
 */
static int other_frame(consumer *c, char *err, size_t errlen)
{
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame(mq_amqp(c->conn), &frame);
    if (rc != AMQP_STATUS_OK)
        return mq_fail(c->conn, rc, "reading from broker", err, errlen);
    if (frame.frame_type == AMQP_FRAME_METHOD &&
        frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
        amqp_basic_cancel_t *m = frame.payload.method.decoded;
        int i = source_of(c, m->consumer_tag);
        if (i >= 0) {
            char queue[128];
            queue_name(c, (size_t)i, queue, sizeof queue);
            deactivate(c, (size_t)i);
            log_warn("consumer cancelled by the broker queue=%s (deleted, or its node went away): "
                     "not consumed until it exists again, looking again with backoff",
                     queue);
            return 0;
        }
    }
    return mq_unexpected_frame(c->conn, &frame, err, errlen);
}

int consumer_next(consumer *c, incoming *in, long timeout_ms, char *err, size_t errlen)
{
    amqp_connection_state_t st = mq_amqp(c->conn);
    if (c->holding) {
        amqp_destroy_envelope(&c->envelope);
        c->holding = 0;
    }
    if (++c->since_release >= RELEASE_EVERY || c->bytes_since_release >= RELEASE_BYTES) {
        amqp_maybe_release_buffers(st);
        c->since_release = 0;
        c->bytes_since_release = 0;
    }
    if (c->inactive) {
        if (retry_inactive(c, err, errlen) != 0)
            return -1;
        /* Wake up for the next look. */
        int64_t now = mono_us();
        for (size_t i = 0; i < c->sources->count; i++) {
            const queue_state *q = &c->queues[i];
            long wait_ms = q->active ? timeout_ms : (long)((q->retry_at_us - now) / 1000) + 1;
            if (wait_ms < timeout_ms)
                timeout_ms = wait_ms > 0 ? wait_ms : 0;
        }
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
    c->bytes_since_release += e->message.body.len;
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
