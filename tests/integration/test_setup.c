/* Integration tests of sluice-setup against the real RabbitMQ and
 * PostgreSQL: idempotence, migrations once each, conflicts, the quorum
 * queues' delivery limit and bad usage. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "mq.h"

#define TIMEOUT_MS 60000

static int count_migration_files(void)
{
    DIR *d = opendir(SLUICE_SQL_DIR);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0;
    }
    closedir(d);
    return n;
}

static void test_setup_twice_changes_nothing(void **state)
{
    (void)state;
    const char *argv[] = {harness_bin("sluice-setup"), NULL};
    char err[8192];
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    long long migrations = pg_scalar("SELECT count(*) FROM schema_migrations");
    char applied_at[64];
    pg_text("SELECT max(applied_at)::text FROM schema_migrations", applied_at, sizeof applied_at);

    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    assert_non_null(strstr(err, "applied_now=0"));
    assert_int_equal(pg_scalar("SELECT count(*) FROM schema_migrations"), migrations);
    assert_int_equal(migrations, count_migration_files());
    char again[64];
    pg_text("SELECT max(applied_at)::text FROM schema_migrations", again, sizeof again);
    assert_string_equal(applied_at, again);

    static const char *const queues[] = {"sluice.q.profiles", "sluice.q.clickstream",
                                         "sluice.q.orders",   "sluice.q.sensors",
                                         "sluice.q.notifier", "sluice.dead"};
    for (size_t i = 0; i < sizeof queues / sizeof *queues; i++) {
        if (queue_ready(queues[i]) < 0)
            fail_msg("queue %s was not declared", queues[i]);
    }
    assert_int_equal(pg_scalar("SELECT count(*) FROM pg_tables WHERE tablename IN "
                               "('events', 'ingest_errors', 'alerts')"),
                     3);
}

/* A queue that exists with other arguments is a configuration conflict:
 * one line naming the queue and the difference, exit 2, nothing changed. */
static void test_conflicting_queue_is_refused(void **state)
{
    (void)state;
    queue_declare_conflicting("sluice.q.conflict");
    const char *argv[] = {harness_bin("sluice-setup"), "--sources", "conflict", NULL};
    char err[8192];
    int rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
    queue_delete("sluice.q.conflict");
    assert_int_equal(rc, 2);
    const char *line = strstr(err, "sluice-setup: queue sluice.q.conflict exists with other "
                                   "arguments");
    if (!line)
        fail_msg("unexpected error output: %s", err);
    assert_non_null(strstr(line, "x-max-length"));
    const char *end = strchr(line, '\n');
    assert_true(end && end[1] == '\0'); /* one line, and the last */
}

/* The quorum queues of this test live in a vhost of their own: the
 * stack's vhost holds sluice's classic queues of the same names. */
#define LIMIT_VHOST "sluice-delivery-limit"

/* PUT or DELETE of the test's vhost through the management API, as the
 * user of the stack's AMQP URL (the user who creates a vhost may use it). */
static void limit_vhost(const char *method)
{
    const char *mgmt = getenv("SLUICE_MGMT_URL");
    if (!mgmt)
        fail_msg("SLUICE_MGMT_URL is unset: eval \"$(scripts/stack.sh env)\" first");
    char url[512], user[256] = "guest:guest";
    snprintf(url, sizeof url, "%s%sapi/vhosts/" LIMIT_VHOST, mgmt,
             mgmt[0] && mgmt[strlen(mgmt) - 1] == '/' ? "" : "/");
    const char *from = strstr(harness_amqp_url(), "://");
    const char *at = from ? strchr(from + 3, '@') : NULL;
    if (at && (size_t)(at - from - 3) < sizeof user)
        snprintf(user, sizeof user, "%.*s", (int)(at - from - 3), from + 3);
    const char *argv[] = {"curl", "-fsS", "-u", user, "-X", method, url, NULL};
    char err[2048];
    if (harness_run(argv, err, sizeof err, TIMEOUT_MS) != 0 && strcmp(method, "PUT") == 0)
        fail_msg("creating vhost " LIMIT_VHOST ": %s", err);
}

/* Messages in sluice.dead of the vhost at url. */
static long dead_letters(const char *url)
{
    char err[512];
    mq_conn *c = mq_connect(url, 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("RabbitMQ vhost " LIMIT_VHOST ": %s", err);
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes("sluice.dead"), 1, 0, 0, 0, amqp_empty_table);
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), "passive declare", err, sizeof err) != 0)
        fail_msg("%s", err);
    long n = (long)ok->message_count;
    mq_close(c);
    return n;
}

static int dead_letter_arrived(void *url)
{
    return dead_letters(url) > 0;
}

/* Publishes one message to sluice.q.limit, then takes it and returns it
 * (basic.reject with requeue) up to `returns` times. Returns how many
 * times it was delivered before it left the queue (returns + 1 if it never
 * did); *dead says whether it then sat in sluice.dead. */
static int deliveries_until_gone(const char *url, int returns, long *dead)
{
    char err[512];
    mq_conn *c = mq_connect(url, 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("RabbitMQ vhost " LIMIT_VHOST ": %s", err);
    amqp_connection_state_t st = mq_amqp(c);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    amqp_confirm_select(st, MQ_CHANNEL);
    if (mq_check(c, amqp_get_rpc_reply(st), "confirm.select", err, sizeof err) != 0)
        fail_msg("%s", err);
    if (amqp_basic_publish(st, MQ_CHANNEL, amqp_cstring_bytes(""),
                           amqp_cstring_bytes("sluice.q.limit"), 0, 0, &props,
                           amqp_cstring_bytes("{\"n\":1}")) != AMQP_STATUS_OK)
        fail_msg("publishing to sluice.q.limit failed");
    amqp_frame_t f;
    if (amqp_simple_wait_frame(st, &f) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD ||
        f.payload.method.id != AMQP_BASIC_ACK_METHOD)
        fail_msg("the publish to sluice.q.limit was not confirmed");
    int delivered = 0;
    while (delivered <= returns) {
        amqp_rpc_reply_t r =
            amqp_basic_get(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.q.limit"), 0);
        if (mq_check(c, r, "basic.get", err, sizeof err) != 0)
            fail_msg("%s", err);
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break; /* dead-lettered: the requeue is synchronous in the queue */
        uint64_t tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
        amqp_message_t msg;
        if (mq_check(c, amqp_read_message(st, MQ_CHANNEL, &msg, 0), "reading", err, sizeof err))
            fail_msg("%s", err);
        amqp_destroy_message(&msg);
        delivered++;
        if (amqp_basic_reject(st, MQ_CHANNEL, tag, 1) != AMQP_STATUS_OK)
            fail_msg("basic.reject failed");
    }
    mq_close(c);
    /* A message that left the queue reaches sluice.dead asynchronously. */
    if (delivered <= returns)
        harness_wait_for(dead_letter_arrived, (void *)url, 5000);
    *dead = dead_letters(url);
    return delivered;
}

/* Quorum queues: --delivery-limit 0 means no limit on RabbitMQ 3.x and 4
 * alike (RabbitMQ 4 would otherwise apply its default of 20), and a limit
 * of 3 dead-letters the message after its third delivery. */
static void test_quorum_delivery_limit(void **state)
{
    (void)state;
    const char *base = harness_amqp_url();
    char url[512];
    size_t len = strlen(base);
    const char *rest = strstr(base, "://");
    rest = rest ? strchr(rest + 3, '/') : NULL;
    if (rest) /* a vhost in the stack's URL: replace it */
        len = (size_t)(rest - base);
    snprintf(url, sizeof url, "%.*s/" LIMIT_VHOST, (int)len, base);

    static const struct {
        const char *limit;
        int returns;    /* how often the message is taken back */
        int deliveries; /* deliveries before it leaves the queue */
        long dead;      /* then in sluice.dead */
    } cases[] = {
        {"0", 25, 26, 0}, /* more than RabbitMQ 4's default of 20 */
        {"3", 25, 4, 1},  /* 3 returns allowed, the 4th dead-letters */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        limit_vhost("DELETE"); /* an earlier failed run's */
        limit_vhost("PUT");
        const char *argv[] = {
            harness_bin("sluice-setup"), "--amqp-url",   url,         "--queue-type", "quorum",
            "--delivery-limit",          cases[i].limit, "--sources", "limit",        NULL};
        char err[8192];
        int rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
        if (rc != 0) {
            limit_vhost("DELETE");
            fail_msg("sluice-setup --delivery-limit %s: exit %d: %s", cases[i].limit, rc, err);
        }
        long dead;
        int delivered = deliveries_until_gone(url, cases[i].returns, &dead);
        limit_vhost("DELETE");
        if (delivered != cases[i].deliveries || dead != cases[i].dead)
            fail_msg("--delivery-limit %s: %d deliveries (expected %d), %ld in sluice.dead "
                     "(expected %ld)",
                     cases[i].limit, delivered, cases[i].deliveries, dead, cases[i].dead);
    }
}

static void test_bad_usage_exits_2(void **state)
{
    (void)state;
    static const struct {
        const char *args[3];
        const char *message;
    } cases[] = {
        {{"--queue-type", "stream"}, "queue_type must be classic or quorum"},
        {{"--sources", "Bad.Name"}, "bad source name 'Bad.Name'"},
        {{"--frobnicate", "1"}, "unknown flag '--frobnicate'"},
        {{"--sources", " , "}, "sources is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[] = {harness_bin("sluice-setup"), cases[i].args[0], cases[i].args[1],
                              NULL};
        char err[4096];
        assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 2);
        if (!strstr(err, cases[i].message))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].message);
    }
}

static void test_unreachable_servers_fail_clearly(void **state)
{
    (void)state;
    const char *argv[] = {harness_bin("sluice-setup"), "--amqp-url",
                          "amqp://guest:secret@127.0.0.1:1/", NULL};
    char err[4096];
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 1);
    assert_non_null(strstr(err, "cannot reach RabbitMQ"));
    assert_null(strstr(err, "secret")); /* passwords never reach the logs */

    const char *pg_argv[] = {harness_bin("sluice-setup"), "--pg-dsn",
                             "postgresql://sluice@127.0.0.1:1/sluice", NULL};
    assert_int_equal(harness_run(pg_argv, err, sizeof err, TIMEOUT_MS), 1);
    assert_non_null(strstr(err, "cannot reach PostgreSQL"));
}

static void test_help_exits_0(void **state)
{
    (void)state;
    static const char *const tools[] = {"sluice-setup", "sluice-producer", "sluice-worker",
                                        "sluice-notifier"};
    for (size_t i = 0; i < sizeof tools / sizeof *tools; i++) {
        const char *argv[] = {harness_bin(tools[i]), "--help", NULL};
        assert_int_equal(harness_run(argv, NULL, 0, TIMEOUT_MS), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_twice_changes_nothing),
        cmocka_unit_test(test_conflicting_queue_is_refused),
        cmocka_unit_test(test_quorum_delivery_limit),
        cmocka_unit_test(test_bad_usage_exits_2),
        cmocka_unit_test(test_unreachable_servers_fail_clearly),
        cmocka_unit_test(test_help_exits_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
