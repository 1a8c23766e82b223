/*
 * mgmt: reads RabbitMQ's management HTTP API (libcurl, json-c): what AMQP
 * itself does not tell, such as publish and deliver rates.
 */
#ifndef SLUICE_CTL_MGMT_H
#define SLUICE_CTL_MGMT_H

#include <json-c/json.h>
#include <stddef.h>

typedef struct mgmt_queue {
    int found;     /* 0: the API answered 404 (no such queue) */
    long messages; /* ready + unacknowledged */
    long ready;
    long consumers;
    double publish_rate; /* messages/s into the queue, as the API averages them */
    double deliver_rate; /* messages/s delivered to consumers (deliver + get) */
} mgmt_queue;

typedef struct mgmt mgmt;

/* base_url is the API's root ("http://127.0.0.1:15672/"); vhost as in the
 * AMQP URL ("/" by default). Strings are copied. Free with mgmt_free(). */
mgmt *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost);
void mgmt_free(mgmt *m); /* accepts NULL */

/* Fills q for queue `name`. Returns 0 (q->found says whether it exists),
 * or -1 with err on one line (the API did not answer, refused the
 * credentials, or answered something else than a queue). */
int mgmt_queue_get(mgmt *m, const char *name, mgmt_queue *q, char *err, size_t errlen);

#endif
