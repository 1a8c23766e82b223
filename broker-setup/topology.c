/*
 * topology: see topology.h.
 */
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"

const char *const topology_queue_types[] = {"classic", "quorum", NULL};

/* A declare that the broker refused with 406 PRECONDITION_FAILED means the
 * object exists with other arguments: a configuration conflict, not an
 * outage, so the caller reports it as bad config. */
static int check_declare(mq_conn *c, const char *kind, const char *name, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(mq_amqp(c));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        if (m->reply_code == AMQP_PRECONDITION_FAILED) {
            snprintf(err, errlen, "%s %s exists with other arguments: %.*s", kind, name,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            mq_mark_broken(c);
            return TOPOLOGY_CONFLICT;
        }
    }
    char what[300];
    snprintf(what, sizeof what, "declaring %s %s", kind, name);
    return mq_check(c, r, what, err, errlen) == 0 ? TOPOLOGY_OK : TOPOLOGY_FAILED;
}

/* `alternate` (NULL: none) is the exchange's alternate-exchange argument. */
static int declare_exchange(mq_conn *c, const char *name, const char *type, int internal,
                            const char *alternate, char *err, size_t errlen)
{
    amqp_table_entry_t arg = {.key = amqp_cstring_bytes("alternate-exchange"),
                              .value = {.kind = AMQP_FIELD_KIND_UTF8}};
    amqp_table_t args = amqp_empty_table;
    if (alternate) {
        arg.value.value.bytes = amqp_cstring_bytes(alternate);
        args = (amqp_table_t){.num_entries = 1, .entries = &arg};
    }
    amqp_exchange_declare(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(name),
                          amqp_cstring_bytes(type), 0, 1, 0, internal, args);
    int rc = check_declare(c, "exchange", name, err, errlen);
    if (rc == TOPOLOGY_OK)
        log_info("exchange ready name=%s type=%s%s%s", name, type,
                 alternate ? " alternate_exchange=" : "", alternate ? alternate : "");
    return rc;
}

/* The broker's major version from the "version" property it sent when the
 * connection opened ("4.0.5" -> 4), or 0 if it sent none. */
static long broker_major(mq_conn *c)
{
    amqp_table_t *props = amqp_get_server_properties(mq_amqp(c));
    for (int i = 0; props && i < props->num_entries; i++) {
        const amqp_table_entry_t *e = &props->entries[i];
        if (e->key.len == 7 && memcmp(e->key.bytes, "version", 7) == 0 &&
            (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)) {
            char text[32];
            int n = e->value.value.bytes.len < sizeof text - 1 ? (int)e->value.value.bytes.len
                                                               : (int)sizeof text - 1;
            memcpy(text, e->value.value.bytes.bytes, (size_t)n);
            text[n] = '\0';
            return strtol(text, NULL, 10);
        }
    }
    return 0;
}

/*
 * The x-delivery-limit to declare for a delivery limit of `limit` (0 = no
 * limit), or 0 to declare none. "No limit" differs by generation: RabbitMQ
 * 3.x has none unless the argument is given (and would dead-letter at the
 * first return with -1), RabbitMQ 4 applies 20 when the argument is absent
 * and reads -1 as unlimited.
 */
static long delivery_limit_arg(long limit, long major)
{
    if (limit > 0)
        return limit;
    return major >= 4 ? -1 : 0;
}

static int declare_queue(mq_conn *c, const char *name, const topology_options *opt,
                         int dead_letter, char *err, size_t errlen)
{
    const char *queue_type = topology_queue_types[opt->queue_type];
    amqp_table_entry_t args[3];
    long limit = 0;
    int nargs = 0;
    args[nargs].key = amqp_cstring_bytes("x-queue-type");
    args[nargs].value.kind = AMQP_FIELD_KIND_UTF8;
    args[nargs++].value.value.bytes = amqp_cstring_bytes(queue_type);
    if (dead_letter) {
        args[nargs].key = amqp_cstring_bytes("x-dead-letter-exchange");
        args[nargs].value.kind = AMQP_FIELD_KIND_UTF8;
        args[nargs++].value.value.bytes = amqp_cstring_bytes(SLUICE_EXCHANGE_DLX);
    }
    /* Classic queues in RabbitMQ 3.10 have no delivery limit; on quorum
     * queues it keeps a message that crashes every worker from looping. */
    if (dead_letter && opt->queue_type == QUEUE_QUORUM &&
        (limit = delivery_limit_arg(opt->delivery_limit, broker_major(c))) != 0) {
        args[nargs].key = amqp_cstring_bytes("x-delivery-limit");
        args[nargs].value.kind = AMQP_FIELD_KIND_I64;
        args[nargs++].value.value.i64 = limit;
    }
    amqp_table_t table = {.num_entries = nargs, .entries = args};
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, table);
    int rc = check_declare(c, "queue", name, err, errlen);
    if (rc == TOPOLOGY_OK)
        log_info("queue ready name=%s type=%s delivery_limit=%ld messages=%u consumers=%u", name,
                 queue_type, limit, ok->message_count, ok->consumer_count);
    return rc;
}

static int bind_queue(mq_conn *c, const char *queue, const char *exchange, const char *key,
                      char *err, size_t errlen)
{
    amqp_queue_bind(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), amqp_empty_table);
    char what[400];
    snprintf(what, sizeof what, "binding %s to %s with %s", queue, exchange, key);
    return mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), what, err, errlen) == 0 ? TOPOLOGY_OK
                                                                               : TOPOLOGY_FAILED;
}

int topology_declare(mq_conn *c, const strlist *sources, const topology_options *opt, char *err,
                     size_t errlen)
{
    int rc;
    /* The alternate exchange and its queue come first, so that sluice.ingest
     * never points at an exchange that routes nowhere. Internal: only the
     * broker routes into it, no client publishes there by mistake. */
    if ((rc = declare_exchange(c, SLUICE_EXCHANGE_UNROUTED, "fanout", 1, NULL, err, errlen)) !=
            TOPOLOGY_OK ||
        (rc = declare_queue(c, SLUICE_QUEUE_UNROUTED, opt, 1, err, errlen)) != TOPOLOGY_OK ||
        (rc = bind_queue(c, SLUICE_QUEUE_UNROUTED, SLUICE_EXCHANGE_UNROUTED, "#", err, errlen)) !=
            TOPOLOGY_OK)
        return rc;

    if (opt->ingest_without_alternate) {
        rc = declare_exchange(c, SLUICE_EXCHANGE_INGEST, "topic", 0, NULL, err, errlen);
    } else {
        rc = declare_exchange(c, SLUICE_EXCHANGE_INGEST, "topic", 0, SLUICE_EXCHANGE_UNROUTED, err,
                              errlen);
        if (rc == TOPOLOGY_CONFLICT)
            return TOPOLOGY_NO_ALTERNATE;
    }
    if (rc != TOPOLOGY_OK)
        return rc;
    static const char *const exchanges[] = {SLUICE_EXCHANGE_DLX, SLUICE_EXCHANGE_ALERTS};
    for (size_t i = 0; i < sizeof exchanges / sizeof *exchanges; i++) {
        if ((rc = declare_exchange(c, exchanges[i], "topic", 0, NULL, err, errlen)) != TOPOLOGY_OK)
            return rc;
    }

    if ((rc = declare_queue(c, SLUICE_QUEUE_DEAD, opt, 0, err, errlen)) != TOPOLOGY_OK ||
        (rc = bind_queue(c, SLUICE_QUEUE_DEAD, SLUICE_EXCHANGE_DLX, "#", err, errlen)) !=
            TOPOLOGY_OK)
        return rc;
    if ((rc = declare_queue(c, SLUICE_QUEUE_NOTIFIER, opt, 1, err, errlen)) != TOPOLOGY_OK ||
        (rc = bind_queue(c, SLUICE_QUEUE_NOTIFIER, SLUICE_EXCHANGE_ALERTS, "alert.#", err,
                         errlen)) != TOPOLOGY_OK)
        return rc;

    for (size_t i = 0; i < sources->count; i++) {
        char queue[128], key[128];
        snprintf(queue, sizeof queue, SLUICE_QUEUE_PREFIX "%s", sources->items[i]);
        snprintf(key, sizeof key, SLUICE_ROUTING_PREFIX "%s", sources->items[i]);
        if ((rc = declare_queue(c, queue, opt, 1, err, errlen)) != TOPOLOGY_OK ||
            (rc = bind_queue(c, queue, SLUICE_EXCHANGE_INGEST, key, err, errlen)) != TOPOLOGY_OK)
            return rc;
    }
    return TOPOLOGY_OK;
}
