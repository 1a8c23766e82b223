/* Unit tests for the bounded hub between reader threads and the publisher
 * (producer/hub.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hub.h"

typedef struct putter {
    hub *h;
    atomic_int stop;
    atomic_int put;
} putter;

static void *put_five(void *arg)
{
    putter *p = arg;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "m%d", i);
        hub_put(p->h, 0, "{}", 2, id, (uint64_t)i + 1, &p->stop);
        atomic_fetch_add(&p->put, 1);
    }
    hub_finish(p->h, 0);
    return NULL;
}

static int put_count(putter *p, int want)
{
    for (int i = 0; i < 200 && atomic_load(&p->put) < want; i++)
        usleep(5000);
    return atomic_load(&p->put);
}

/* A full queue holds its reader back; taking makes room; the order is kept. */
static void test_hub_backpressure(void **state)
{
    (void)state;
    putter p = {.h = hub_new(2, 2, 1 << 20)};
    assert_non_null(p.h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_five, &p), 0);
    assert_int_equal(put_count(&p, 2), 2);
    usleep(50000); /* give a wrong implementation the chance to put a third */
    assert_int_equal(atomic_load(&p.put), 2);
    assert_int_equal(hub_buffered(p.h), 2);
    hub_item it;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(hub_take(p.h, &it, 5000), 1);
        assert_int_equal(it.position, (uint64_t)i + 1);
        hub_item_free(&it);
    }
    pthread_join(t, NULL);
    assert_int_equal(hub_take(p.h, &it, 0), 0);
    assert_false(hub_done(p.h)); /* source 1 never finished */
    hub_finish(p.h, 1);
    assert_true(hub_done(p.h));
    hub_free(p.h);
}

static void *put_three_big(void *arg)
{
    putter *p = arg;
    for (int i = 0; i < 3; i++) {
        hub_put(p->h, 0, "{\"a\":123}", 9, "m", (uint64_t)i + 1, &p->stop);
        atomic_fetch_add(&p->put, 1);
    }
    return NULL;
}

/* The byte bound holds a reader back as the count bound does; an empty
 * queue takes one event even if it alone is over the bound. */
static void test_hub_bounded_in_bytes(void **state)
{
    (void)state;
    putter p = {.h = hub_new(1, 100, 8)}; /* 100 events, but 8 bytes */
    assert_non_null(p.h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_three_big, &p), 0);
    assert_int_equal(put_count(&p, 1), 1);
    usleep(50000); /* give a wrong implementation the chance to put a second */
    assert_int_equal(atomic_load(&p.put), 1);
    hub_item it;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hub_take(p.h, &it, 5000), 1);
        assert_int_equal(it.position, (uint64_t)i + 1);
        hub_item_free(&it);
    }
    pthread_join(t, NULL);
    hub_free(p.h);
}

/* A stopping reader hands over the event it holds, one over the capacity,
 * without waiting. */
static void test_hub_stop_keeps_event(void **state)
{
    (void)state;
    hub *h = hub_new(1, 2, 1 << 20);
    atomic_int stop = 0;
    assert_int_equal(hub_put(h, 0, "{}", 2, "a", 1, &stop), 0);
    assert_int_equal(hub_put(h, 0, "{}", 2, "b", 2, &stop), 0);
    atomic_store(&stop, 1);
    assert_int_equal(hub_put(h, 0, "{}", 2, "c", 3, &stop), 0);
    assert_int_equal(hub_buffered(h), 3);
    hub_item it;
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(hub_take(h, &it, 0), 1);
        assert_int_equal(it.position, i);
        hub_item_free(&it);
    }
    assert_int_equal(hub_put(h, 0, "{}", 2, "d", 4, &stop), 0);
    hub_free(h); /* frees the event still buffered */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hub_backpressure),
        cmocka_unit_test(test_hub_stop_keeps_event),
        cmocka_unit_test(test_hub_bounded_in_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
