/*
 * replay-dead: moves messages of sluice.dead back to their source's queue.
 *
 * One pass over the messages that were in sluice.dead when it started, one
 * message at a time: basic.get (unacknowledged), publish to
 * sluice.q.<source> through the default exchange with publisher confirms
 * and the mandatory flag, wait for the confirm, then basic.ack, so a dead
 * letter leaves sluice.dead only once its copy is safe in the source
 * queue. A message that does not pass the filters (or names no source:
 * an alert the notifier gave up on) is held unacknowledged until the pass
 * ends and then handed back with one nack (requeue): RabbitMQ puts such
 * messages back at their places, so what stays keeps its order, and the
 * pass never sees it twice.
 *
 * Interrupted (SIGINT/SIGTERM: stops after the message in hand; killed:
 * the broker takes back every unacknowledged message), nothing is lost: a
 * message is acked only after its confirm. One may be doubled in transit,
 * published and confirmed but not yet acked when the connection went: it
 * returns to sluice.dead and a later replay publishes it again, with the
 * same message_id, so the warehouse stores it once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "deadmsg.h"
#include "event.h"
#include "log.h"
#include "progress.h"
#include "publisher.h"

#define CONFIRM_TIMEOUT_MS 30000

typedef struct replay {
    const ctl_env *env;
    mq_conn *conn;
    publisher *pub;
    uint64_t replayed, held;
    uint64_t last_held_tag; /* the nack that hands the held ones back names it */
} replay;

/* The message's id, or the one a worker would derive for it. */
static void message_id(const amqp_message_t *msg, const char *source, char *out, size_t cap)
{
    const amqp_basic_properties_t *p = &msg->properties;
    if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len > 0 &&
        p->message_id.len < cap) {
        snprintf(out, cap, "%.*s", (int)p->message_id.len, (const char *)p->message_id.bytes);
        return;
    }
    char derived[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id(source, msg->body.bytes, msg->body.len, derived);
    snprintf(out, cap, "%s", derived);
}

/* Publishes one dead letter to its source queue and waits for the
 * confirm. Returns 0 once the broker holds it, -1 with err otherwise. */
static int republish(replay *r, const amqp_message_t *msg, const dead_info *info, char *err,
                     size_t errlen)
{
    char queue[128], id[512];
    snprintf(queue, sizeof queue, SLUICE_QUEUE_PREFIX "%s", info->source);
    message_id(msg, info->source, id, sizeof id);
    int64_t produced = dead_header_int(&msg->properties, "x-produced-at-us", 0);
    if (!produced && (msg->properties._flags & AMQP_BASIC_TIMESTAMP_FLAG))
        produced = (int64_t)msg->properties.timestamp * 1000000;
    pub_message m = {.routing_key = queue,
                     .message_id = id,
                     .source = info->source,
                     .body = msg->body.bytes,
                     .body_len = msg->body.len,
                     .produced_at_us = produced};
    uint64_t returned = publisher_get_stats(r->pub)->returned;
    if (publisher_publish(r->pub, &m, err, errlen) != 0)
        return -1;
    int drained = publisher_drain(r->pub, CONFIRM_TIMEOUT_MS, err, errlen);
    if (drained == 1)
        snprintf(err, errlen, "no confirm from the broker within %d ms", CONFIRM_TIMEOUT_MS);
    if (drained != 0)
        return -1;
    if (publisher_get_stats(r->pub)->returned != returned) {
        snprintf(err, errlen, "queue %s does not exist (has sluice-setup run with source %s?)",
                 queue, info->source);
        return -1;
    }
    return 0;
}

/* Takes the next message of sluice.dead and replays or holds it. Returns 1
 * after one message, 0 if the queue is empty, -1 on failure. */
static int step(replay *r, char *err, size_t errlen)
{
    const ctl_settings *s = r->env->s;
    amqp_connection_state_t st = mq_amqp(r->conn);
    amqp_basic_get(st, MQ_CHANNEL, amqp_cstring_bytes(SLUICE_QUEUE_DEAD), 0);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(st);
    if (mq_check(r->conn, reply, "basic.get from " SLUICE_QUEUE_DEAD, err, errlen) != 0)
        return -1;
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    amqp_basic_get_ok_t *ok = reply.reply.decoded;
    uint64_t tag = ok->delivery_tag;
    char rk[300];
    snprintf(rk, sizeof rk, "%.*s", (int)ok->routing_key.len, (const char *)ok->routing_key.bytes);

    amqp_message_t msg;
    reply = amqp_read_message(st, MQ_CHANNEL, &msg, 0);
    if (mq_check(r->conn, reply, "reading a dead letter", err, errlen) != 0)
        return -1;
    dead_info info;
    dead_info_read(amqp_cstring_bytes(rk), &msg.properties, &info);
    int rc = 1;
    if (!info.source[0] || !dead_info_matches(&info, s->source, s->reason)) {
        r->held++; /* handed back in order when the pass ends */
        r->last_held_tag = tag;
    } else if (republish(r, &msg, &info, err, errlen) != 0) {
        rc = -1;
    } else {
        int status = amqp_basic_ack(st, MQ_CHANNEL, tag, 0);
        if (status != AMQP_STATUS_OK)
            rc = mq_fail(r->conn, status, "acknowledging a replayed dead letter", err, errlen);
        else
            r->replayed++;
    }
    amqp_destroy_message(&msg);
    return rc;
}

static long dead_count(replay *r, char *err, size_t errlen)
{
    amqp_connection_state_t st = mq_amqp(r->conn);
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        st, MQ_CHANNEL, amqp_cstring_bytes(SLUICE_QUEUE_DEAD), 1, 0, 0, 0, amqp_empty_table);
    if (mq_check(r->conn, amqp_get_rpc_reply(st), "looking up " SLUICE_QUEUE_DEAD, err, errlen) !=
        0)
        return -1;
    return (long)ok->message_count;
}

int ctl_replay_dead(const ctl_env *env)
{
    const ctl_settings *s = env->s;
    char err[1024] = "";
    size_t next = 0;
    int rc = 1;
    replay r = {.env = env};
    if (*s->source && !source_name_valid(s->source)) {
        fprintf(stderr, "sluice-ctl: --source: bad source name '%s' (allowed: [a-z0-9_-]{1,64})\n",
                s->source);
        return 2;
    }
    r.pub = publisher_new("", "sluice-ctl", 1);
    if (!r.pub) {
        log_error("out of memory");
        return 1;
    }
    r.conn = mq_connect_any(&env->urls, &next, (int)s->heartbeat, 5000, err, sizeof err);
    if (!r.conn || publisher_attach(r.pub, r.conn, err, sizeof err) != 0)
        goto done;
    long total = dead_count(&r, err, sizeof err);
    if (total < 0)
        goto done;
    progress bar;
    progress_start(&bar, "replaying " SLUICE_QUEUE_DEAD, (uint64_t)total);
    int got = 1;
    uint64_t seen = 0;
    while (seen < (uint64_t)total && !shutdown_requested && (got = step(&r, err, sizeof err)) > 0) {
        seen++;
        char note[64];
        snprintf(note, sizeof note, "replayed %" PRIu64 " kept %" PRIu64, r.replayed, r.held);
        progress_update(&bar, seen, note);
    }
    progress_end(&bar);
    if (got < 0)
        goto done;
    /* Hand back every message held, at their places in the queue. */
    if (r.held) {
        int status = amqp_basic_nack(mq_amqp(r.conn), MQ_CHANNEL, r.last_held_tag, 1, 1);
        if (status != AMQP_STATUS_OK) {
            mq_fail(r.conn, status, "handing back the dead letters kept", err, sizeof err);
            goto done;
        }
    }
    if (shutdown_requested)
        log_warn("replay interrupted by a signal after %" PRIu64 " of %ld messages", seen, total);
    rc = 0;
done:
    if (rc != 0)
        log_error("replay-dead failed after replaying %" PRIu64 ": %s", r.replayed, err);
    printf("replayed %" PRIu64 " dead letters to their source queues; %" PRIu64
           " left in " SLUICE_QUEUE_DEAD " (filtered out or not a source event)\n",
           r.replayed, r.held);
    publisher_detach(r.pub);
    mq_close(r.conn);
    publisher_free(r.pub);
    return rc;
}
