/* Unit tests for batches of deliveries (workers/batch.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"

static incoming delivery_of(uint64_t tag, const char *id, const char *body)
{
    incoming in = {.delivery_tag = tag,
                   .source = "orders",
                   .routing_key = "src.orders",
                   .routing_key_len = 10,
                   .message_id = id,
                   .message_id_len = id ? strlen(id) : 0,
                   .body = body,
                   .body_len = strlen(body),
                   .produced_at_us = 5,
                   .received_at_us = 6};
    return in;
}

static void test_batch_keeps_copies(void **state)
{
    (void)state;
    batch b;
    batch_init(&b);
    char body[] = "{\"n\":1}";
    incoming in = delivery_of(7, "m-1", body);
    assert_int_equal(batch_add(&b, &in, EVENT_OK), 0);
    body[5] = '2'; /* the library reuses its buffers: the batch must not notice */
    assert_string_equal(batch_str(&b, b.items[0].body), "{\"n\":1}");
    assert_string_equal(batch_str(&b, b.items[0].msg_id), "m-1");
    assert_string_equal(batch_str(&b, b.items[0].source), "orders");
    assert_string_equal(batch_str(&b, b.items[0].routing_key), "src.orders");
    assert_int_equal(b.last_tag, 7);

    /* Many more, forcing the arena and the array to grow. */
    for (uint64_t t = 8; t < 3000; t++) {
        in = delivery_of(t, "m-x", "{\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
        assert_int_equal(batch_add(&b, &in, t % 10 ? EVENT_OK : EVENT_BAD_JSON), 0);
    }
    assert_int_equal(b.count, 2993);
    assert_int_equal(b.last_tag, 2999);
    assert_int_equal(b.invalid, 299);
    assert_string_equal(batch_str(&b, b.items[0].body), "{\"n\":1}");
    batch_reset(&b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.invalid, 0);
    batch_free(&b);
}

/* A message without a usable message_id gets the id derived from source and
 * body, so the same content from another client is stored once. */
static void test_batch_derives_missing_ids(void **state)
{
    (void)state;
    batch b;
    batch_init(&b);
    incoming none = delivery_of(1, NULL, "{\"a\":1}");
    incoming empty = delivery_of(2, "", "{\"a\":1}");
    incoming control = delivery_of(3, "bad\nid", "{\"a\":1}");
    incoming broken = delivery_of(4, "\xff\xfe", "{\"a\":1}");
    assert_int_equal(batch_add(&b, &none, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &empty, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &control, EVENT_OK), 0);
    assert_int_equal(batch_add(&b, &broken, EVENT_OK), 0);
    char expected[EVENT_DERIVED_ID_LEN + 1];
    event_derive_id("orders", "{\"a\":1}", 7, expected);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(batch_str(&b, b.items[i].msg_id), expected);
    batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_keeps_copies),
        cmocka_unit_test(test_batch_derives_missing_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
