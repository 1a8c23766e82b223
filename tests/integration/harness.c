/*
 * harness: see harness.h. Failures call cmocka's fail_msg, so helpers can
 * be used inline in tests.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "event.h"
#include "fakehttp.h"
#include "mq.h"
#include "publisher.h"

#ifndef SLUICE_BIN_DIR
#error "SLUICE_BIN_DIR must name the build tree"
#endif

static const char *required_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: start the stack with scripts/stack.sh start and "
                 "eval \"$(scripts/stack.sh env)\" (./run test does both)",
                 name);
    return v;
}

const char *harness_amqp_url(void)
{
    return required_env("SLUICE_AMQP_URL");
}

const char *harness_pg_dsn(void)
{
    return required_env("SLUICE_PG_DSN");
}

int harness_port(int n)
{
    const char *url = harness_amqp_url();
    const char *colon = strrchr(url, ':');
    int amqp_port = colon ? atoi(colon + 1) : 5672;
    return 20000 + (amqp_port % 1000) * 10 + n;
}

const char *harness_port_text(int n)
{
    static char texts[4][16];
    static unsigned next;
    char *text = texts[next++ % 4];
    snprintf(text, sizeof texts[0], "%d", harness_port(n));
    return text;
}

const char *harness_bin(const char *name)
{
    /* A few buffers in turn, so one argv can hold several paths. */
    static char paths[8][4096];
    static unsigned next;
    char *path = paths[next++ % 8];
    static const struct {
        const char *name, *dir;
    } dirs[] = {{"sluice-setup", "broker-setup"},
                {"sluice-producer", "producer"},
                {"sluice-worker", "workers"},
                {"sluice-notifier", "notifier"},
                {"sluice-ctl", "ctl"}};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        if (strcmp(dirs[i].name, name) == 0) {
            snprintf(path, sizeof paths[0], "%s/%s/%s", SLUICE_BIN_DIR, dirs[i].dir, name);
            return path;
        }
    }
    snprintf(path, sizeof paths[0], "%s", name); /* anything else: from PATH */
    return path;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static pid_t start(const char *const argv[], int err_fd)
{
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, STDIN_FILENO);
        if (err_fd >= 0) {
            dup2(err_fd, STDERR_FILENO);
            dup2(err_fd, STDOUT_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Processes started by harness_spawn and not reaped yet. */
static pid_t spawned[64];

static void forget_spawned(pid_t pid)
{
    for (size_t i = 0; i < sizeof spawned / sizeof *spawned; i++) {
        if (spawned[i] == pid)
            spawned[i] = 0;
    }
}

void harness_kill_spawned(void)
{
    for (size_t i = 0; i < sizeof spawned / sizeof *spawned; i++) {
        if (spawned[i] > 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
            spawned[i] = 0;
        }
    }
}

/* harness_wait, also filling *ru (may be NULL) with the child's resource
 * use, which on Linux covers the children it waited for too. */
static int wait_usage(pid_t pid, long timeout_ms, struct rusage *ru)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct rusage ignored;
    for (;;) {
        int status;
        pid_t r = wait4(pid, &status, WNOHANG, ru ? ru : &ignored);
        if (r == pid) {
            forget_spawned(pid);
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (r < 0)
            fail_msg("waitpid: %s", strerror(errno));
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            forget_spawned(pid);
            print_error("process %d killed after %ld ms\n", (int)pid, timeout_ms);
            return -1;
        }
        sleep_ms(20);
    }
}

int harness_wait(pid_t pid, long timeout_ms)
{
    return wait_usage(pid, timeout_ms, NULL);
}

int harness_wait_peak_rss(pid_t pid, long timeout_ms, long *peak_kb)
{
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int rc = wait_usage(pid, timeout_ms, &ru);
    *peak_kb = ru.ru_maxrss;
    return rc;
}

static int run_usage(const char *const argv[], char *err, size_t cap, long timeout_ms,
                     struct rusage *ru)
{
    char path[] = "/tmp/sluice-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp: %s", strerror(errno));
    pid_t pid = start(argv, fd);
    int rc = wait_usage(pid, timeout_ms, ru);
    if (err && cap) {
        ssize_t n = pread(fd, err, cap - 1, 0);
        err[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    unlink(path);
    return rc;
}

int harness_run(const char *const argv[], char *err, size_t cap, long timeout_ms)
{
    return run_usage(argv, err, cap, timeout_ms, NULL);
}

int harness_run_peak_rss(const char *const argv[], char *err, size_t cap, long timeout_ms,
                         long *peak_kb)
{
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int rc = run_usage(argv, err, cap, timeout_ms, &ru);
    *peak_kb = ru.ru_maxrss;
    return rc;
}

void harness_drain(const char *const extra[])
{
    const char *argv[16] = {harness_bin("sluice-worker"), "--idle-exit-ms", "1500",
                            "--metrics-port", "0"};
    size_t n = 5;
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof argv / sizeof *argv; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    static char err[16384];
    if (harness_run(argv, err, sizeof err, 5 * 60 * 1000) != 0)
        fail_msg("worker failed: %s", err);
}

pid_t harness_spawn(const char *const argv[], const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        fail_msg("%s: %s", log_path, strerror(errno));
    pid_t pid = start(argv, fd);
    close(fd);
    for (size_t i = 0; i < sizeof spawned / sizeof *spawned; i++) {
        if (spawned[i] == 0) {
            spawned[i] = pid;
            break;
        }
    }
    return pid;
}

int harness_wait_for(int (*cond)(void *), void *arg, long timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!cond(arg)) {
        if (mono_ms() >= deadline)
            return 0;
        sleep_ms(50);
    }
    return 1;
}

static PGconn *pg(void)
{
    static PGconn *db;
    if (db && PQstatus(db) == CONNECTION_OK)
        return db;
    PQfinish(db);
    db = PQconnectdb(harness_pg_dsn());
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("PostgreSQL: %s", PQerrorMessage(db));
    return db;
}

/* Runs sql, reconnecting once if the server went away since the last
 * query (the fault tests restart it). */
static PGresult *pg_query(const char *sql)
{
    PGconn *db = pg();
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && PQstatus(db) != CONNECTION_OK) {
        PQclear(r);
        r = PQexec(pg(), sql);
    }
    return r;
}

void pg_exec(const char *sql)
{
    PGresult *r = pg_query(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

void harness_refuse_marked_events(void)
{
    pg_exec("CREATE OR REPLACE FUNCTION harness_refuse() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " IF EXISTS (SELECT 1 FROM new_events WHERE payload ? 'refuse')"
            " THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NULL; END $$");
    pg_exec("CREATE TRIGGER harness_refuse AFTER INSERT ON events"
            " REFERENCING NEW TABLE AS new_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION harness_refuse()");
}

void harness_accept_events(void)
{
    pg_exec("DROP TRIGGER IF EXISTS harness_refuse ON events");
}

void harness_pace_storing(void)
{
    pg_exec("CREATE OR REPLACE FUNCTION harness_pace() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$");
    pg_exec("CREATE TRIGGER harness_pace BEFORE INSERT ON events"
            " FOR EACH STATEMENT EXECUTE FUNCTION harness_pace()");
}

void harness_unpace_storing(void)
{
    pg_exec("SET client_min_messages = warning;"
            " DROP TRIGGER IF EXISTS harness_pace ON events");
}

void harness_close_gate(void)
{
    pg_exec("CREATE TABLE IF NOT EXISTS harness_gate (closed boolean);"
            " INSERT INTO harness_gate VALUES (true)");
    /* Trigger names fire in order: harness_gate before harness_pace. */
    pg_exec("CREATE OR REPLACE FUNCTION harness_gate() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN"
            "  IF EXISTS (SELECT FROM harness_gate) THEN"
            "   PERFORM set_config('application_name', 'harness gate', false);"
            "   WHILE EXISTS (SELECT FROM harness_gate) LOOP PERFORM pg_sleep(0.05); END LOOP;"
            "   PERFORM set_config('application_name', '', false);"
            "  END IF;"
            "  RETURN NULL;"
            " END $$");
    pg_exec("CREATE TRIGGER harness_gate BEFORE INSERT ON events"
            " FOR EACH STATEMENT EXECUTE FUNCTION harness_gate()");
}

long harness_sessions_at_gate(void)
{
    return (long)pg_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'harness gate'");
}

void harness_open_gate(void)
{
    /* Opened first: dropping the trigger waits for the sessions in it. */
    pg_exec("DO $$ BEGIN IF to_regclass('harness_gate') IS NOT NULL THEN"
            " DELETE FROM harness_gate; END IF; END $$");
    pg_exec("SET client_min_messages = warning;"
            " DROP TRIGGER IF EXISTS harness_gate ON events; DROP TABLE IF EXISTS harness_gate");
}

void assert_generated_exactly(long long per_source)
{
    char got[1024], want[1024] = "";
    /* Per source: rows, distinct seqs, lowest and highest seq. */
    pg_text("SELECT coalesce(string_agg(format('%s:%s/%s/%s/%s', source, n, d, lo, hi), ' '"
            " ORDER BY source), '') FROM (SELECT source, count(*) AS n, count(DISTINCT seq) AS d,"
            " min(seq) AS lo, max(seq) AS hi FROM (SELECT source,"
            " substring(msg_id FROM '-([0-9]+)$')::bigint AS seq FROM events) e"
            " GROUP BY source) g",
            got, sizeof got);
    static const char *const sorted[HARNESS_SOURCES] = {"clickstream", "orders", "profiles",
                                                        "sensors"};
    for (size_t i = 0; i < HARNESS_SOURCES; i++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "%s%s:%lld/%lld/0/%lld", i ? " " : "", sorted[i],
                 per_source, per_source, per_source - 1);
    }
    if (strcmp(got, want) != 0)
        fail_msg("warehouse holds (source:rows/distinct seqs/lowest/highest) %s, "
                 "the generator was asked for %s",
                 got, want);
    assert_source_queues_empty();
}

void pg_text(const char *sql, char *out, size_t cap)
{
    PGresult *r = pg_query(sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

long long pg_scalar(const char *sql)
{
    char text[64];
    pg_text(sql, text, sizeof text);
    return strtoll(text, NULL, 10);
}

static mq_conn *mq(void)
{
    char err[512];
    mq_conn *c = mq_connect(harness_amqp_url(), 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("RabbitMQ: %s", err);
    return c;
}

/* Passive declare: the queue's counts, or -1s if it does not exist. */
static void queue_counts(const char *queue, long *ready, long *consumers)
{
    mq_conn *c = mq();
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    char err[512];
    *ready = *consumers = -1;
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), "passive declare", err, sizeof err) == 0) {
        *ready = (long)ok->message_count;
        *consumers = (long)ok->consumer_count;
    }
    mq_close(c);
}

long queue_ready(const char *queue)
{
    long ready, consumers;
    queue_counts(queue, &ready, &consumers);
    return ready;
}

long queue_consumers(const char *queue)
{
    long ready, consumers;
    queue_counts(queue, &ready, &consumers);
    return consumers;
}

void queue_purge(const char *queue)
{
    mq_conn *c = mq();
    char err[512];
    amqp_queue_purge(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue));
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), queue, err, sizeof err) != 0)
        fail_msg("purging %s", err);
    mq_close(c);
}

void queues_purge(const char *const sources[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char queue[128];
        snprintf(queue, sizeof queue, "sluice.q.%s", sources[i]);
        queue_purge(queue);
    }
}

void queue_declare_conflicting(const char *queue)
{
    mq_conn *c = mq();
    char err[512];
    /* Durable: RabbitMQ 4 deprecates transient non-exclusive queues, and an
     * exclusive one would be locked against sluice-setup's declare. */
    amqp_table_entry_t args[3] = {
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}},
        {.key = amqp_cstring_bytes("x-dead-letter-exchange"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes(SLUICE_EXCHANGE_DLX)}},
        {.key = amqp_cstring_bytes("x-max-length"),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 1}},
    };
    amqp_table_t table = {.num_entries = 3, .entries = args};
    amqp_queue_declare(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, table);
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), queue, err, sizeof err) != 0)
        fail_msg("declaring %s", err);
    mq_close(c);
}

void queue_delete(const char *queue)
{
    mq_conn *c = mq();
    char err[512];
    amqp_queue_delete(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue), 0, 0);
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), queue, err, sizeof err) != 0)
        fail_msg("deleting %s", err);
    mq_close(c);
}

void exchange_delete(const char *exchange)
{
    mq_conn *c = mq();
    char err[512];
    amqp_exchange_delete(mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(exchange), 0);
    if (mq_check(c, amqp_get_rpc_reply(mq_amqp(c)), exchange, err, sizeof err) != 0)
        fail_msg("deleting %s", err);
    mq_close(c);
}

void warehouse_truncate(void)
{
    pg_exec("TRUNCATE events, ingest_errors");
}

char *harness_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *grown = realloc(text, cap *= 2);
            if (!grown) {
                free(text);
                text = NULL;
            }
            text = grown;
        }
    }
    fclose(f);
    if (text)
        text[len] = '\0';
    return text;
}

static void copy_bytes(char *out, size_t cap, amqp_bytes_t b)
{
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    memcpy(out, b.bytes, n);
    out[n] = '\0';
}

int queue_get(const char *queue, char *body, size_t body_cap, const char *header, char *value,
              size_t value_cap)
{
    mq_conn *c = mq();
    amqp_connection_state_t st = mq_amqp(c);
    char err[512];
    amqp_rpc_reply_t r = amqp_basic_get(st, MQ_CHANNEL, amqp_cstring_bytes(queue), 1);
    if (mq_check(c, r, "basic.get", err, sizeof err) != 0)
        fail_msg("%s", err);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
        mq_close(c);
        return 0;
    }
    amqp_message_t msg;
    if (mq_check(c, amqp_read_message(st, MQ_CHANNEL, &msg, 0), "reading", err, sizeof err) != 0)
        fail_msg("%s", err);
    copy_bytes(body, body_cap, msg.body);
    value[0] = '\0';
    if (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < msg.properties.headers.num_entries; i++) {
            amqp_table_entry_t *e = &msg.properties.headers.entries[i];
            if (e->key.len == strlen(header) && memcmp(e->key.bytes, header, e->key.len) == 0 &&
                e->value.kind == AMQP_FIELD_KIND_UTF8)
                copy_bytes(value, value_cap, e->value.value.bytes);
        }
    }
    amqp_destroy_message(&msg);
    mq_close(c);
    return 1;
}

typedef struct sink {
    char *out;
    size_t cap, len;
} sink;

void assert_dead_letter(const char *body, const char *reason)
{
    char got[4096], why[1024];
    if (!queue_get("sluice.dead", got, sizeof got, "x-sluice-reason", why, sizeof why))
        fail_msg("sluice.dead is empty, expected %s", body);
    assert_string_equal(got, body);
    if (!strstr(why, reason))
        fail_msg("dead letter's reason '%s' does not say '%s'", why, reason);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t take = size * n;
    if (s->len + take >= s->cap)
        take = s->cap - 1 - s->len;
    memcpy(s->out + s->len, data, take);
    s->len += take;
    s->out[s->len] = '\0';
    return size * n;
}

long harness_mgmt_get(const char *path, char *out, size_t cap)
{
    const char *base = getenv("SLUICE_MGMT_URL");
    const char *host = base ? strstr(base, "://") : NULL;
    if (!host)
        fail_msg("SLUICE_MGMT_URL is not set (eval \"$(scripts/stack.sh env)\")");
    /* The stack's management API takes RabbitMQ's default user. */
    char url[1024];
    snprintf(url, sizeof url, "http://guest:guest@%sapi/%s", host + 3, path);
    return http_get(url, out, cap);
}

long long harness_redelivered(void)
{
    long long total = 0;
    for (size_t i = 0; i < HARNESS_SOURCES; i++) {
        char path[128];
        static char body[1 << 16];
        snprintf(path, sizeof path, "queues/%%2F/sluice.q.%s", harness_sources[i]);
        long status = harness_mgmt_get(path, body, sizeof body);
        if (status != 200)
            fail_msg("GET %s: HTTP %ld", path, status);
        json_object *doc = json_tokener_parse(body), *stats, *n;
        if (!doc)
            fail_msg("GET %s: not JSON: %.200s", path, body);
        /* No message_stats (or no redeliver in it) until it happened once. */
        if (json_object_object_get_ex(doc, "message_stats", &stats) &&
            json_object_object_get_ex(stats, "redeliver", &n))
            total += json_object_get_int64(n);
        json_object_put(doc);
    }
    return total;
}

int harness_publisher_blocked(void *arg)
{
    (void)arg;
    static char body[1 << 18];
    long st = harness_mgmt_get("connections", body, sizeof body);
    return st == 200 && strstr(body, "\"state\":\"blocked\"") != NULL;
}

long http_get(const char *url, char *out, size_t cap)
{
    CURL *curl = curl_easy_init();
    sink s = {.out = out, .cap = cap, .len = 0};
    out[0] = '\0';
    long status = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}

void stack_ctl(const char *verb)
{
    char script[4096];
    snprintf(script, sizeof script, "%s/scripts/stack.sh", SLUICE_SOURCE_DIR);
    const char *argv[] = {script, verb, NULL};
    char err[8192];
    if (harness_run(argv, err, sizeof err, 180000) != 0)
        fail_msg("stack.sh %s failed: %s", verb, err);
}

int harness_worker_pid(const char *log_path, int worker)
{
    char *text = harness_slurp(log_path);
    if (!text)
        return 0;
    char needle[64];
    snprintf(needle, sizeof needle, "worker started worker=%d pid=", worker);
    int pid = 0;
    for (char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        pid = atoi(p + strlen(needle));
    free(text);
    return pid;
}

const char *const harness_sources[HARNESS_SOURCES] = {"profiles", "clickstream", "orders",
                                                      "sensors"};

/* The options of the running group, and what its setup made. */
static harness_options group;
static fake_http *group_http;
static char group_workdir[64];
static char group_log[128];

int harness_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                      const harness_options *options)
{
    if (options)
        group = *options;
    return _cmocka_run_group_tests(name, tests, n, harness_group_setup, harness_group_teardown);
}

/* The one-time part of the group setup: what the options ask for. */
static int prepare_group(void)
{
    if (group.needs_mgmt && !getenv("SLUICE_MGMT_URL")) {
        print_error("SLUICE_MGMT_URL is unset: eval \"$(scripts/stack.sh env)\" first\n");
        return -1;
    }
    if (group.workdir && !*group_workdir) {
        snprintf(group_workdir, sizeof group_workdir, "/tmp/sluice-test-XXXXXX");
        if (!mkdtemp(group_workdir)) {
            print_error("mkdtemp: %s\n", strerror(errno));
            *group_workdir = '\0';
            return -1;
        }
    }
    if (group.telegram_token && !group_http) {
        group_http = fake_http_start(harness_port(6));
        setenv("SLUICE_TELEGRAM_TOKEN", group.telegram_token, 1);
    }
    if (!*group_log)
        snprintf(group_log, sizeof group_log, "/tmp/sluice-test-%s-%d.log",
                 group.log_name ? group.log_name : "run", (int)getpid());
    return 0;
}

int harness_group_setup(void **state)
{
    (void)state;
    if (prepare_group() != 0)
        return -1;
    /* By default the demo's typed tables, declared as a deployment would. */
    static const char *const projections[] = {"--projections",
                                              SLUICE_SOURCE_DIR "/config/projections.conf", NULL};
    const char *const *args = group.setup_args ? group.setup_args : projections;
    const char *argv[16] = {harness_bin("sluice-setup")};
    for (size_t i = 0; args[i] && i + 2 < sizeof argv / sizeof *argv; i++)
        argv[i + 1] = args[i];
    char err[8192];
    if (harness_run(argv, err, sizeof err, 60000) != 0) {
        print_error("sluice-setup failed: %s\n", err);
        return -1;
    }
    static int readied;
    if (group.ready && !readied) {
        readied = 1;
        return group.ready();
    }
    return 0;
}

int harness_group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (group_http) {
        fake_http_stop(group_http);
        group_http = NULL;
    }
    if (*group_workdir) {
        /* The logs are in the failure messages; the folder itself goes. */
        const char *argv[] = {"rm", "-rf", group_workdir, NULL};
        rc = harness_run(argv, NULL, 0, 60000) == 0 ? 0 : -1;
        *group_workdir = '\0';
    }
    unlink(group_log);
    return rc;
}

fake_http *harness_fake_http(void)
{
    return group_http;
}

const char *harness_workdir(void)
{
    return group_workdir;
}

const char *harness_log_path(void)
{
    return group_log;
}

void harness_reset(void)
{
    harness_kill_spawned();
    harness_unpace_storing();
    harness_open_gate();
    pg_exec("TRUNCATE events, ingest_errors");
    /* And the typed tables of whatever projections are declared. */
    pg_exec("DO $$ DECLARE t text; BEGIN"
            " FOR t IN SELECT name FROM projections WHERE to_regclass(name) IS NOT NULL LOOP"
            " EXECUTE format('TRUNCATE %I', t); END LOOP; END $$");
    if (group.sources)
        queues_purge(group.sources, group.nsources);
    else
        queues_purge(harness_sources, HARNESS_SOURCES);
    static const char *const unrouted[] = {"unrouted"};
    queues_purge(unrouted, 1);
    if (group.telegram_token)
        group.empties |= HARNESS_EMPTY_ALERTS | HARNESS_EMPTY_NOTIFIER | HARNESS_EMPTY_DEAD;
    if (group.empties & HARNESS_EMPTY_ALERTS)
        pg_exec("TRUNCATE alerts, alert_deliveries, alert_windows, alert_messages, alert_groups");
    if (group.empties & HARNESS_EMPTY_NOTIFIER)
        queue_purge("sluice.q.notifier");
    if (group.empties & HARNESS_EMPTY_DEAD)
        queue_purge("sluice.dead");
    if (group_http)
        fake_http_reset(group_http);
    if (*group_log)
        unlink(group_log);
}

int harness_test_setup(void **state)
{
    (void)state;
    harness_reset();
    return 0;
}

int harness_test_teardown(void **state)
{
    (void)state;
    harness_kill_spawned();
    return 0;
}

static int requests_reached(void *arg)
{
    return fake_http_count(group_http) >= *(size_t *)arg;
}

size_t harness_kill_mid_requests(pid_t pid, size_t at_least, size_t total)
{
    if (!harness_wait_for(requests_reached, &at_least, 120000))
        fail_msg("only %zu of %zu requests arrived", fake_http_count(group_http), at_least);
    kill(pid, SIGKILL);
    harness_wait(pid, 10000);
    size_t got = fake_http_count(group_http);
    if (got >= total)
        fail_msg("killed after %zu of %zu requests, not mid-work", got, total);
    return got;
}

void harness_random_text(char *out, size_t n, unsigned seed)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint32_t x = seed * 2654435761u + 1; /* xorshift32: any state but 0 */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = alphabet[x % (sizeof alphabet - 1)];
    }
    out[n] = '\0';
}

void harness_write_file(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        fail_msg("cannot write %s: %s", tmp, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        fail_msg("cannot write %s: %s", path, strerror(errno));
}

typedef struct sql_query {
    const char *sql;
    long long want;
} sql_query;

static int sql_reached(void *arg)
{
    const sql_query *q = arg;
    return pg_scalar(q->sql) >= q->want;
}

void harness_wait_sql(const char *sql, long long want, long timeout_ms, const char *log_path)
{
    sql_query q = {sql, want};
    if (!harness_wait_for(sql_reached, &q, timeout_ms)) {
        char *text = log_path ? harness_slurp(log_path) : NULL;
        fail_msg("timed out: %s stayed below %lld (now %lld)%s%s", sql, want, pg_scalar(sql),
                 text ? "; log:\n" : "", text ? text : "");
    }
}

long harness_backlog(void)
{
    long total = 0;
    for (size_t i = 0; i < HARNESS_SOURCES; i++) {
        char queue[64];
        snprintf(queue, sizeof queue, "sluice.q.%s", harness_sources[i]);
        total += queue_ready(queue);
    }
    return total;
}

void assert_source_queues_empty(void)
{
    for (size_t i = 0; i < HARNESS_SOURCES; i++) {
        char queue[64];
        snprintf(queue, sizeof queue, "sluice.q.%s", harness_sources[i]);
        long n = queue_ready(queue);
        if (n != 0)
            fail_msg("%s holds %ld messages", queue, n);
    }
}

long long harness_log_max(const char *path, const char *key)
{
    char *all = harness_slurp(path);
    long long most = -1;
    for (const char *p = all; p && (p = strstr(p, key)) != NULL; p++) {
        long long n = strtoll(p + strlen(key), NULL, 10);
        most = n > most ? n : most;
    }
    free(all);
    return most;
}

int harness_log_count(const char *path, const char *text)
{
    char *all = harness_slurp(path);
    int n = 0;
    for (const char *p = all; p && (p = strstr(p, text)) != NULL; p++)
        n++;
    free(all);
    return n;
}

typedef struct log_query {
    const char *path, *text;
    int times;
} log_query;

static int log_has(void *arg)
{
    const log_query *q = arg;
    return harness_log_count(q->path, q->text) >= q->times;
}

void harness_wait_log(const char *path, const char *text, int times, long timeout_ms)
{
    log_query q = {path, text, times};
    if (!harness_wait_for(log_has, &q, timeout_ms)) {
        char *all = harness_slurp(path);
        fail_msg("log never showed '%s' %d times:\n%s", text, times, all ? all : "");
    }
}

void harness_amqp_publish(const char *routing_key, const char *body)
{
    const char *argv[] = {"amqp-publish",
                          "--url",
                          harness_amqp_url(),
                          "-e",
                          "sluice.ingest",
                          "-r",
                          routing_key,
                          "-p",
                          "-b",
                          body,
                          NULL};
    char err[1024];
    if (harness_run(argv, err, sizeof err, 120000) != 0)
        fail_msg("amqp-publish failed: %s", err);
}

void harness_publish_each(const char *exchange, int n,
                          void (*make)(int i, pub_message *m, void *arg), void *arg,
                          long timeout_ms)
{
    char err[512];
    mq_conn *c = mq_connect(harness_amqp_url(), 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("publishing to %s: %s", exchange, err);
    publisher *p = publisher_new(exchange, "test", 512);
    if (!p || publisher_attach(p, c, err, sizeof err) != 0)
        fail_msg("publishing to %s: %s", exchange, err);
    for (int i = 0; i < n; i++) {
        pub_message m = {.produced_at_us = 1};
        make(i, &m, arg);
        if (publisher_publish(p, &m, err, sizeof err) != 0)
            fail_msg("publishing to %s: %s", exchange, err);
    }
    if (publisher_drain(p, timeout_ms, err, sizeof err) != 0)
        fail_msg("messages to %s not confirmed: %s", exchange, err);
    publisher_detach(p);
    publisher_free(p);
    mq_close(c);
}

/* harness_publish_alerts' alert i, built in the buffers of one call. */
typedef struct alert_maker {
    const char *rule, *severity, *before, *after;
    char id[128], rk[128], message[8192], body[65536]; /* any message, escaped */
} alert_maker;

static void make_alert(int i, pub_message *m, void *arg)
{
    alert_maker *a = arg;
    snprintf(a->id, sizeof a->id, "%s-%d", a->rule, i);
    snprintf(a->message, sizeof a->message, "%s%d%s", a->before, i, a->after);
    snprintf(a->rk, sizeof a->rk, "alert.%s.%s", a->severity, a->rule);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "alert_id", json_object_new_string(a->id));
    json_object_object_add(o, "rule", json_object_new_string(a->rule));
    json_object_object_add(o, "severity", json_object_new_string(a->severity));
    json_object_object_add(o, "source", json_object_new_string("orders"));
    json_object_object_add(o, "msg_id", json_object_new_string(a->id));
    json_object_object_add(o, "message", json_object_new_string(a->message));
    const char *json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if ((size_t)snprintf(a->body, sizeof a->body, "%s", json) >= sizeof a->body)
        fail_msg("alert %s does not fit the test's buffer", a->id);
    json_object_put(o);
    m->routing_key = a->rk;
    m->message_id = a->id;
    m->source = "orders";
    m->body = a->body;
    m->body_len = strlen(a->body);
}

void harness_publish_alerts(const char *rule, const char *severity, int n, const char *before,
                            const char *after)
{
    alert_maker *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->rule = rule;
    a->severity = severity;
    a->before = before;
    a->after = after;
    harness_publish_each(SLUICE_EXCHANGE_ALERTS, n, make_alert, a, 30000);
    free(a);
}
