/* Integration tests of what a new user meets first, against the real
 * servers: an event whose source has no queue is kept and recorded, never
 * counted as confirmed while the broker returns it; an older topology
 * gains the alternate exchange in place; one config file with [source]
 * sections drives setup, producer and worker; memory stays bounded in
 * bytes with maximum-size events; every log entry is one line. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"
#include "mq.h"

#define TIMEOUT_MS 180000

/* Tests that delete or add queues put the standard topology back. */
static int restore(void **state)
{
    harness_kill_spawned();
    return harness_group_setup(state);
}

/* ------------------------------------------------------- unknown sources */

/* A source nobody declared a queue for (a new user's first try:
 * --sources newsrc --adapter stdin), and foreign messages with routing keys no queue is bound
 * to: all are kept and recorded as unknown_source with the raw body. */
static void test_unknown_source_is_recorded(void **state)
{
    (void)state;
    char input[600], cmd[2048], err[65536];
    snprintf(input, sizeof input, "%s/newsrc.ndjson", harness_workdir());
    harness_write_file(input, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    snprintf(cmd, sizeof cmd, "exec %s --sources newsrc --adapter stdin < %s",
             harness_bin("sluice-producer"), input);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(harness_run(argv, err, sizeof err, TIMEOUT_MS), 0);
    const char *line = strstr(err, "sources without a queue: newsrc (");
    if (!line)
        fail_msg("no start line naming the source without a queue: %s", err);
    assert_non_null(strstr(err, "confirmed=3 outstanding=0"));
    assert_non_null(strstr(err, "returned=0"));

    harness_amqp_publish("src.nosuch", "{\"foreign\":true}");
    harness_amqp_publish("not.a.source.key", "not even json");
    harness_drain(NULL);

    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = "
                               "'unknown_source' AND source = 'newsrc' AND routing_key = "
                               "'src.newsrc'"),
                     3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE source = 'newsrc' AND "
                               "convert_from(raw, 'UTF8') IN ('{\"a\":1}', '{\"a\":2}', "
                               "'{\"a\":3}')"),
                     3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = "
                               "'unknown_source' AND source = 'nosuch' AND "
                               "convert_from(raw, 'UTF8') = '{\"foreign\":true}'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = "
                               "'unknown_source' AND source = 'unknown' AND routing_key = "
                               "'not.a.source.key' AND convert_from(raw, 'UTF8') = "
                               "'not even json'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 0);
    assert_int_equal(queue_ready("sluice.q.unrouted"), 0);
}

/* With no queue at all for a message (the alternate exchange's queue gone
 * too), the broker returns it: it is never counted as confirmed, a file
 * source's checkpoint does not move past it, and the producer says so and
 * exits 1. Once a queue exists the same lines go through. */
static void test_returned_is_never_confirmed(void **state)
{
    (void)state;
    char path[600], checkpoint[600], config[600], text[2048], err[65536];
    snprintf(path, sizeof path, "%s/lost.ndjson", harness_workdir());
    snprintf(checkpoint, sizeof checkpoint, "%s/lost.offset", harness_workdir());
    snprintf(config, sizeof config, "%s/lost.conf", harness_workdir());
    harness_write_file(path, "{\"n\":1}\n{\"n\":2}\n");
    unlink(checkpoint);
    snprintf(text, sizeof text,
             "checkpoint_interval_ms = 50\n[source lostsrc]\nadapter = file\npath = %s\n"
             "checkpoint = %s\nstart_at = beginning\npoll_ms = 50\n",
             path, checkpoint);
    harness_write_file(config, text);
    queue_delete("sluice.q.unrouted");

    const char *argv[] = {harness_bin("sluice-producer"), "--config", config, "--duration", "3",
                          "--shutdown-timeout-ms",        "1500",     NULL};
    int rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
    if (rc != 1)
        fail_msg("producer exited %d, want 1: %s", rc, err);
    assert_non_null(strstr(err, "sources without a queue: lostsrc, and no sluice.q.unrouted"));
    assert_non_null(strstr(err, "message returned, held to be published again"));
    assert_non_null(strstr(err, "source summary source=lostsrc read=2 confirmed=0"));
    assert_non_null(strstr(err, "stopping with events not confirmed by the broker unconfirmed=2"));
    /* The checkpoint, if the adapter wrote one, still says offset 0. */
    char *saved = harness_slurp(checkpoint);
    unsigned long offset = 0;
    if (saved && sscanf(saved, "confirmed %*u %*u %*u %lu", &offset) != 1)
        fail_msg("unexpected checkpoint: %s", saved);
    free(saved);
    assert_int_equal(offset, 0);

    /* Setup puts sluice.q.unrouted back: the same lines now go through and
     * the checkpoint covers them. */
    assert_int_equal(harness_group_setup(state), 0);
    rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
    if (rc != 0)
        fail_msg("producer exited %d, want 0: %s", rc, err);
    assert_non_null(strstr(err, "source summary source=lostsrc read=2 confirmed=2"));
    saved = harness_slurp(checkpoint);
    assert_non_null(saved);
    assert_int_equal(sscanf(saved, "confirmed %*u %*u %*u %lu", &offset), 1);
    free(saved);
    assert_int_equal(offset, 16); /* after both lines */
    assert_int_equal(queue_ready("sluice.q.unrouted"), 2);
}

/* --------------------------------------------------- topology upgrade */

#define UPGRADE_VHOST "sluice-edges-upgrade"

/* A request to the management API of the stack; returns the HTTP status. */
static long mgmt(const char *method, const char *path, const char *body)
{
    const char *base = getenv("SLUICE_MGMT_URL");
    if (!base || !*base)
        fail_msg("SLUICE_MGMT_URL is not set (eval \"$(scripts/stack.sh env)\")");
    char url[1024];
    snprintf(url, sizeof url, "%sapi/%s", base, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    FILE *sink = fopen("/dev/null", "w");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_USERPWD, "guest:guest");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    fclose(sink);
    return status;
}

static void vhost_url(char *out, size_t cap)
{
    /* The stack's URL with its vhost, if any, replaced. */
    const char *base = harness_amqp_url();
    const char *host = strstr(base, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    size_t n = path ? (size_t)(path - base) : strlen(base);
    snprintf(out, cap, "%.*s/" UPGRADE_VHOST, (int)n, base);
}

static mq_conn *vhost_conn(void)
{
    char url[512], err[512];
    vhost_url(url, sizeof url);
    mq_conn *c = mq_connect(url, 0, 5000, err, sizeof err);
    if (!c)
        fail_msg("connecting to vhost " UPGRADE_VHOST ": %s", err);
    return c;
}

static long vhost_queue_ready(const char *queue)
{
    mq_conn *c = vhost_conn();
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        mq_amqp(c), MQ_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    long n = ok ? (long)ok->message_count : -1;
    if (!ok)
        mq_mark_broken(c);
    mq_close(c);
    return n;
}

static int drop_vhost(void **state)
{
    (void)state;
    mgmt("DELETE", "vhosts/" UPGRADE_VHOST, NULL);
    return 0;
}

/* sluice.ingest as setups before the alternate exchange declared it (a
 * durable topic exchange without arguments, a bound source queue, with a
 * message waiting): setup upgrades it in place, twice without complaint,
 * keeps the waiting message, and from then on unknown routing keys land in
 * sluice.q.unrouted. */
static void test_setup_upgrades_older_topology(void **state)
{
    (void)state;
    drop_vhost(state);
    assert_true(mgmt("PUT", "vhosts/" UPGRADE_VHOST, "{}") / 100 == 2);
    assert_true(mgmt("PUT", "permissions/" UPGRADE_VHOST "/guest",
                     "{\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}") /
                    100 ==
                2);
    mq_conn *c = vhost_conn();
    amqp_connection_state_t st = mq_amqp(c);
    char err[65536];
    amqp_exchange_declare(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.ingest"),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    assert_int_equal(mq_check(c, amqp_get_rpc_reply(st), "exchange", err, sizeof err), 0);
    amqp_table_entry_t args[2] = {
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}},
        {.key = amqp_cstring_bytes("x-dead-letter-exchange"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("sluice.dlx")}},
    };
    amqp_queue_declare(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.q.orders"), 0, 1, 0, 0,
                       (amqp_table_t){.num_entries = 2, .entries = args});
    assert_int_equal(mq_check(c, amqp_get_rpc_reply(st), "queue", err, sizeof err), 0);
    amqp_queue_bind(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.q.orders"),
                    amqp_cstring_bytes("sluice.ingest"), amqp_cstring_bytes("src.orders"),
                    amqp_empty_table);
    assert_int_equal(mq_check(c, amqp_get_rpc_reply(st), "bind", err, sizeof err), 0);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    assert_int_equal(amqp_basic_publish(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.ingest"),
                                        amqp_cstring_bytes("src.orders"), 0, 0, &props,
                                        amqp_cstring_bytes("{\"before\":\"upgrade\"}")),
                     0);
    mq_close(c);

    char url[512];
    vhost_url(url, sizeof url);
    const char *argv[] = {
        harness_bin("sluice-setup"), "--amqp-url", url, "--sources", "orders", NULL};
    for (int run = 0; run < 2; run++) {
        int rc = harness_run(argv, err, sizeof err, TIMEOUT_MS);
        if (rc != 0)
            fail_msg("setup run %d exited %d: %s", run + 1, rc, err);
        assert_non_null(strstr(err, "exchange ready name=sluice.ingest type=topic"));
    }
    assert_int_equal(vhost_queue_ready("sluice.q.orders"), 1);

    c = vhost_conn();
    st = mq_amqp(c);
    assert_int_equal(amqp_basic_publish(st, MQ_CHANNEL, amqp_cstring_bytes("sluice.ingest"),
                                        amqp_cstring_bytes("src.nobody"), 0, 0, &props,
                                        amqp_cstring_bytes("{\"after\":\"upgrade\"}")),
                     0);
    mq_close(c); /* a polite close: the broker has routed what came before */
    assert_int_equal(vhost_queue_ready("sluice.q.unrouted"), 1);
    assert_int_equal(vhost_queue_ready("sluice.q.orders"), 1);
}

/* -------------------------------------------------- one config file */

/* One file with [source NAME] sections and no `sources` line: setup
 * declares their queues, the producer publishes them, the worker consumes
 * them, and nothing goes astray. */
static void test_one_config_drives_every_binary(void **state)
{
    (void)state;
    char config[600], input[600], cmd[2048], err[65536];
    snprintf(config, sizeof config, "%s/one.conf", harness_workdir());
    snprintf(input, sizeof input, "%s/one.ndjson", harness_workdir());
    harness_write_file(config, "progress_interval_ms = 0\n"
                               "[source cfg_pipe]\nadapter = stdin\n"
                               "[source cfg_sim]\nadapter = generator\nkind = orders\ncount = 5\n");
    harness_write_file(input, "{\"p\":1}\n{\"p\":2}\n{\"p\":3}\n");

    const char *setup[] = {harness_bin("sluice-setup"), "--config", config, NULL};
    assert_int_equal(harness_run(setup, err, sizeof err, TIMEOUT_MS), 0);
    assert_int_equal(queue_ready("sluice.q.cfg_pipe"), 0);
    assert_int_equal(queue_ready("sluice.q.cfg_sim"), 0);

    snprintf(cmd, sizeof cmd, "exec %s --config %s < %s", harness_bin("sluice-producer"), config,
             input);
    const char *producer[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(harness_run(producer, err, sizeof err, TIMEOUT_MS), 0);
    assert_null(strstr(err, "without a queue"));

    const char *extra[] = {"--config", config, NULL};
    harness_drain(extra);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'cfg_pipe'"), 3);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'cfg_sim'"), 5);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"), 0);
    assert_int_equal(queue_ready("sluice.q.cfg_pipe"), 0);
    assert_int_equal(queue_ready("sluice.q.cfg_sim"), 0);

    /* A `sources` line may pick some of the sections, never name others. */
    harness_write_file(config, "sources = cfg_pipe,cfg_typo\n[source cfg_pipe]\nadapter = stdin\n");
    assert_int_equal(harness_run(setup, err, sizeof err, TIMEOUT_MS), 2);
    assert_non_null(strstr(err, "sluice-setup: sources: 'cfg_typo' has no [source cfg_typo] "
                                "section in"));
    assert_int_equal(strchr(err, '\n')[1], '\0'); /* one line */
    queue_delete("sluice.q.cfg_pipe");
    queue_delete("sluice.q.cfg_sim");
}

/* Appends to `out` a "name = 1" line for each setting `binary --help`
 * lists that is not in `skip` (a NUL-separated list, may be empty). */
static void settings_of(const char *binary, const char *skip, size_t skip_len, char *out,
                        size_t cap, char *names, size_t names_cap, size_t *names_len)
{
    char help[65536];
    const char *argv[] = {harness_bin(binary), "--help", NULL};
    assert_int_equal(harness_run(argv, help, sizeof help, TIMEOUT_MS), 0);
    for (const char *line = help; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "  --", 4) != 0)
            continue;
        char name[64];
        size_t n = 0;
        for (const char *p = line + 4;
             n + 1 < sizeof name &&
             ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
             p++)
            name[n++] = *p == '-' ? '_' : *p;
        name[n] = '\0';
        if (n == 0 || strcmp(name, "config") == 0 || strcmp(name, "help") == 0)
            continue;
        int known = 0;
        for (size_t k = 0; k < skip_len && !known; k += strlen(skip + k) + 1)
            known = strcmp(skip + k, name) == 0;
        if (names && *names_len + n + 1 < names_cap) {
            memcpy(names + *names_len, name, n + 1);
            *names_len += n + 1;
        }
        char line_text[80], needle[82];
        snprintf(line_text, sizeof line_text, "%s = 1\n", name);
        snprintf(needle, sizeof needle, "\n%s", line_text);
        int written =
            out && (strncmp(out, line_text, strlen(line_text)) == 0 || strstr(out, needle));
        if (out && !known && !written && strlen(out) + strlen(line_text) < cap)
            strcat(out, line_text);
    }
}

/* The shared file may hold every other binary's settings: sluice-setup
 * skips them all (so the list of them in common/cli.c has not drifted
 * from the binaries' tables), and still refuses a setting no binary has. */
static void test_shared_file_skips_other_binaries_settings(void **state)
{
    (void)state;
    char own[4096], text[16384] = "", config[600], err[65536];
    size_t own_len = 0;
    settings_of("sluice-setup", "", 0, NULL, 0, own, sizeof own, &own_len);
    static const char *const others[] = {"sluice-producer", "sluice-worker", "sluice-notifier",
                                         "sluice-ctl"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        settings_of(others[i], own, own_len, text, sizeof text, NULL, 0, NULL);
    assert_non_null(strstr(text, "window_bytes = 1\n"));
    assert_non_null(strstr(text, "telegram_chat_id = 1\n"));
    snprintf(config, sizeof config, "%s/shared.conf", harness_workdir());
    harness_write_file(config, text);
    const char *setup[] = {harness_bin("sluice-setup"), "--config", config, NULL};
    int rc = harness_run(setup, err, sizeof err, TIMEOUT_MS);
    if (rc != 0)
        fail_msg("setup exited %d with every other binary's settings in its file: %s", rc, err);
    strncat(text, "no_such_setting = 1\n", sizeof text - strlen(text) - 1);
    harness_write_file(config, text);
    assert_int_equal(harness_run(setup, err, sizeof err, TIMEOUT_MS), 2);
    assert_non_null(strstr(err, "unknown setting 'no_such_setting'"));
}

/* ------------------------------------------------------- memory */

#define BIG_EVENTS 100
#define BIG_BYTES 1000000 /* just under max_message_bytes (1 MiB) */
#define MIB (1024L * 1024L)

/* n events of about `bytes` bytes each, one per line. */
static void write_events(const char *path, int n, size_t bytes)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    char *pad = malloc(bytes);
    assert_non_null(pad);
    memset(pad, 'x', bytes);
    size_t fill = bytes > 30 ? bytes - 30 : 1;
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"i\":%d,\"pad\":\"%.*s\"}\n", i, (int)fill, pad);
    free(pad);
    assert_int_equal(fclose(f), 0);
}

/* Under AddressSanitizer freed blocks wait in a quarantine (256 MB by
 * default) before they are reused: that would measure the sanitizer, not
 * sluice. Turns it off for the processes started until measure_rss_end(),
 * which takes what this returns. Without one, ASan still finds what it
 * finds elsewhere. */
static char *measure_rss_begin(void)
{
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan ? strdup(asan) : NULL, measure[1024];
    snprintf(measure, sizeof measure, "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
             asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", measure, 1);
    return saved;
}

static void measure_rss_end(char *saved)
{
    if (saved)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
}

/* The memory tests' inputs: n events of 100 bytes in `small`, n of `bytes`
 * in `big` (paths of 600 bytes, named after `tag`), for the source `mem`,
 * whose queue setup declares and whose queue and rows a failed earlier run
 * may have left are emptied. */
static void prepare_mem(const char *tag, int n, size_t bytes, char *small, char *big)
{
    char err[8192];
    snprintf(small, 600, "%s/%s-small.ndjson", harness_workdir(), tag);
    snprintf(big, 600, "%s/%s-big.ndjson", harness_workdir(), tag);
    write_events(small, n, 100);
    write_events(big, n, bytes);
    const char *setup[] = {harness_bin("sluice-setup"), "--sources", "mem", NULL};
    assert_int_equal(harness_run(setup, err, sizeof err, TIMEOUT_MS), 0);
    queue_purge("sluice.q.mem");
    pg_exec("DELETE FROM events WHERE source = 'mem'");
}

/* Publishes the file through a stdin source `mem` and drains it with a
 * unified worker; gives both processes' peak RSS in kB. */
static void pass_through(const char *input, int n, long *producer_kb, long *worker_kb)
{
    char cmd[2048], err[65536];
    snprintf(cmd, sizeof cmd, "exec %s --sources mem --adapter stdin --progress-interval-ms 0 < %s",
             harness_bin("sluice-producer"), input);
    const char *producer[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = harness_run_peak_rss(producer, err, sizeof err, TIMEOUT_MS, producer_kb);
    if (rc != 0)
        fail_msg("producer exited %d: %s", rc, err);
    assert_int_equal(queue_ready("sluice.q.mem"), n);
    /* A long flush interval: only the batch's bounds decide when it is
     * committed, as when a backlog drains. */
    const char *worker[] = {harness_bin("sluice-worker"),
                            "--sources",
                            "mem",
                            "--idle-exit-ms",
                            "2000",
                            "--metrics-port",
                            "0",
                            "--flush-interval-ms",
                            "20000",
                            NULL};
    rc = harness_run_peak_rss(worker, err, sizeof err, TIMEOUT_MS, worker_kb);
    if (rc != 0)
        fail_msg("worker exited %d: %s", rc, err);
    assert_int_equal(queue_ready("sluice.q.mem"), 0);
}

/* Peak RSS with maximum-size events against the same processes with small
 * ones, measured in the same run: the difference is what the bodies cost,
 * and it must stay within the byte bounds (docs/operations.md, "Memory"), not grow
 * with the number of events held. */
static void test_memory_bounded_in_bytes(void **state)
{
    (void)state;
    char small[600], big[600];
    prepare_mem("bytes", BIG_EVENTS, BIG_BYTES, small, big);

    char *saved_asan = measure_rss_begin();
    long p0, w0, p1, w1;
    pass_through(small, BIG_EVENTS, &p0, &w0);
    pass_through(big, BIG_EVENTS, &p1, &w1);
    measure_rss_end(saved_asan);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'mem'"), 2 * BIG_EVENTS);
    print_message("peak RSS (kB): producer %ld small, %ld big; worker %ld small, %ld big\n", p0, p1,
                  w0, w1);

    /* Worker: the batch (batch_max_bytes, 8 MiB, plus the event that
     * crossed it) is held three times at most: its arena, the COPY
     * stream, libpq's send buffer; one body more being read. */
    long worker_bound_kb = (3 * (8 * MIB + MIB) + 2 * MIB) / 1024;
    /* Producer: window_bytes (16 MiB) and buffer_bytes (4 MiB), each of
     * which takes one event over its bound, and the line being read. */
    long producer_bound_kb = (16 * MIB + 4 * MIB + 4 * MIB) / 1024;
    if (w1 - w0 > worker_bound_kb)
        fail_msg("worker grew by %ld kB with %d events of %d bytes (bound %ld kB)", w1 - w0,
                 BIG_EVENTS, BIG_BYTES, worker_bound_kb);
    if (p1 - p0 > producer_bound_kb)
        fail_msg("producer grew by %ld kB with %d events of %d bytes (bound %ld kB)", p1 - p0,
                 BIG_EVENTS, BIG_BYTES, producer_bound_kb);
    pg_exec("DELETE FROM events WHERE source = 'mem'");
    queue_delete("sluice.q.mem");
}

/* A count query and the value it must reach. */
typedef struct count_goal {
    const char *sql;
    long want;
} count_goal;

static int count_reaches(void *arg)
{
    const count_goal *g = arg;
    return pg_scalar(g->sql) >= g->want;
}

/* Starts argv (logging to log), sends it SIGTERM once count_sql counts a
 * tenth of n, and gives its peak RSS (wait4: for a pool, the largest of
 * its processes) and the count at the signal. */
static long term_after_a_tenth(const char *const argv[], const char *log, const char *count_sql,
                               int n, long *count_at_term)
{
    pid_t pid = harness_spawn(argv, log);
    count_goal tenth = {count_sql, n / 10};
    if (!harness_wait_for(count_reaches, &tenth, TIMEOUT_MS))
        fail_msg("%s stayed below %ld (log %s)", count_sql, tenth.want, log);
    *count_at_term = pg_scalar(count_sql);
    kill(pid, SIGTERM);
    long peak_kb = 0;
    int rc = harness_wait_peak_rss(pid, TIMEOUT_MS, &peak_kb);
    if (rc != 0)
        fail_msg("%s exited %d after SIGTERM (log %s)", argv[0], rc, log);
    return peak_kb;
}

/* Publishes the file through a stdin source `mem` (n events), starts a
 * unified worker with the default prefetch on it, sends it SIGTERM once it
 * has stored at least a tenth of them, and gives the pool's peak RSS (the
 * largest of supervisor and worker, wait4) and the rows at the signal. */
static long drain_then_term(const char *input, int n, long *rows_at_term)
{
    char cmd[2048], err[65536], log[600];
    snprintf(cmd, sizeof cmd, "exec %s --sources mem --adapter stdin --progress-interval-ms 0 < %s",
             harness_bin("sluice-producer"), input);
    const char *producer[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(harness_run(producer, err, sizeof err, TIMEOUT_MS), 0);
    assert_int_equal(queue_ready("sluice.q.mem"), n);
    snprintf(log, sizeof log, "%s/term-worker.log", harness_workdir());
    const char *worker[] = {
        harness_bin("sluice-worker"), "--sources", "mem", "--metrics-port", "0", NULL};
    return term_after_a_tenth(worker, log, "SELECT count(*) FROM events WHERE source = 'mem'", n,
                              rows_at_term);
}

/* SIGTERM in the middle of a drain of large events: the deliveries the
 * broker had already sent (up to the prefetch, 2,000 by default) must not
 * be read into memory while the worker closes its channel. They once were
 * (rabbitmq-c keeps every frame that arrives before channel.close-ok):
 * 190 MB for 300 events of 900 KB, 2 GB per queue for 1 MB events. The
 * pool's peak with large events, less its peak with small ones in the same
 * run, must stay within the worker's byte bound (docs/operations.md,
 * "Memory"), and every event is stored once by the next worker. */
static void test_memory_bounded_at_shutdown(void **state)
{
    (void)state;
    enum { TERM_EVENTS = 300, TERM_BYTES = 900 * 1024 };
    char small[600], big[600], err[8192];
    prepare_mem("term", TERM_EVENTS, TERM_BYTES, small, big);
    const char *drain[] = {harness_bin("sluice-worker"),
                           "--sources",
                           "mem",
                           "--idle-exit-ms",
                           "2000",
                           "--metrics-port",
                           "0",
                           NULL};

    char *saved_asan = measure_rss_begin();
    long at_small, at_big;
    long small_kb = drain_then_term(small, TERM_EVENTS, &at_small);
    assert_int_equal(harness_run(drain, err, sizeof err, TIMEOUT_MS), 0);
    pg_exec("DELETE FROM events WHERE source = 'mem'");
    long big_kb = drain_then_term(big, TERM_EVENTS, &at_big);
    measure_rss_end(saved_asan);
    print_message("peak RSS at SIGTERM (kB): %ld small, %ld big; rows at the signal %ld of %d\n",
                  small_kb, big_kb, at_big, TERM_EVENTS);
    /* The signal struck mid-drain: rows stored, others still held. */
    assert_true(at_big > 0 && at_big < TERM_EVENTS);

    /* The same bound as a running worker's (test_memory_bounded_in_bytes):
     * the batch three times over, one body more being read. */
    long worker_bound_kb = (3 * (8 * MIB + MIB) + 2 * MIB) / 1024;
    if (big_kb - small_kb > worker_bound_kb)
        fail_msg("the worker pool grew by %ld kB at SIGTERM with %d events of %d bytes in flight "
                 "(bound %ld kB)",
                 big_kb - small_kb, TERM_EVENTS, TERM_BYTES, worker_bound_kb);

    /* Nothing lost, nothing twice: the next worker stores the rest. */
    assert_int_equal(harness_run(drain, err, sizeof err, TIMEOUT_MS), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE source = 'mem'"), TERM_EVENTS);
    assert_int_equal(pg_scalar("SELECT count(DISTINCT msg_id) FROM events WHERE source = 'mem'"),
                     TERM_EVENTS);
    assert_int_equal(queue_ready("sluice.q.mem"), 0);
    pg_exec("DELETE FROM events WHERE source = 'mem'");
    queue_delete("sluice.q.mem");
}

/* Queues n alerts with messages of `bytes`, starts a notifier with a
 * prefetch above n (the broker sends it every one), sends it SIGTERM once
 * it has planned a tenth, and gives its peak RSS and the alerts planned
 * at the signal. */
static long notifier_then_term(size_t bytes, int n, long *planned_at_term)
{
    char log[600];
    char path[600], cmd[2048], err[4096];
    pg_exec("TRUNCATE alerts, alert_windows, alert_deliveries, alert_messages, alert_groups");
    queue_purge("sluice.q.notifier");
    /* Published by amqp-publish, a process apiece: the notifier's peak
     * (wait4) counts from its fork, so the test's own memory must stay
     * small. */
    snprintf(path, sizeof path, "%s/alert-message-%zu", harness_workdir(), bytes);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd,
             "i=0; while [ $i -lt %d ]; do"
             " { printf '{\"alert_id\":\"term-%zu-%%d\",\"rule\":\"term\",\"severity\":\"info\","
             "\"source\":\"orders\",\"message\":\"' $i; cat %s; printf '\"}'; }"
             " | amqp-publish --url '%s' -e sluice.alerts -r alert.info.term || exit 1;"
             " i=$((i + 1)); done",
             n, bytes, path, harness_amqp_url());
    const char *publish[] = {"/bin/sh", "-c", cmd, NULL};
    if (harness_run(publish, err, sizeof err, TIMEOUT_MS) != 0)
        fail_msg("publishing the alerts failed: %s", err);
    assert_int_equal(queue_ready("sluice.q.notifier"), n);
    snprintf(log, sizeof log, "%s/term-notifier.log", harness_workdir());
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--routes",
                          "*=log",
                          "--prefetch",
                          "1000",
                          "--metrics-port",
                          "0",
                          NULL};
    return term_after_a_tenth(argv, log, "SELECT count(*) FROM alerts", n, planned_at_term);
}

/* The notifier's side of test_memory_bounded_at_shutdown: SIGTERM while
 * it plans a backlog of 300 alerts of 900 KB that the broker has all sent
 * it. Its peak, less its peak with 100-byte alerts in the same run, stays
 * within what it holds by design (docs/operations.md, "Memory"): the alert
 * being read, its copy and its JSON tree (max_message_bytes each, 1 MiB),
 * the planning batch (batch_max_bytes, 1 MiB, of messages cut to 16 KiB),
 * a destination's claim of 100 cut messages, and 2 MiB besides. Reading
 * what the broker had sent while the channel closed took 270 MB. Then a
 * second notifier delivers the rest: each alert planned and sent once. */
static void test_notifier_memory_bounded_at_shutdown(void **state)
{
    (void)state;
    enum { ALERTS = 300, ALERT_BYTES = 900 * 1024 };
    char *saved_asan = measure_rss_begin();
    long at_small, at_big;
    long small_kb = notifier_then_term(100, ALERTS, &at_small);
    long big_kb = notifier_then_term(ALERT_BYTES, ALERTS, &at_big);
    measure_rss_end(saved_asan);
    print_message("notifier peak RSS at SIGTERM (kB): %ld small, %ld big; planned at the signal "
                  "%ld of %d\n",
                  small_kb, big_kb, at_big, ALERTS);
    assert_true(at_big > 0 && at_big < ALERTS);
    long bound_kb = (3 * MIB + MIB + 100 * 16384 + 2 * MIB) / 1024;
    if (big_kb - small_kb > bound_kb)
        fail_msg("the notifier grew by %ld kB at SIGTERM with %d alerts of %d bytes sent to it "
                 "(bound %ld kB)",
                 big_kb - small_kb, ALERTS, ALERT_BYTES, bound_kb);

    char log[600];
    snprintf(log, sizeof log, "%s/term-notifier-2.log", harness_workdir());
    const char *argv[] = {
        harness_bin("sluice-notifier"), "--routes", "*=log", "--metrics-port", "0", NULL};
    pid_t pid = harness_spawn(argv, log);
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", ALERTS, TIMEOUT_MS, NULL);
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), ALERTS);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state = 'sent'"),
                     ALERTS);
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
    pg_exec("TRUNCATE alerts, alert_windows, alert_deliveries, alert_messages, alert_groups");
}

/* ------------------------------------------------- cancelled consumers */

static char pool_body[16384];

static int healthz_is(void *arg)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", harness_port(8));
    return http_get(url, pool_body, sizeof pool_body) == *(const long *)arg;
}

static int consumed_by_one(void *arg)
{
    return queue_consumers(arg) == 1;
}

static int sensors_event_stored(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM events WHERE payload->>'after' = 'cancel'") == 1;
}

/* The broker cancels a worker's consumer when its queue is deleted: the
 * worker says so, /healthz and /metrics show the source as not consumed,
 * and once sluice-setup declared the queue again the worker consumes it
 * again by itself, without a restart. */
static void test_cancelled_consumer_is_resubscribed(void **state)
{
    (void)state;
    char log[600], metrics[16384], url[128];
    snprintf(log, sizeof log, "%s/cancel-worker.log", harness_workdir());
    unlink(log);
    const char *argv[] = {harness_bin("sluice-worker"), "--metrics-port", harness_port_text(8),
                          NULL};
    pid_t pid = harness_spawn(argv, log);
    long ok = 200, unavailable = 503;
    if (!harness_wait_for(healthz_is, &ok, 60000))
        fail_msg("the pool never became healthy: %s", pool_body);
    assert_true(harness_wait_for(consumed_by_one, "sluice.q.sensors", 30000));

    queue_delete("sluice.q.sensors");
    harness_wait_log(log, "consumer cancelled by the broker queue=sluice.q.sensors", 1, 60000);
    if (!harness_wait_for(healthz_is, &unavailable, 30000))
        fail_msg("/healthz did not turn 503: %s", pool_body);
    assert_non_null(strstr(pool_body, "source sensors: not consumed"));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", harness_port(8));
    assert_int_equal(http_get(url, metrics, sizeof metrics), 200);
    assert_non_null(strstr(metrics, "sluice_source_consumers{source=\"sensors\"} 0\n"));
    assert_non_null(strstr(metrics, "sluice_source_consumers{source=\"orders\"} 1\n"));

    /* The other queues are still consumed meanwhile. */
    harness_amqp_publish("src.orders", "{\"during\":\"cancel\"}");
    assert_int_equal(harness_group_setup(state), 0);
    harness_amqp_publish("src.sensors", "{\"after\":\"cancel\"}");
    harness_wait_log(log, "consuming again queue=sluice.q.sensors", 1, 60000);
    assert_true(harness_wait_for(sensors_event_stored, NULL, 60000));
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE payload->>'during' = 'cancel'"),
                     1);
    if (!harness_wait_for(healthz_is, &ok, 30000))
        fail_msg("/healthz did not turn 200 again: %s", pool_body);
    assert_int_equal(queue_consumers("sluice.q.sensors"), 1);

    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
    assert_int_equal(harness_log_count(log, "worker started"), 1); /* never restarted */
}

static int notifier_healthz_is(void *arg)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", harness_port(9));
    return http_get(url, pool_body, sizeof pool_body) == *(const long *)arg;
}

/* The same for the notifier's queue, on the notifier's own /healthz and
 * /metrics. */
static void test_cancelled_notifier_is_resubscribed(void **state)
{
    char log[600], url[128], metrics[65536];
    snprintf(log, sizeof log, "%s/cancel-notifier.log", harness_workdir());
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", harness_port(9));
    unlink(log);
    const char *argv[] = {harness_bin("sluice-notifier"), "--metrics-port", harness_port_text(9),
                          NULL};
    pid_t pid = harness_spawn(argv, log);
    long ok = 200, unavailable = 503;
    assert_true(harness_wait_for(consumed_by_one, "sluice.q.notifier", 30000));
    if (!harness_wait_for(notifier_healthz_is, &ok, 30000))
        fail_msg("the notifier's /healthz never answered 200: %s", pool_body);

    queue_delete("sluice.q.notifier");
    harness_wait_log(log, "consumer cancelled by the broker queue=sluice.q.notifier", 1, 60000);
    if (!harness_wait_for(notifier_healthz_is, &unavailable, 30000))
        fail_msg("the notifier's /healthz did not turn 503: %s", pool_body);
    assert_non_null(strstr(pool_body, "sluice.q.notifier not consumed"));
    assert_int_equal(http_get(url, metrics, sizeof metrics), 200);
    assert_non_null(strstr(metrics, "\nsluice_notifier_queue_consumed 0\n"));

    assert_int_equal(harness_group_setup(state), 0);
    harness_wait_log(log, "consuming again queue=sluice.q.notifier", 1, 60000);
    assert_true(harness_wait_for(consumed_by_one, "sluice.q.notifier", 30000));
    if (!harness_wait_for(notifier_healthz_is, &ok, 30000))
        fail_msg("the notifier's /healthz did not turn 200 again: %s", pool_body);
    assert_int_equal(http_get(url, metrics, sizeof metrics), 200);
    assert_non_null(strstr(metrics, "\nsluice_notifier_queue_consumed 1\n"));
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
}

/* ------------------------------------------------------- one-line logs */

static int retried_twice(void *arg)
{
    return harness_log_count(arg, "not ready, retrying") >= 2;
}

/* PostgreSQL refusing connections: libpq's message has a second line ("Is
 * the server running on that host...") and ends in a newline. Every line
 * of the worker's log is still a whole entry, starting with its time. */
static void test_every_log_entry_is_one_line(void **state)
{
    (void)state;
    char log[600];
    snprintf(log, sizeof log, "%s/oneline.log", harness_workdir());
    unlink(log);
    const char *argv[] = {harness_bin("sluice-worker"), "--pg-dsn",
                          "postgresql://sluice@127.0.0.1:1/sluice?connect_timeout=2",
                          "--metrics-port", "0",
                          /* Attempts after the first log at debug level. */
                          "--log-level", "debug", NULL};
    pid_t pid = harness_spawn(argv, log);
    if (!harness_wait_for(retried_twice, log, 60000))
        fail_msg("the worker never reported the refused connection: %s", harness_slurp(log));
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);

    char *text = harness_slurp(log);
    assert_non_null(text);
    assert_non_null(strstr(text, "Is the server running on that host"));
    int lines = 0;
    for (char *line = text; *line; lines++) {
        char *end = strchr(line, '\n');
        if (!end)
            fail_msg("the log does not end with a newline: %s", line);
        /* 2026-11-29T10:00:00.123Z level component: ... */
        if (end - line < 25 || line[4] != '-' || line[10] != 'T' || line[23] != 'Z' ||
            line[24] != ' ')
            fail_msg("line %d is not a log entry of its own: '%.*s'", lines + 1, (int)(end - line),
                     line);
        line = end + 1;
    }
    assert_true(lines >= 3);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_unknown_source_is_recorded, harness_test_setup),
        cmocka_unit_test_setup_teardown(test_returned_is_never_confirmed, harness_test_setup,
                                        restore),
        cmocka_unit_test_teardown(test_setup_upgrades_older_topology, drop_vhost),
        cmocka_unit_test_setup_teardown(test_one_config_drives_every_binary, harness_test_setup,
                                        restore),
        cmocka_unit_test(test_shared_file_skips_other_binaries_settings),
        cmocka_unit_test_setup(test_memory_bounded_in_bytes, harness_test_setup),
        cmocka_unit_test_setup(test_memory_bounded_at_shutdown, harness_test_setup),
        cmocka_unit_test_setup(test_notifier_memory_bounded_at_shutdown, harness_test_setup),
        cmocka_unit_test(test_every_log_entry_is_one_line),
        cmocka_unit_test_setup_teardown(test_cancelled_consumer_is_resubscribed, harness_test_setup,
                                        restore),
        cmocka_unit_test_teardown(test_cancelled_notifier_is_resubscribed, restore),
    };
    const harness_options options = {.workdir = 1};
    return harness_run_tests(tests, &options);
}
