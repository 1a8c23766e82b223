/* Integration test of common/consumer.h against the real broker: what the
 * worker and the notifier rely on. Deliveries name their queue; requeue
 * hands a message back (redelivered), reject dead-letters it through the
 * queue's sluice.dlx into sluice.dead, ack_through settles the rest; a
 * missing queue is named with the advice to run sluice-setup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "consumer.h"
#include "harness.h"
#include "util.h"

#define TIMEOUT_MS 30000

static char orders_name[] = "orders";
static char *orders_items[] = {orders_name};
static const strlist orders = {.items = orders_items, .count = 1};

/* The next delivery, waiting up to TIMEOUT_MS; fails the test if none. */
static void next(consumer *c, incoming *in)
{
    char err[512];
    int64_t deadline = mono_us() + (int64_t)TIMEOUT_MS * 1000;
    while (mono_us() < deadline) {
        int got = consumer_next(c, in, 200, err, sizeof err);
        if (got < 0)
            fail_msg("consumer_next: %s", err);
        if (got > 0)
            return;
    }
    fail_msg("no delivery within %d ms", TIMEOUT_MS);
}

/* A delivery's body as a string (its bytes live until the next call). */
static void body_of(const incoming *in, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)in->body_len, (const char *)in->body);
}

static void test_settle(void **state)
{
    (void)state;
    const char *q = "sluice.q.orders";
    queue_purge(q);
    queue_purge("sluice.dead");
    harness_amqp_publish("src.orders", "{\"n\":1}");
    harness_amqp_publish("src.orders", "{\"n\":2}");
    harness_amqp_publish("src.orders", "{\"n\":3}");

    char err[512], body[64];
    mq_conn *conn = mq_connect(harness_amqp_url(), 0, 5000, err, sizeof err);
    if (!conn)
        fail_msg("connect: %s", err);
    consumer *c = consumer_open(conn, "sluice-test", &orders, 10, err, sizeof err);
    if (!c)
        fail_msg("consumer_open: %s", err);

    /* Whatever comes first is handed back, the second is refused, and the
     * two after that are the one handed back (again) and the last. */
    incoming in;
    char requeued[64], rejected[64];
    next(c, &in);
    assert_string_equal(in.source, "orders");
    assert_int_equal(in.source_index, 0);
    assert_int_equal(in.routing_key_len, strlen("src.orders"));
    assert_memory_equal(in.routing_key, "src.orders", in.routing_key_len);
    assert_true(in.received_at_us > 0);
    body_of(&in, requeued, sizeof requeued);
    assert_int_equal(consumer_requeue(c, in.delivery_tag, err, sizeof err), 0);

    next(c, &in);
    body_of(&in, rejected, sizeof rejected);
    assert_string_not_equal(rejected, requeued);
    assert_int_equal(consumer_reject(c, in.delivery_tag, err, sizeof err), 0);

    uint64_t last = 0;
    int again = 0, seen = 0;
    for (int i = 0; i < 2; i++) {
        next(c, &in);
        body_of(&in, body, sizeof body);
        assert_string_not_equal(body, rejected);
        again += strcmp(body, requeued) == 0;
        seen++;
        last = in.delivery_tag > last ? in.delivery_tag : last;
    }
    assert_int_equal(again, 1);
    assert_int_equal(seen, 2);
    assert_int_equal(consumer_ack_through(c, last, err, sizeof err), 0);
    consumer_free(c);
    mq_close(conn);

    /* Everything settled: nothing back in the queue; the rejected one is
     * a dead letter. */
    assert_int_equal(queue_ready(q), 0);
    char value[8];
    assert_int_equal(queue_get("sluice.dead", body, sizeof body, "x", value, sizeof value), 1);
    assert_string_equal(body, rejected);
    assert_int_equal(queue_get("sluice.dead", body, sizeof body, "x", value, sizeof value), 0);
}

/* A missing queue does not stop the others: it is reported as not
 * consumed and consumed as soon as it exists. */
static void test_missing_queue(void **state)
{
    (void)state;
    static char present[] = "orders", absent[] = "nosuchsource";
    static char *items[] = {present, absent};
    const strlist names = {.items = items, .count = 2};
    char err[512];
    queue_delete("sluice.q.nosuchsource");
    mq_conn *conn = mq_connect(harness_amqp_url(), 0, 5000, err, sizeof err);
    if (!conn)
        fail_msg("connect: %s", err);
    consumer *c = consumer_open(conn, "sluice-test", &names, 10, err, sizeof err);
    if (!c)
        fail_msg("consumer_open: %s", err);
    assert_int_equal(consumer_active(c, 0), 1);
    assert_int_equal(consumer_active(c, 1), 0);
    assert_int_equal(queue_consumers("sluice.q.orders"), 1);
    unsigned changes = consumer_changes(c);

    queue_declare_conflicting("sluice.q.nosuchsource"); /* any durable queue of that name */
    incoming in;
    /* Looked for again 0.5-1 s after it went missing, then with backoff:
     * consumed well within 15 s. */
    int64_t deadline = mono_us() + 15000000;
    while (!consumer_active(c, 1) && mono_us() < deadline)
        assert_true(consumer_next(c, &in, 100, err, sizeof err) >= 0);
    assert_int_equal(consumer_active(c, 1), 1);
    assert_true(consumer_changes(c) != changes);
    assert_int_equal(queue_consumers("sluice.q.nosuchsource"), 1);
    consumer_free(c);
    mq_close(conn);
    queue_delete("sluice.q.nosuchsource");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settle),
        cmocka_unit_test(test_missing_queue),
    };
    return cmocka_run_group_tests(tests, harness_group_setup, NULL);
}
