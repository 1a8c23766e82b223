/*
 * replay-dead: moves messages of sluice.dead back to their source's queue.
 *
 * One pass over the messages that were in sluice.dead when it started.
 * Each is taken with basic.get (unacknowledged) on one connection and
 * published to sluice.q.<source> through the default exchange, with the
 * mandatory flag, by a publisher with confirms on another; only when the
 * broker confirms the copy is the dead letter acknowledged (removed). Up
 * to REPLAY_WINDOW copies are in flight at once: waiting for each confirm
 * in turn would cost a disk sync of the broker per message.
 *
 * A copy the broker returns (its queue was deleted) is not acknowledged,
 * nor is any copy confirmed after it: the broker sends basic.return before
 * the confirm of the same message, so no returned message is ever taken
 * for delivered; replay stops with exit 1 and those dead letters go back
 * to sluice.dead.
 *
 * A message that does not pass the filters (or names no source: an alert
 * the notifier gave up on) is held unacknowledged until the pass ends and
 * then handed back with one nack (requeue): RabbitMQ puts such messages
 * back at their places, so what stays keeps its order, and the pass never
 * sees it twice.
 *
 * Interrupted, nothing is lost: SIGINT/SIGTERM stops taking messages and
 * waits for the confirms of those in flight, so each ends in exactly one
 * queue. Killed, the broker takes back every unacknowledged dead letter,
 * including up to REPLAY_WINDOW whose copies already reached the source
 * queue: a later replay publishes them again, with the same message_id,
 * so the warehouse stores each once.
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
#define REPLAY_WINDOW 256 /* copies published and not yet confirmed */

typedef struct replay {
    const ctl_env *env;
    mq_conn *conn;     /* basic.get, ack and nack on sluice.dead */
    mq_conn *pub_conn; /* the publisher's, so confirms never mix with deliveries */
    publisher *pub;
    uint64_t replayed, held;
    uint64_t last_held_tag; /* the nack that hands the held ones back names it */
    int failed;             /* a copy was returned or an ack failed: stop */
    char why[512];          /* why `failed` */
} replay;

/* Confirm handler: position is the dead letter's delivery tag. Confirms
 * arrive in publishing order, each message's return before its confirm. */
static void on_confirmed(void *arg, void *owner, uint64_t tag)
{
    (void)owner;
    replay *r = arg;
    if (r->failed)
        return; /* left unacknowledged: goes back to sluice.dead */
    if (publisher_get_stats(r->pub)->returned > 0) {
        r->failed = 1;
        snprintf(r->why, sizeof r->why,
                 "the broker returned a copy: its source queue does not exist (has sluice-setup "
                 "run with that source?)");
        return;
    }
    int status = amqp_basic_ack(mq_amqp(r->conn), MQ_CHANNEL, tag, 0);
    if (status != AMQP_STATUS_OK) {
        r->failed = 1;
        mq_fail(r->conn, status, "acknowledging a replayed dead letter", r->why, sizeof r->why);
        return;
    }
    r->replayed++;
}

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

/* Publishes one dead letter's copy to its source queue (acknowledged in
 * on_confirmed). Returns 0 once taken, -1 with err otherwise. */
static int republish(replay *r, const amqp_message_t *msg, const dead_info *info, uint64_t tag,
                     char *err, size_t errlen)
{
    char queue[128], id[512];
    snprintf(queue, sizeof queue, SLUICE_QUEUE_PREFIX "%s", info->source);
    message_id(msg, info->source, id, sizeof id);
    int64_t produced = dead_header_int(&msg->properties, SLUICE_HEADER_PRODUCED_AT, 0);
    if (!produced && (msg->properties._flags & AMQP_BASIC_TIMESTAMP_FLAG))
        produced = (int64_t)msg->properties.timestamp * 1000000;
    pub_message m = {.routing_key = queue,
                     .message_id = id,
                     .source = info->source,
                     .body = msg->body.bytes,
                     .body_len = msg->body.len,
                     .produced_at_us = produced,
                     .position = tag};
    return publisher_publish(r->pub, &m, err, errlen);
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
    } else if (republish(r, &msg, &info, tag, err, errlen) != 0) {
        rc = -1;
    } else if (r->failed) {
        snprintf(err, errlen, "%s", r->why);
        rc = -1;
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
    long total = 0;
    uint64_t seen = 0;
    replay r = {.env = env};
    if (*s->source && !source_name_valid(s->source)) {
        fprintf(stderr, "sluice-ctl: --source: bad source name '%s' (allowed: [a-z0-9_-]{1,64})\n",
                s->source);
        return 2;
    }
    r.pub = publisher_new("", "sluice-ctl", REPLAY_WINDOW);
    if (!r.pub) {
        log_error("out of memory");
        return 1;
    }
    publisher_on_confirm(r.pub, on_confirmed, &r);
    r.conn = mq_connect_any(&env->urls, &next, (int)s->heartbeat, 5000, err, sizeof err);
    if (!r.conn)
        goto done;
    r.pub_conn = mq_connect_any(&env->urls, &next, (int)s->heartbeat, 5000, err, sizeof err);
    if (!r.pub_conn || publisher_attach(r.pub, r.pub_conn, err, sizeof err) != 0)
        goto done;
    total = dead_count(&r, err, sizeof err);
    if (total < 0)
        goto done;
    progress bar;
    progress_start(&bar, "replaying " SLUICE_QUEUE_DEAD, (uint64_t)total);
    int got = 1;
    while (seen < (uint64_t)total && !shutdown_requested && (got = step(&r, err, sizeof err)) > 0) {
        seen++;
        char note[64];
        snprintf(note, sizeof note, "replayed %" PRIu64 " kept %" PRIu64, r.replayed, r.held);
        progress_update(&bar, seen, note);
    }
    progress_end(&bar);
    /* The copies in flight are confirmed (and their dead letters acked)
     * even after a signal, so each message ends in exactly one queue. */
    char why[512];
    int drained = publisher_drain(r.pub, CONFIRM_TIMEOUT_MS, why, sizeof why);
    if (drained != 0) {
        if (drained == 1)
            snprintf(why, sizeof why, "no confirm from the broker within %d ms",
                     CONFIRM_TIMEOUT_MS);
        snprintf(err, sizeof err, "%s", why);
        goto done;
    }
    if (r.failed) {
        snprintf(err, sizeof err, "%s", r.why);
        goto done;
    }
    /* publish gives up waiting for room in the window on a signal */
    if (got < 0 && !shutdown_requested)
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
    uint64_t untouched = total > 0 && (uint64_t)total > seen ? (uint64_t)total - seen : 0;
    printf("replayed %" PRIu64 " dead letters to their source queues; kept in " SLUICE_QUEUE_DEAD
           ": %" PRIu64 " filtered out or not a source event, %" PRIu64 " not reached\n",
           r.replayed, r.held, untouched);
    publisher_detach(r.pub);
    mq_close(r.pub_conn);
    mq_close(r.conn); /* the broker takes back what was not acknowledged */
    publisher_free(r.pub);
    return rc;
}
