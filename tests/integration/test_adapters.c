/* Integration tests of the source adapters end to end: each adapter's
 * events go through the real producer, RabbitMQ, the worker and
 * PostgreSQL. The http sources poll a real HTTP server on loopback
 * (fakehttp.c); the file source follows a real file while it is
 * appended, rotated and truncated; the stdin source reads a pipe. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakehttp.h"
#include "harness.h"

#define TIMEOUT_MS 120000

static const char *const sources[] = {"h_array",   "h_wrapped", "h_ndjson", "h_flaky", "h_auth",
                                      "h_missing", "h_slow",    "f_log",    "s_pipe"};
#define NSOURCES (sizeof sources / sizeof *sources)
#define SOURCE_LIST "h_array,h_wrapped,h_ndjson,h_flaky,h_auth,h_missing,h_slow,f_log,s_pipe"

static void append_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static pid_t start_worker(const char *log)
{
    const char *argv[] = {harness_bin("sluice-worker"), "--sources", SOURCE_LIST,
                          "--flush-interval-ms",        "20",        NULL};
    return harness_spawn(argv, log);
}

static void stop(pid_t pid, int expected_rc, const char *log)
{
    kill(pid, SIGTERM);
    int rc = harness_wait(pid, TIMEOUT_MS);
    if (rc != expected_rc) {
        char *text = harness_slurp(log);
        fail_msg("exit %d, expected %d; log:\n%s", rc, expected_rc, text ? text : "");
    }
}

static void new_log(char *path, size_t cap, const char *name)
{
    snprintf(path, cap, "%s/%s.log", harness_workdir(), name);
    unlink(path);
}

/* ------------------------------------------------------------------ http */

static fake_http *server;

static void route(const fake_call *req, fake_reply *resp, void *arg)
{
    (void)arg;
    resp->status = 200;
    if (strcmp(req->path, "/array") == 0) {
        if (strstr(req->headers, "If-None-Match: \"v1\"")) {
            resp->status = 304;
            return;
        }
        resp->headers[0].name = "ETag";
        resp->headers[0].value = "\"v1\"";
        resp->body = "[{\"n\":1,\"k\":\"array\",\"big\":123456789012345678901234567890},\n"
                     " 42, {\"n\":2,\"k\":\"array\",\"s\":\"a\\\"b\\u00e9/\"}]";
    } else if (strcmp(req->path, "/wrapped") == 0) {
        if (strstr(req->headers, "If-Modified-Since: Tue, 24 Nov 2026 00:00:00 GMT")) {
            resp->status = 304;
            return;
        }
        resp->headers[0].name = "Last-Modified";
        resp->headers[0].value = "Tue, 24 Nov 2026 00:00:00 GMT";
        resp->body = "{\"meta\":{\"items\":\"not these\"},\"data\":{\"page\":1,\"items\":["
                     "{\"n\":1,\"k\":\"wrapped\"},{\"n\":2,\"k\":\"wrapped\"},"
                     "{\"n\":3,\"k\":\"wrapped\"}]}}";
    } else if (strcmp(req->path, "/ndjson") == 0) {
        resp->body = "{\"n\":1,\"k\":\"ndjson\"}\nnot json\n\n{\"n\":2,\"k\":\"ndjson\"}\n";
    } else if (strcmp(req->path, "/flaky") == 0) {
        if (req->hit <= 2) {
            resp->status = 503;
            resp->body = "{\"error\":\"busy\"}";
            return;
        }
        resp->body = "[{\"n\":1,\"k\":\"flaky\"}]";
    } else if (strcmp(req->path, "/slow") == 0) {
        if (req->hit == 1)
            resp->delay_ms = 4000; /* beyond the source's timeout_ms */
        resp->body = "[{\"n\":1,\"k\":\"slow\"}]";
    } else if (strcmp(req->path, "/auth") == 0) {
        if (!strstr(req->headers, "Authorization: Bearer s3cret-token")) {
            resp->status = 401;
            return;
        }
        resp->body = "[{\"n\":1,\"k\":\"auth\"}]";
    } else {
        resp->status = 404;
        resp->body = "{\"error\":\"no such thing\"}";
    }
}

typedef struct hits_query {
    const char *path;
    unsigned hits;
} hits_query;

static int hits_reached(void *arg)
{
    hits_query *q = arg;
    return fake_http_hits(server, q->path) >= q->hits;
}

static int queue_reached(void *arg)
{
    return queue_ready("sluice.q.f_log") >= *(long *)arg;
}

static void write_http_config(const char *path, int port)
{
    char text[4096];
    snprintf(text, sizeof text,
             "# http sources against the test's loopback server\n"
             "progress_interval_ms = 0\n"
             "[source h_array]\nadapter = http\nurl = http://127.0.0.1:%d/array\n"
             "interval_ms = 100\n"
             "[source h_wrapped]\nadapter = http\nurl = http://127.0.0.1:%d/wrapped\n"
             "format = object\nitems_pointer = /data/items\ninterval_ms = 100\n"
             "id_pointer = /n\n"
             "[source h_ndjson]\nadapter = http\nurl = http://127.0.0.1:%d/ndjson\n"
             "format = ndjson\ninterval_ms = 100\n"
             "[source h_flaky]\nadapter = http\nurl = http://127.0.0.1:%d/flaky\n"
             "interval_ms = 100\nretry_base_ms = 50\nretry_max_ms = 200\n"
             "[source h_auth]\nadapter = http\nurl = http://127.0.0.1:%d/auth\n"
             "interval_ms = 100\nheader = Authorization: Bearer ${SLUICE_TEST_API_TOKEN}\n"
             "header = X-Client: sluice-test\n"
             "[source h_missing]\nadapter = http\nurl = http://127.0.0.1:%d/missing\n"
             "interval_ms = 100\n"
             "[source h_slow]\nadapter = http\nurl = http://127.0.0.1:%d/slow\n"
             "interval_ms = 100\ntimeout_ms = 2500\nretry_base_ms = 50\n",
             port, port, port, port, port, port, port);
    harness_write_file(path, text);
}

static long long source_count(const char *source)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE source = '%s'", source);
    return pg_scalar(sql);
}

/* Every http shape lands in the warehouse, byte for byte; conditional
 * requests get 304s; 5xx are retried; a 404 stops only its own source,
 * once, with a clear line; the token comes from the environment. */
static void test_http_sources(void **state)
{
    (void)state;
    server = fake_http_start(0);
    assert_non_null(server);
    fake_http_route(server, route, NULL);
    char config[512], log[512];
    snprintf(config, sizeof config, "%s/http.conf", harness_workdir());
    new_log(log, sizeof log, "http");
    write_http_config(config, fake_http_port(server));
    setenv("SLUICE_TEST_API_TOKEN", "s3cret-token", 1);

    pid_t worker = start_worker(log);
    const char *argv[] = {harness_bin("sluice-producer"), "--config", config, NULL};
    pid_t producer = harness_spawn(argv, log);

    /* The others are stored while h_slow's first request still hangs (it
     * times out after 2.5 s, then is retried). */
    harness_wait_sql("SELECT count(*) FROM events WHERE source LIKE 'h\\_%'", 2 + 3 + 2 + 1 + 1,
                     TIMEOUT_MS, log);
    assert_int_equal(fake_http_hits(server, "/slow"), 1);
    assert_int_equal(source_count("h_slow"), 0);
    harness_wait_sql("SELECT count(*) FROM events WHERE source = 'h_slow'", 1, TIMEOUT_MS, log);
    /* Several polls each, answered 304 once the validators are known. */
    hits_query want[] = {{"/array", 3}, {"/wrapped", 3}, {"/ndjson", 3}, {"/flaky", 4}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!harness_wait_for(hits_reached, &want[i], TIMEOUT_MS))
            fail_msg("%s was asked %u times, waited for %u", want[i].path,
                     fake_http_hits(server, want[i].path), want[i].hits);
    }
    stop(producer, 1, log); /* 1: one source (h_missing) failed */
    stop(worker, 0, log);

    assert_int_equal(source_count("h_array"), 2);
    assert_int_equal(source_count("h_wrapped"), 3);
    assert_int_equal(source_count("h_ndjson"), 2);
    assert_int_equal(source_count("h_flaky"), 1);
    assert_int_equal(source_count("h_auth"), 1);
    assert_int_equal(source_count("h_missing"), 0);
    assert_true(fake_http_saw_header(server, "/array", "If-None-Match: \"v1\""));
    assert_true(fake_http_saw_header(server, "/wrapped",
                                     "If-Modified-Since: Tue, 24 Nov 2026 00:00:00 GMT"));
    assert_true(fake_http_saw_header(server, "/auth", "X-Client: sluice-test"));
    /* A 404 is asked once, not again and again. */
    assert_int_equal(fake_http_hits(server, "/missing"), 1);

    /* Items are stored as served: the big integer and the escapes. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'h_array' AND "
                               "payload->>'big' = '123456789012345678901234567890'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'h_array' AND "
                               "payload->>'s' = E'a\"b\\u00e9/'"),
                     1);
    /* id_pointer makes the message id. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE msg_id IN "
                               "('h_wrapped:1', 'h_wrapped:2', 'h_wrapped:3')"),
                     3);

    char *text = harness_slurp(log);
    assert_non_null(strstr(text, "source=h_array at=\"item 2 of response 1\" "
                                 "reason=not_an_object"));
    assert_non_null(strstr(text, "source=h_ndjson at=\"item 2 of response 1\" "
                                 "reason=invalid_json"));
    assert_non_null(strstr(text, "source=h_flaky"));
    assert_non_null(strstr(text, "error=\"HTTP 503\""));
    assert_non_null(strstr(text, "source=h_slow url=http://127.0.0.1:"));
    assert_non_null(strstr(text, "error=\"Timeout was reached\""));
    assert_non_null(strstr(text, "source failed source=h_missing error=\"source h_missing: GET "
                                 "http://127.0.0.1:"));
    assert_non_null(strstr(text, "answered HTTP 404"));
    assert_null(strstr(text, "s3cret-token"));
    free(text);
    fake_http_stop(server);
    server = NULL;
}

/* Bad http settings are usage errors naming the file and line. */
static void test_http_config_errors(void **state)
{
    (void)state;
    char config[512], err[4096];
    snprintf(config, sizeof config, "%s/bad-http.conf", harness_workdir());
    harness_write_file(config, "[source h_auth]\nadapter = http\nurl = http://127.0.0.1:1/\n"
                               "header = Authorization: Bearer ${SLUICE_TEST_UNSET_VARIABLE}\n");
    unsetenv("SLUICE_TEST_UNSET_VARIABLE");
    const char *argv[] = {harness_bin("sluice-producer"), "--config", config, NULL};
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 2);
    assert_non_null(strstr(err, "bad-http.conf:4: source h_auth: header needs environment "
                                "variable SLUICE_TEST_UNSET_VARIABLE"));

    harness_write_file(config, "[source h_auth]\nadapter = http\nurl = http://127.0.0.1:1/\n"
                               "intervall_ms = 5\n");
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 2);
    assert_non_null(strstr(err, "bad-http.conf:4: source h_auth: adapter http has no setting "
                                "'intervall_ms'"));

    harness_write_file(config, "[source h_auth]\nadapter = htp\n");
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 2);
    assert_non_null(strstr(err, "bad-http.conf:2: source h_auth: unknown adapter 'htp'"));
}

/* ------------------------------------------------------------------ stdin */

static void test_stdin_source(void **state)
{
    (void)state;
    char input[512], config[512], log[512], cmd[4096];
    snprintf(input, sizeof input, "%s/input.ndjson", harness_workdir());
    snprintf(config, sizeof config, "%s/stdin.conf", harness_workdir());
    new_log(log, sizeof log, "stdin");
    FILE *f = fopen(input, "w");
    assert_non_null(f);
    for (int i = 0; i < 3000; i++) {
        fprintf(f, "{\"seq\":%d,\"from\":\"pipe\"}\n", i);
        if (i == 10)
            fputs("[\"not\",\"an\",\"object\"]\n", f); /* line 12 */
        if (i == 20)
            fputs("{broken\n\n   \n", f); /* line 23, then blank lines */
    }
    fputs("{\"seq\":3000,\"from\":\"pipe\",\"last\":\"no newline\"}", f);
    assert_int_equal(fclose(f), 0);
    harness_write_file(config, "[source s_pipe]\nadapter = stdin\n");
    snprintf(cmd, sizeof cmd, "exec %s --config %s --progress-interval-ms 0 < %s",
             harness_bin("sluice-producer"), config, input);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char err[65536];

    /* Exits 0 at the end of input, all confirmed: the queue holds them all. */
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    assert_int_equal(queue_ready("sluice.q.s_pipe"), 3001);
    assert_non_null(strstr(err, "source=s_pipe at=\"line 12\" reason=not_an_object"));
    assert_non_null(strstr(err, "source=s_pipe at=\"line 23\" reason=invalid_json"));
    assert_non_null(strstr(err, "confirmed=3001 outstanding=0"));
    assert_non_null(strstr(err, "skipped=2"));

    /* The same input again: the same message ids, nothing new stored. */
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    const char *worker[] = {
        harness_bin("sluice-worker"), "--sources", SOURCE_LIST, "--idle-exit-ms", "1500", NULL};
    assert_int_equal(harness_run(worker, err, sizeof err, TIMEOUT_MS), 0);
    assert_int_equal(source_count("s_pipe"), 3001);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT (payload->>'seq')::int) FROM events "
                               "WHERE source = 's_pipe'"),
                     3001);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'last' = "
                               "'no newline'"),
                     1);
    assert_int_equal(queue_ready("sluice.q.s_pipe"), 0);

    /* A source without a queue is named at start; its messages go to
     * sluice.q.unrouted through the alternate exchange, so they are
     * confirmed, not returned (test_edges follows them into the warehouse). */
    harness_write_file(config, "[source s_nowhere]\nadapter = stdin\n");
    harness_write_file(input, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    assert_non_null(strstr(err, "sources without a queue: s_nowhere (their events go to "
                                "sluice.q.unrouted"));
    assert_non_null(strstr(err, "confirmed=3 outstanding=0"));
    assert_non_null(strstr(err, "returned=0"));
    assert_int_equal(queue_ready("sluice.q.unrouted"), 3);
}

/* ------------------------------------------------------------------ file */

static void append_seq(const char *path, int from, int to, const char *stage)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    for (int i = from; i < to; i++)
        fprintf(f, "{\"seq\":%d,\"stage\":\"%s\"}\n", i, stage);
    assert_int_equal(fclose(f), 0);
}

#define FILE_COUNT "SELECT count(*) FROM events WHERE source = 'f_log'"

static void write_file_config(const char *config, const char *path, const char *checkpoint)
{
    char text[2048];
    snprintf(text, sizeof text,
             "progress_interval_ms = 0\ncheckpoint_interval_ms = 100\n"
             "[source f_log]\nadapter = file\npath = %s\ncheckpoint = %s\npoll_ms = 50\n",
             path, checkpoint);
    harness_write_file(config, text);
}

static void test_file_follow_rotate_truncate(void **state)
{
    (void)state;
    char path[512], rotated[512], config[512], checkpoint[512], log[512];
    snprintf(path, sizeof path, "%s/app.ndjson", harness_workdir());
    snprintf(rotated, sizeof rotated, "%s/app.ndjson.1", harness_workdir());
    snprintf(config, sizeof config, "%s/file.conf", harness_workdir());
    snprintf(checkpoint, sizeof checkpoint, "%s/f_log.offset", harness_workdir());
    new_log(log, sizeof log, "file");
    unlink(path);
    unlink(rotated);
    unlink(checkpoint);
    write_file_config(config, path, checkpoint);

    /* The file does not exist yet: the producer waits for it. */
    pid_t worker = start_worker(log);
    const char *argv[] = {harness_bin("sluice-producer"), "--config", config, NULL};
    pid_t producer = harness_spawn(argv, log);
    harness_wait_log(log, "following file source=f_log", 1, TIMEOUT_MS);
    append_seq(path, 0, 100, "first");
    harness_wait_sql(FILE_COUNT, 100, TIMEOUT_MS, log);

    /* Appends, one line written in two pieces, and a line that is not an
     * object in between. */
    append_seq(path, 100, 150, "append");
    append_file(path, "{\"seq\":150,");
    harness_wait_sql(FILE_COUNT, 150, TIMEOUT_MS, log);
    append_file(path, "\"stage\":\"split\"}\n[1,2,3]\n");
    append_seq(path, 151, 200, "append");
    harness_wait_sql(FILE_COUNT, 200, TIMEOUT_MS, log);

    /* Rotation: lines written just before the rename are read from the old
     * file before the new one is followed. */
    append_seq(path, 200, 250, "before-rotation");
    assert_int_equal(rename(path, rotated), 0);
    append_seq(path, 250, 300, "after-rotation");
    harness_wait_sql(FILE_COUNT, 300, TIMEOUT_MS, log);
    harness_wait_log(log, "file rotated source=f_log", 1, TIMEOUT_MS);

    /* Truncation in place: the file is followed from its start again. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    close(fd);
    harness_wait_log(log, "file truncated source=f_log", 1, TIMEOUT_MS);
    append_seq(path, 300, 340, "after-truncation");
    harness_wait_sql(FILE_COUNT, 340, TIMEOUT_MS, log);
    /* A bad last line: reported once, and covered by the checkpoint, so
     * the restart below does not report it again. */
    append_file(path, "{\"seq\": oops}\n");
    harness_wait_log(log, "reason=invalid_json", 1, TIMEOUT_MS);

    stop(producer, 0, log);
    stop(worker, 0, log);
    assert_int_equal(pg_scalar(FILE_COUNT), 340);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT (payload->>'seq')::int) FROM events "
                               "WHERE source = 'f_log' AND (payload->>'seq')::int < 340"),
                     340);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'stage' = 'split'"), 1);
    char *text = harness_slurp(log);
    assert_non_null(strstr(text, "source=f_log at=\"line 152 (byte"));
    assert_non_null(strstr(text, "reason=not_an_object"));
    free(text);

    /* The checkpoint names the current file and the offset after its last
     * line; a restart sends nothing again. */
    char *cp = harness_slurp(checkpoint);
    assert_non_null(cp);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char expect[128];
    snprintf(expect, sizeof expect, " %llu %lld\ncurrent", (unsigned long long)st.st_ino,
             (long long)st.st_size); /* the bad line included */
    int found = strstr(cp, expect) != NULL;
    free(cp);
    if (!found)
        fail_msg("checkpoint does not end with '%s' (inode, size of %s)", expect, path);
    queues_purge(sources, NSOURCES);
    producer = harness_spawn(argv, log);
    append_seq(path, 340, 345, "after-restart");
    long five = 5;
    assert_true(harness_wait_for(queue_reached, &five, TIMEOUT_MS));
    stop(producer, 0, log);
    assert_int_equal(queue_ready("sluice.q.f_log"), 5);
    assert_true(harness_log_count(log, "reason=invalid_json") < 2);
}

static int f_log_empty(void *arg)
{
    (void)arg;
    return queue_ready("sluice.q.f_log") == 0;
}

static long long last_count = -1;
static int count_steady(void *arg)
{
    (void)arg;
    long long now = pg_scalar(FILE_COUNT), was = last_count;
    last_count = now;
    return now == was;
}

/* Killed with SIGKILL in the middle of a file and started again: every line
 * ends in the warehouse exactly once (what was sent twice was absorbed). */
static void test_file_sigkill_restart(void **state)
{
    (void)state;
    char path[512], config[512], checkpoint[512], log[512];
    snprintf(path, sizeof path, "%s/kill.ndjson", harness_workdir());
    snprintf(config, sizeof config, "%s/kill.conf", harness_workdir());
    snprintf(checkpoint, sizeof checkpoint, "%s/kill.offset", harness_workdir());
    new_log(log, sizeof log, "kill");
    unlink(path);
    unlink(checkpoint);
    write_file_config(config, path, checkpoint);
    append_seq(path, 0, 20000, "bulk");

    pid_t worker = start_worker(log);
    const char *argv[] = {
        harness_bin("sluice-producer"), "--config", config, "--rate", "4000", NULL};
    pid_t producer = harness_spawn(argv, log);
    harness_wait_sql(FILE_COUNT, 3000, TIMEOUT_MS, log);
    kill(producer, SIGKILL);
    assert_int_equal(harness_wait(producer, TIMEOUT_MS), -1);
    /* Everything the killed producer published, stored: the queue empty
     * and the count steady over a few of the worker's 20 ms flushes. */
    assert_true(harness_wait_for(f_log_empty, NULL, TIMEOUT_MS));
    assert_true(harness_wait_for(count_steady, NULL, TIMEOUT_MS));
    /* The kill struck mid-file: some of the file's 20,000 lines never left
     * the killed producer, so the restarted one must send them. */
    long long published = pg_scalar(FILE_COUNT);
    if (published <= 0 || published >= 20000)
        fail_msg("the producer was killed after publishing %lld of 20000 lines", published);
    append_seq(path, 20000, 21000, "while-down");

    const char *again[] = {harness_bin("sluice-producer"), "--config", config, NULL};
    producer = harness_spawn(again, log);
    harness_wait_sql(FILE_COUNT, 21000, TIMEOUT_MS, log);
    stop(producer, 0, log);
    stop(worker, 0, log);
    assert_int_equal(pg_scalar(FILE_COUNT), 21000);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT (payload->>'seq')::int) FROM events "
                               "WHERE source = 'f_log'"),
                     21000);
    assert_int_equal(pg_scalar("SELECT min((payload->>'seq')::int) FROM events "
                               "WHERE source = 'f_log'"),
                     0);
    assert_int_equal(pg_scalar("SELECT max((payload->>'seq')::int) FROM events "
                               "WHERE source = 'f_log'"),
                     20999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_http_sources),
        harness_unit_test(test_http_config_errors),
        harness_unit_test(test_stdin_source),
        harness_unit_test(test_file_follow_rotate_truncate),
        harness_unit_test(test_file_sigkill_restart),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){"--sources", SOURCE_LIST, NULL},
        .sources = sources,
        .nsources = NSOURCES,
        .workdir = 1,
    };
    return harness_run_tests(tests, &options);
}
