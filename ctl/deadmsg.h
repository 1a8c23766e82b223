/*
 * deadmsg: what sluice-ctl reads from a message of sluice.dead: the source
 * it came from and why it is there. Pure: tested in tests/unit/test_ctl.c.
 *
 * The source is the one of its routing key, src.<source> (a dead letter
 * keeps the routing key of the original; an alert dead-lettered by the
 * notifier has alert.<severity>.<rule> and no source queue to go back to).
 * The reason is the x-sluice-reason header sluice's workers and notifier
 * set, else x-first-death-reason for what RabbitMQ dead-lettered itself
 * (a quorum queue's delivery limit: "delivery_limit"), else "unknown".
 */
#ifndef SLUICE_CTL_DEADMSG_H
#define SLUICE_CTL_DEADMSG_H

#include "amqp_api.h"
#include <stddef.h>
#include <stdint.h>

typedef struct dead_info {
    char source[65];  /* "" if the routing key names no source */
    char reason[256]; /* cut to fit */
} dead_info;

void dead_info_read(amqp_bytes_t routing_key, const amqp_basic_properties_t *props, dead_info *out);

/* The text of header `key` (a UTF-8 or byte string) into out, cut to cap.
 * Returns 1 if present, 0 if not (out is then ""). */
int dead_header_text(const amqp_basic_properties_t *props, const char *key, char *out, size_t cap);

/* The integer header `key` (any integer kind); `fallback` if absent. */
int64_t dead_header_int(const amqp_basic_properties_t *props, const char *key, int64_t fallback);

/* 1 if `info` passes the filters (NULL or "" = any), else 0. */
int dead_info_matches(const dead_info *info, const char *source, const char *reason);

#endif
