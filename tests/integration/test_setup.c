/* Integration tests of sluice-setup against the real RabbitMQ and
 * PostgreSQL: idempotence, migrations once each, conflicts and bad usage. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

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
    queue_declare_transient("sluice.q.conflict");
    const char *argv[] = {harness_bin("sluice-setup"), "--sources", "conflict", NULL};
    char err[8192];
    int rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
    queue_delete("sluice.q.conflict");
    assert_int_equal(rc, 2);
    const char *line = strstr(err, "sluice-setup: queue sluice.q.conflict exists with other "
                                   "arguments");
    if (!line)
        fail_msg("unexpected error output: %s", err);
    assert_non_null(strstr(line, "durable"));
    const char *end = strchr(line, '\n');
    assert_true(end && end[1] == '\0'); /* one line, and the last */
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
        cmocka_unit_test(test_bad_usage_exits_2),
        cmocka_unit_test(test_unreachable_servers_fail_clearly),
        cmocka_unit_test(test_help_exits_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
