/* A commit whose outcome the worker never learns: the connection to
 * PostgreSQL breaks after the server committed a batch and before its
 * answer reaches the worker. A TCP relay between the worker and the
 * stack's PostgreSQL passes COMMIT on, waits for the server's
 * CommandComplete (the batch is committed then), and closes the worker's
 * side instead of passing the answer back. The worker must not
 * acknowledge that batch (it has not seen the commit); the broker
 * redelivers it, and the idempotency key (event_ids) makes the copies
 * duplicates: every event is stored exactly once, and the worker counts
 * the redelivered batch as duplicates. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "harness.h"

#define PER_SOURCE 2500
#define TOTAL (4 * PER_SOURCE)
#define BATCH 500
/* The commits the relay lets through before it cuts one. */
#define CUT_AFTER 3

/* A simple-protocol COMMIT (what the worker sends) and the server's
 * CommandComplete for it. */
static const char commit_query[] = "Q\0\0\0\x0b"
                                   "COMMIT";
static const char commit_done[] = "C\0\0\0\x0b"
                                  "COMMIT";

typedef struct relay {
    int listener, port;
    struct sockaddr_in upstream;
    pthread_mutex_t lock;
    int commits_seen; /* COMMITs passed to the server */
    int cut;          /* connections cut after a COMMIT the server completed */
    int stop;
    pthread_t thread;
} relay;

static relay R;

static int has(const char *buf, ssize_t n, const char *what, size_t len)
{
    return n >= (ssize_t)len && memmem(buf, (size_t)n, what, len) != NULL;
}

/* Relays one client connection until either side closes it, or until the
 * server completes the COMMIT it was told to cut after: then the client's
 * socket is closed without the answer. */
static void serve_one(int client)
{
    int server = socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0 || connect(server, (struct sockaddr *)&R.upstream, sizeof R.upstream) != 0) {
        close(client);
        if (server >= 0)
            close(server);
        return;
    }
    int cut_pending = 0;
    char buf[65536];
    struct pollfd fds[2] = {{.fd = client, .events = POLLIN}, {.fd = server, .events = POLLIN}};
    while (!__atomic_load_n(&R.stop, __ATOMIC_ACQUIRE)) {
        if (poll(fds, 2, 200) < 0)
            break;
        if (fds[0].revents) {
            ssize_t n = read(client, buf, sizeof buf);
            if (n <= 0)
                break;
            if (has(buf, n, commit_query, sizeof commit_query - 1)) {
                pthread_mutex_lock(&R.lock);
                if (++R.commits_seen == CUT_AFTER + 1)
                    cut_pending = 1;
                pthread_mutex_unlock(&R.lock);
            }
            if (write(server, buf, (size_t)n) != n)
                break;
        }
        if (fds[1].revents) {
            ssize_t n = read(server, buf, sizeof buf);
            if (n <= 0)
                break;
            if (cut_pending && has(buf, n, commit_done, sizeof commit_done - 1)) {
                pthread_mutex_lock(&R.lock);
                R.cut++;
                pthread_mutex_unlock(&R.lock);
                break; /* committed; the worker never hears it */
            }
            if (write(client, buf, (size_t)n) != n)
                break;
        }
    }
    close(client);
    close(server);
}

/* One connection at a time is all a single worker opens to PostgreSQL. */
static void *relay_main(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&R.stop, __ATOMIC_ACQUIRE)) {
        struct pollfd p = {.fd = R.listener, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int client = accept(R.listener, NULL, NULL);
        if (client >= 0)
            serve_one(client);
    }
    return NULL;
}

/* Where the stack's PostgreSQL listens (host and port of its DSN). */
static void upstream_of(const char *dsn, struct sockaddr_in *out)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    if (!opts)
        fail_msg("cannot parse SLUICE_PG_DSN: %s", err ? err : "?");
    const char *host = NULL, *hostaddr = NULL, *port = "5432";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (o->val && strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (o->val && strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    if (hostaddr)
        host = hostaddr;
    if (!host || strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        fail_msg("this test needs the stack's PostgreSQL on an IPv4 address, not '%s'", host);
    PQconninfoFree(opts);
}

static void relay_start(void)
{
    memset(&R, 0, sizeof R);
    pthread_mutex_init(&R.lock, NULL);
    upstream_of(harness_pg_dsn(), &R.upstream);
    R.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(R.listener >= 0);
    assert_int_equal(bind(R.listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(R.listener, 8), 0);
    assert_int_equal(getsockname(R.listener, (struct sockaddr *)&a, &len), 0);
    R.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&R.thread, NULL, relay_main, NULL), 0);
}

static void relay_stop(void)
{
    __atomic_store_n(&R.stop, 1, __ATOMIC_RELEASE);
    pthread_join(R.thread, NULL);
    close(R.listener);
    pthread_mutex_destroy(&R.lock);
}

/* A number after `key` on the last line holding `line_text`, or -1. */
static long long logged_number(const char *log, const char *line_text, const char *key)
{
    char *text = harness_slurp(log);
    long long v = -1;
    for (char *p = text; p && (p = strstr(p, line_text)); p++) {
        char *eol = strchr(p, '\n'), *k = strstr(p, key);
        if (k && (!eol || k < eol))
            v = atoll(k + strlen(key));
    }
    free(text);
    return v;
}

static void test_commit_of_unknown_outcome_is_stored_once(void **state)
{
    (void)state;
    harness_reset();
    char log[] = "/tmp/sluice-commit-unknown-XXXXXX";
    close(mkstemp(log));
    char err[4096];
    const char *produce[] = {harness_bin("sluice-producer"), "--count", "2500", "--seed", "23",
                             "--progress-interval-ms",       "0",       NULL};
    if (harness_run(produce, err, sizeof err, 120000) != 0)
        fail_msg("producer failed: %s", err);
    assert_int_equal(harness_backlog(), TOTAL);

    relay_start();
    char dsn[256];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d user=sluice dbname=sluice connect_timeout=5",
             R.port);
    /* The relay's DSN names the stack's database: same user and name. */
    const char *argv[] = {harness_bin("sluice-worker"),
                          "--pg-dsn",
                          dsn,
                          "--workers",
                          "1",
                          "--batch-size",
                          "500",
                          "--idle-exit-ms",
                          "3000",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pid = harness_spawn(argv, log);
    int rc = harness_wait(pid, 300000);
    relay_stop();
    char *text = harness_slurp(log);
    if (rc != 0)
        fail_msg("the worker failed (%d); log:\n%s", rc, text ? text : "");
    free(text);

    /* The cut happened once, after the server had completed the commit. */
    assert_int_equal(R.cut, 1);
    assert_true(R.commits_seen > CUT_AFTER + 1);
    /* The worker saw a broken connection, not a verdict on the rows. */
    assert_int_equal(harness_log_count(log, "not ready, retrying"), 1);
    assert_int_equal(harness_log_count(log, "row by row"), 0);
    /* Stored once each; the cut batch came back and was absorbed. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), TOTAL);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT msg_id) FROM events"), TOTAL);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);
    long long stored = logged_number(log, "pool stopped", "stored=");
    long long duplicates = logged_number(log, "pool stopped", "duplicates=");
    /* Not acknowledged: the committed batch the worker never heard of
     * was redelivered whole and found stored. The worker counted it as
     * duplicates, not as stored; one that acked it before seeing the
     * commit would count no duplicates at all. */
    assert_true(duplicates >= 1 && duplicates <= BATCH);
    assert_int_equal(stored + duplicates, TOTAL);
    assert_int_equal(harness_backlog(), 0);
    assert_int_equal(queue_ready("sluice.dead"), 0);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_of_unknown_outcome_is_stored_once),
    };
    return cmocka_run_group_tests(tests, harness_group_setup, NULL);
}
