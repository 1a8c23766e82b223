/*
 * Integration test of least privilege (users.h; roles in PostgreSQL): the
 * accounts sluice-setup creates for each component can do what that
 * component does and are refused the rest, by the real RabbitMQ and
 * PostgreSQL of the stack. Setup reads every password from a file, as
 * compose's Docker secrets give them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "amqp_api.h"
#include "event.h"
#include "harness.h"
#include "mq.h"

/* The passwords setup gives, and the files it reads them from. */
#define PRODUCER_PASSWORD "producer-secret-1"
#define WORKER_PASSWORD "worker-secret-1"
#define NOTIFIER_PASSWORD "notifier-secret-1"

static char secret_dir[] = "/tmp/sluice-privilege-XXXXXX";

/* Writes `text` and a newline (as `echo` would) to <secret_dir>/<name> and
 * points the variable `var` at it. */
static void secret_file(const char *var, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", secret_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
    setenv(var, path, 1);
}

static int group_setup(void **state)
{
    if (!mkdtemp(secret_dir))
        return -1;
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", PRODUCER_PASSWORD);
    secret_file("SLUICE_AMQP_WORKER_PASSWORD_FILE", "worker", WORKER_PASSWORD);
    secret_file("SLUICE_AMQP_NOTIFIER_PASSWORD_FILE", "notifier", NOTIFIER_PASSWORD);
    return harness_group_setup(state);
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", secret_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The stack's AMQP URL with another login. Statically allocated. */
static const char *url_as(const char *user, const char *password)
{
    static char url[512];
    char *copy = strdup(harness_amqp_url());
    struct amqp_connection_info info;
    assert_int_equal(amqp_parse_url(copy, &info), AMQP_STATUS_OK);
    snprintf(url, sizeof url, "amqp://%s:%s@%s:%d/%s", user, password, info.host, info.port,
             strcmp(info.vhost, "/") == 0 ? "" : info.vhost);
    free(copy);
    return url;
}

static mq_conn *connect_as(const char *user, const char *password)
{
    char err[512];
    mq_conn *c = mq_connect(url_as(user, password), 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("login as %s: %s", user, err);
    return c;
}

/* 0 if the last RPC succeeded; its reply code if the broker closed the
 * channel (answering the close, so the connection stays usable);
 * fails the test on anything else. */
static int rpc_outcome(mq_conn *c, amqp_channel_t ch)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(mq_amqp(c));
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(mq_amqp(c), ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        return ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
    }
    fail_msg("unexpected reply type %d", r.reply_type);
    return -1;
}

typedef enum { OP_CONSUME, OP_DECLARE, OP_DELETE, OP_PASSIVE, OP_PUBLISH } op_kind;

/*
 * Runs one AMQP operation on a channel of its own: consume `name` (a
 * queue), declare it, delete it, declare it passively, or publish one
 * message with confirms to `name` (an exchange) with routing key `key`.
 * Returns 0 if the broker allowed it, else the reply code it closed the
 * channel with (403 ACCESS_REFUSED).
 */
static int try_op(mq_conn *c, op_kind op, const char *name, const char *key)
{
    static amqp_channel_t next = 10;
    amqp_connection_state_t st = mq_amqp(c);
    amqp_channel_t ch = next++;
    amqp_channel_open(st, ch);
    assert_int_equal(rpc_outcome(c, ch), 0);
    amqp_bytes_t n = amqp_cstring_bytes(name);
    int rc = 0;
    switch (op) {
    case OP_CONSUME:
        amqp_basic_consume(st, ch, n, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_DECLARE:
        amqp_queue_declare(st, ch, n, 0, 1, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_DELETE:
        amqp_queue_delete(st, ch, n, 0, 0);
        rc = rpc_outcome(c, ch);
        break;
    case OP_PASSIVE:
        amqp_queue_declare(st, ch, n, 1, 0, 0, 0, amqp_empty_table);
        rc = rpc_outcome(c, ch);
        break;
    case OP_PUBLISH: {
        amqp_confirm_select(st, ch);
        assert_int_equal(rpc_outcome(c, ch), 0);
        amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                         .delivery_mode = 2};
        assert_int_equal(amqp_basic_publish(st, ch, n, amqp_cstring_bytes(key), 0, 0, &props,
                                            amqp_cstring_bytes("{\"privilege\":1}")),
                         AMQP_STATUS_OK);
        /* Refused: the broker closes the channel; allowed: it confirms. */
        amqp_frame_t f;
        struct timeval tv = {10, 0};
        assert_int_equal(amqp_simple_wait_frame_noblock(st, &f, &tv), AMQP_STATUS_OK);
        assert_int_equal(f.frame_type, AMQP_FRAME_METHOD);
        if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            rc = ((amqp_channel_close_t *)f.payload.method.decoded)->reply_code;
            amqp_channel_close_ok_t ok = {0};
            amqp_send_method(st, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
            return rc;
        }
        assert_int_equal(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
        break;
    }
    }
    if (rc == 0) {
        amqp_channel_close(st, ch, AMQP_REPLY_SUCCESS);
        assert_int_equal(rpc_outcome(c, ch), 0);
    }
    return rc;
}

#define REFUSED 403 /* AMQP ACCESS_REFUSED */

/* The producer publishes to sluice.ingest and checks which sources have a
 * queue; it cannot consume, declare or delete a queue, nor publish to
 * another exchange. */
static void test_producer_user(void **state)
{
    (void)state;
    harness_reset();
    mq_conn *c = connect_as("sluice-producer", PRODUCER_PASSWORD);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), 0);
    assert_int_equal(try_op(c, OP_PASSIVE, "sluice.q.orders", NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_DEAD, NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DECLARE, "sluice.q.intruder", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.high.x"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_DLX, "x"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, "", "sluice.q.orders"), REFUSED);
    mq_close(c);
    assert_int_equal(queue_ready("sluice.q.orders"), 1); /* the one allowed publish */
    assert_int_equal(queue_ready("sluice.q.intruder"), -1);
}

/* A worker consumes its source queues, dead-letters and raises alerts; it
 * cannot publish to sluice.ingest, consume the notifier's queue, nor
 * declare or delete a queue. */
static void test_worker_user(void **state)
{
    (void)state;
    harness_reset();
    mq_conn *c = connect_as("sluice-worker", WORKER_PASSWORD);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_UNROUTED, NULL), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_DLX, "orders"), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.info.privilege"), 0);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), REFUSED);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_NOTIFIER, NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_DECLARE, "sluice.q.intruder", NULL), REFUSED);
    mq_close(c);
    assert_int_equal(queue_ready("sluice.q.orders"), 0); /* nothing got through */
    /* What the allowed publishes left behind. */
    queue_purge(SLUICE_QUEUE_DEAD);
    queue_purge(SLUICE_QUEUE_NOTIFIER);
}

/* The notifier consumes sluice.q.notifier and dead-letters, nothing else. */
static void test_notifier_user(void **state)
{
    (void)state;
    mq_conn *c = connect_as("sluice-notifier", NOTIFIER_PASSWORD);
    assert_int_equal(try_op(c, OP_CONSUME, SLUICE_QUEUE_NOTIFIER, NULL), 0);
    assert_int_equal(try_op(c, OP_CONSUME, "sluice.q.orders", NULL), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_INGEST, "src.orders"), REFUSED);
    assert_int_equal(try_op(c, OP_PUBLISH, SLUICE_EXCHANGE_ALERTS, "alert.info.x"), REFUSED);
    assert_int_equal(try_op(c, OP_DELETE, SLUICE_QUEUE_NOTIFIER, NULL), REFUSED);
    mq_close(c);
}

/* A password changed in its file takes effect when setup runs again: the
 * old one no longer logs in. */
static void test_password_rotation(void **state)
{
    (void)state;
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", "producer-secret-2");
    const char *argv[] = {harness_bin("sluice-setup"), NULL};
    char err[8192];
    assert_int_equal(harness_run(argv, err, sizeof err, 60000), 0);
    assert_null(strstr(err, "producer-secret")); /* never logged */
    char why[512];
    mq_conn *old =
        mq_connect(url_as("sluice-producer", PRODUCER_PASSWORD), 0, 5000, why, sizeof why);
    assert_null(old);
    mq_close(connect_as("sluice-producer", "producer-secret-2"));
    secret_file("SLUICE_AMQP_PRODUCER_PASSWORD_FILE", "producer", PRODUCER_PASSWORD);
    assert_int_equal(harness_run(argv, err, sizeof err, 60000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_user),
        cmocka_unit_test(test_worker_user),
        cmocka_unit_test(test_notifier_user),
        cmocka_unit_test(test_password_rotation),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
