/* Integration tests of the notifier against real RabbitMQ and PostgreSQL
 * and a fake Bot API / webhook harness_fake_http() on loopback (fakehttp.c), one message
 * per alert (--group-by alert; grouping is test_destinations'): escaping,
 * long alerts split, 429 / 5xx / 400 handling, the per-chat rate over a
 * burst of 200 alerts, a SIGKILL mid-burst that must not make anything be
 * sent twice, webhook delivery, and a message that is no alert kept in
 * sluice.q.notifier while sluice.dead is missing. */
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "event.h"
#include "fakehttp.h"
#include "harness.h"

#define TIMEOUT_MS 120000
#define TOKEN "123456:SECRET-token-never-logged"

static pid_t start_notifier(const char *routes, const char *rate_per_chat)
{
    char api[128];
    snprintf(api, sizeof api, "http://127.0.0.1:%d", harness_port(6));
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--routes",
                          routes,
                          "--telegram-api-url",
                          api,
                          "--telegram-chat-id",
                          "4242",
                          "--webhook-url",
                          api,
                          "--telegram-rate-per-chat",
                          rate_per_chat,
                          "--telegram-rate-total",
                          "1000",
                          "--retry-base-ms",
                          "100",
                          "--retry-max-ms",
                          "400",
                          "--max-attempts",
                          "4",
                          "--group-by",
                          "alert",
                          "--metrics-port",
                          "0",
                          NULL};
    return harness_spawn(argv, harness_log_path());
}

static void stop_notifier(pid_t pid)
{
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
}

/* The "text" field of request i's JSON body (malloc'd). */
static char *request_text(size_t i, fake_request *r)
{
    assert_int_equal(fake_http_request(harness_fake_http(), i, r), 0);
    json_object *doc = json_tokener_parse(r->body), *v;
    if (!doc || !json_object_object_get_ex(doc, "text", &v))
        fail_msg("request %zu is not a sendMessage: %s", i, r->body);
    char *text = strdup(json_object_get_string(v));
    json_object *chat, *mode;
    assert_true(json_object_object_get_ex(doc, "chat_id", &chat));
    assert_string_equal(json_object_get_string(chat), "4242");
    assert_true(json_object_object_get_ex(doc, "parse_mode", &mode));
    assert_string_equal(json_object_get_string(mode), "HTML");
    json_object_put(doc);
    return text;
}

static void assert_token_not_logged(void)
{
    char *log = harness_slurp(harness_log_path());
    assert_non_null(log);
    if (strstr(log, "SECRET"))
        fail_msg("the bot token appears in the notifier's log");
    free(log);
}

static void test_escaping_and_long_alert(void **state)
{
    (void)state;
    harness_publish_alerts("escape", "critical", 1, "a <b> & c > d ", "");
    char long_msg[6000];
    for (int i = 0; i < 5000; i++)
        long_msg[i] = (char)('a' + i % 26);
    memcpy(long_msg + 4090, "\xc3\xa9\xc3\xa9\xc3\xa9", 6); /* UTF-8 near the limit */
    long_msg[5000] = '\0';
    harness_publish_alerts("long", "warning", 1, "", long_msg);
    pid_t pid = start_notifier("*=telegram+log", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 2, TIMEOUT_MS, NULL);
    stop_notifier(pid);

    /* The long alert is split into two messages, not cut. */
    assert_int_equal(fake_http_count(harness_fake_http()), 3);
    fake_request r;
    char *text = request_text(0, &r);
    assert_string_equal(r.path, "/bot" TOKEN "/sendMessage");
    assert_non_null(strstr(text, "(orders)\na &lt;b&gt; &amp; c &gt; d 0"));
    assert_non_null(strstr(text, "<b>[CRITICAL] escape</b>"));
    free(text);
    free(r.body);

    char whole[8192] = "";
    for (size_t i = 1; i < 3; i++) {
        text = request_text(i, &r);
        size_t len = strlen(text);
        assert_true(utf8_valid(text, len));
        assert_true(len <= 4096 + 64); /* a few bytes of tags and é */
        strcat(whole, text);
        free(text);
        free(r.body);
    }
    char want[8192];
    snprintf(want, sizeof want, "<b>[WARNING] long</b> (orders)\n0%s", long_msg);
    assert_string_equal(whole, want);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = 'log' AND "
                               "state = 'sent'"),
                     2);
    assert_token_not_logged();
}

static void test_retry_after_5xx_and_400(void **state)
{
    (void)state;
    fake_http_script(harness_fake_http(), 429,
                     "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
                     "retry after 1\",\"parameters\":{\"retry_after\":1}}",
                     1);
    fake_http_script(harness_fake_http(), 500, "{\"ok\":false,\"error_code\":500}", 2);
    harness_publish_alerts("flaky", "critical", 1, "retry me ", "");
    fake_http_when(harness_fake_http(), "unparseable", 400,
                   "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: can't parse "
                   "entities\"}");
    harness_publish_alerts("bad", "critical", 1, "unparseable ", "");
    pid_t pid = start_notifier("*=telegram", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state IN ('sent', 'failed')", 2, TIMEOUT_MS,
                     NULL);
    stop_notifier(pid);

    /* flaky: 429, wait 1 s, 500, 500, 200. */
    fake_request a, b;
    assert_int_equal(fake_http_request(harness_fake_http(), 0, &a), 0);
    assert_int_equal(fake_http_request(harness_fake_http(), 1, &b), 0);
    assert_int_equal(a.status, 429);
    assert_true(b.at_us - a.at_us >= 950000);
    free(a.body);
    free(b.body);
    assert_int_equal(fake_http_count(harness_fake_http()), 5);
    assert_int_equal(pg_scalar("SELECT attempts FROM alert_deliveries WHERE alert_id = "
                               "'flaky-0' AND state = 'sent'"),
                     4);
    /* bad: one attempt, failed with the reason, dead-lettered. */
    assert_int_equal(pg_scalar("SELECT attempts FROM alert_deliveries WHERE alert_id = 'bad-0' "
                               "AND state = 'failed'"),
                     1);
    char why[512], body[2048];
    pg_text("SELECT last_error FROM alerts WHERE alert_id = 'bad-0'", why, sizeof why);
    assert_non_null(strstr(why, "HTTP 400: Bad Request: can't parse entities"));
    assert_int_equal(
        queue_get("sluice.dead", body, sizeof body, "x-sluice-reason", why, sizeof why), 1);
    assert_non_null(strstr(body, "\"alert_id\":\"bad-0\""));
    assert_non_null(strstr(why, "can't parse entities"));
    assert_token_not_logged();
}

/* Largest number of requests in any 1-second window. */
static int busiest_second(size_t n)
{
    int64_t *at = calloc(n, sizeof *at);
    for (size_t i = 0; i < n; i++) {
        fake_request r;
        assert_int_equal(fake_http_request(harness_fake_http(), i, &r), 0);
        at[i] = r.at_us;
        free(r.body);
    }
    int most = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (j < n && at[j] < at[i] + 1000000)
            j++;
        if ((int)(j - i) > most)
            most = (int)(j - i);
    }
    free(at);
    return most;
}

/* Counts how often each alert number (the message is "burst N") arrived. */
static void count_received(int *seen, int n)
{
    memset(seen, 0, (size_t)n * sizeof *seen);
    for (size_t i = 0; i < fake_http_count(harness_fake_http()); i++) {
        fake_request r;
        char *text = request_text(i, &r);
        const char *p = strstr(text, "burst ");
        assert_non_null(p);
        int k = atoi(p + 6);
        assert_in_range(k, 0, n - 1);
        seen[k]++;
        free(text);
        free(r.body);
    }
}

static void test_burst_respects_chat_rate(void **state)
{
    (void)state;
    harness_publish_alerts("burst", "warning", 200, "burst ", "");
    pid_t pid = start_notifier("*=telegram", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 200, TIMEOUT_MS, NULL);
    stop_notifier(pid);

    int seen[200];
    count_received(seen, 200);
    for (int k = 0; k < 200; k++) {
        if (seen[k] != 1)
            fail_msg("alert %d arrived %d times", k, seen[k]);
    }
    int most = busiest_second(200);
    print_message("busiest second: %d messages (limit 50/s per chat)\n", most);
    /* Sends are 20 ms apart; the harness_fake_http()'s receive times add network
     * jitter, which can squeeze one more into a window. */
    assert_true(most <= 52);
    assert_true(most >= 30); /* the limit is used, not just respected */
}

/* Three chats, each allowed 100/s, but 20/s overall: the overall bucket
 * holds, and each chat gets its own alerts. */
static void test_overall_rate_across_chats(void **state)
{
    (void)state;
    static const char *const rules[] = {"ca", "cb", "cc"};
    for (size_t i = 0; i < 3; i++)
        harness_publish_alerts(rules[i], "info", 20, "spread ", "");
    char api[128];
    snprintf(api, sizeof api, "http://127.0.0.1:%d", harness_port(6));
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--routes",
                          "*.ca=telegram:chat-a; *.cb=telegram:chat-b; *.cc=telegram:chat-c",
                          "--telegram-api-url",
                          api,
                          "--telegram-rate-per-chat",
                          "100",
                          "--telegram-rate-total",
                          "20",
                          "--group-by",
                          "alert",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 60, TIMEOUT_MS, NULL);
    stop_notifier(pid);

    assert_int_equal(fake_http_count(harness_fake_http()), 60);
    int most = busiest_second(60);
    print_message("busiest second over three chats: %d messages (limit 20/s overall)\n", most);
    assert_true(most <= 22); /* 21, and one more for the harness_fake_http()'s jitter */
    for (size_t i = 0; i < 60; i++) {
        fake_request r;
        assert_int_equal(fake_http_request(harness_fake_http(), i, &r), 0);
        json_object *doc = json_tokener_parse(r.body), *chat, *text;
        assert_true(json_object_object_get_ex(doc, "chat_id", &chat));
        assert_true(json_object_object_get_ex(doc, "text", &text));
        /* "[INFO] ca" goes to chat-a, and so on. */
        char want[32];
        snprintf(want, sizeof want, "] c%c</b>", json_object_get_string(chat)[5]);
        assert_non_null(strstr(json_object_get_string(text), want));
        json_object_put(doc);
        free(r.body);
    }
    /* 60 messages at 20/s take about 3 s. */
    fake_request first, last;
    assert_int_equal(fake_http_request(harness_fake_http(), 0, &first), 0);
    assert_int_equal(fake_http_request(harness_fake_http(), 59, &last), 0);
    assert_true(last.at_us - first.at_us >= 2800000);
    free(first.body);
    free(last.body);
}

static void test_restart_mid_burst_sends_nothing_twice(void **state)
{
    (void)state;
    harness_publish_alerts("burst", "warning", 200, "burst ", "");
    pid_t pid = start_notifier("*=telegram", "40");
    /* Struck mid-work: 200 alerts at 40 a second take 5 s. */
    size_t before = harness_kill_mid_requests(pid, 60, 200);
    pid = start_notifier("*=telegram", "40");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state IN ('sent', 'failed')", 200,
                     TIMEOUT_MS, NULL);
    stop_notifier(pid);

    int seen[200];
    count_received(seen, 200);
    long long interrupted = pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state = "
                                      "'failed' AND last_error LIKE 'interrupted%'");
    int missing = 0;
    for (int k = 0; k < 200; k++) {
        if (seen[k] > 1)
            fail_msg("alert %d arrived %d times", k, seen[k]);
        missing += seen[k] == 0;
    }
    print_message("killed after %zu requests; %lld in flight at the kill, %d not received\n",
                  before, interrupted, missing);
    /* Only a request under way at the kill may be missing, and it is on
     * record as interrupted. */
    assert_true(interrupted <= 1);
    assert_true(missing <= interrupted);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE state = 'sent'"),
                     200 - interrupted);
    /* Buckets live in the process: the new one starts with a full bucket,
     * so the second around the restart may hold one message more. */
    assert_true(busiest_second(fake_http_count(harness_fake_http())) <= 43);
}

static int got_one(void *arg)
{
    (void)arg;
    return fake_http_count(harness_fake_http()) >= 1;
}

/* SIGKILL while a request is in flight: the harness_fake_http() got it, the notifier
 * never heard back. The next notifier must not send it again; it records
 * the delivery as interrupted and goes on with the next alert. */
static void test_kill_during_request_is_not_resent(void **state)
{
    (void)state;
    fake_http_delay(harness_fake_http(), "slow 0", 3000);
    harness_publish_alerts("slow", "critical", 2, "slow ", "");
    pid_t pid = start_notifier("*=telegram", "50");
    assert_true(harness_wait_for(got_one, NULL, TIMEOUT_MS));
    kill(pid, SIGKILL);
    harness_wait(pid, 10000);
    pid = start_notifier("*=telegram", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state IN ('sent', 'failed')", 2, TIMEOUT_MS,
                     NULL);
    stop_notifier(pid);

    assert_int_equal(fake_http_count(harness_fake_http()), 2); /* slow 0 once, slow 1 once */
    char why[512];
    pg_text("SELECT state || ' ' || last_error FROM alert_deliveries WHERE alert_id = 'slow-0'",
            why, sizeof why);
    assert_non_null(strstr(why, "failed interrupted"));
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE alert_id = 'slow-1' AND "
                               "state = 'sent'"),
                     1);
}

static int copies_skipped(void *arg)
{
    int want = *(int *)arg, n = 0;
    char *log = harness_slurp(harness_log_path());
    for (const char *p = log ? strstr(log, "already delivered") : NULL; p;
         p = strstr(p + 1, "already delivered"))
        n++;
    free(log);
    return n >= want;
}

/* Every alert published twice (as a worker does when it raises it again
 * after a crash) and two notifiers consuming at once: each arrives once. */
static void test_two_notifiers_and_copies_send_once(void **state)
{
    (void)state;
    harness_publish_alerts("twin", "warning", 100, "burst ", "");
    harness_publish_alerts("twin", "warning", 100, "burst ", "");
    pid_t a = start_notifier("*=telegram", "200");
    pid_t b = start_notifier("*=telegram", "200");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 100, TIMEOUT_MS, NULL);
    int copies = 100;
    assert_true(harness_wait_for(copies_skipped, &copies, TIMEOUT_MS));
    stop_notifier(a);
    stop_notifier(b);
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);

    int seen[100];
    count_received(seen, 100);
    for (int k = 0; k < 100; k++) {
        if (seen[k] != 1)
            fail_msg("alert %d arrived %d times", k, seen[k]);
    }
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state <> 'sent'"), 0);
}

static void test_webhook_delivery(void **state)
{
    (void)state;
    fake_http_script(harness_fake_http(), 503, "busy", 1);
    harness_publish_alerts("hook", "info", 1, "hooked ", "");
    pid_t pid = start_notifier("info=webhook+log;*=log", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 1, TIMEOUT_MS, NULL);
    stop_notifier(pid);

    assert_int_equal(fake_http_count(harness_fake_http()), 2);
    fake_request r;
    assert_int_equal(fake_http_request(harness_fake_http(), 1, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.alert_id, "hook-0");
    json_object *doc = json_tokener_parse(r.body), *v;
    assert_non_null(doc);
    assert_true(json_object_object_get_ex(doc, "message", &v));
    assert_string_equal(json_object_get_string(v), "hooked 0");
    json_object_put(doc);
    free(r.body);
    assert_int_equal(pg_scalar("SELECT attempts FROM alert_deliveries WHERE alert_id = 'hook-0' "
                               "AND channel = 'webhook' AND state = 'sent'"),
                     2);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE alert_id = 'hook-0' "
                               "AND channel = 'log' AND state = 'sent'"),
                     1);
}

/* Messages that are no alert (not JSON, a severity the alerts table
 * refuses) go to sluice.dead with the reason instead of looping. */
static void test_foreign_garbage_is_dead_lettered(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "not json",
        "{\"alert_id\":\"x-1\",\"rule\":\"r\",\"severity\":\"urgent\",\"source\":\"s\","
        "\"message\":\"m\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"amqp-publish",  "--url", harness_amqp_url(), "-e",
                              "sluice.alerts", "-r",    "alert.info.r",     "-b",
                              bodies[i],       NULL};
        assert_int_equal(harness_run(argv, NULL, 0, TIMEOUT_MS), 0);
    }
    harness_publish_alerts("after", "info", 1, "fine ", "");
    pid_t pid = start_notifier("*=log", "50");
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 1, TIMEOUT_MS, NULL);
    stop_notifier(pid);
    char body[512], why[512];
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(
            queue_get("sluice.dead", body, sizeof body, "x-sluice-reason", why, sizeof why), 1);
        assert_string_equal(body, bodies[i]);
        assert_non_null(strstr(why, "not an alert"));
    }
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
}

static int queue_back(void *arg)
{
    (void)arg;
    return queue_ready("sluice.q.notifier") == 2;
}

/* Puts back sluice.dead, whatever became of the test that deletes it. */
static int restore_dead(void **state)
{
    harness_group_setup(state);
    return harness_test_teardown(state);
}

/* sluice.dead deleted (sluice.dlx then routes nowhere): a message that is
 * no alert is not acknowledged but stays in sluice.q.notifier, the
 * notifier says why and backs off, and once sluice-setup has declared
 * sluice.dead again it is dead-lettered there and the alert behind it is
 * delivered. */
static void test_garbage_waits_for_sluice_dead(void **state)
{
    (void)state;
    queue_delete("sluice.dead");
    const char *argv[] = {"amqp-publish", "--url", harness_amqp_url(), "-e", "sluice.alerts", "-r",
                          "alert.info.r", "-b",    "not json",         NULL};
    assert_int_equal(harness_run(argv, NULL, 0, TIMEOUT_MS), 0);
    harness_publish_alerts("behind", "info", 1, "fine ", "");
    pid_t pid = start_notifier("*=log", "50");
    const char *why = "sluice.dlx routed the dead letter nowhere (312 NO_ROUTE): is sluice.dead "
                      "bound? run sluice-setup";
    harness_wait_log(harness_log_path(), why, 2, 60000);
    assert_true(harness_wait_for(queue_back, NULL, 30000));
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), 0);

    assert_int_equal(harness_group_setup(NULL), 0);
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 1, TIMEOUT_MS, NULL);
    stop_notifier(pid);
    char body[512], reason[512];
    assert_int_equal(
        queue_get("sluice.dead", body, sizeof body, "x-sluice-reason", reason, sizeof reason), 1);
    assert_string_equal(body, "not json");
    assert_non_null(strstr(reason, "not an alert"));
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
}

/* An alert (JSON text) with the given alert_id and message, built in a
 * malloc'd buffer. */
static char *alert_text(const char *alert_id, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "alert_id", json_object_new_string(alert_id));
    json_object_object_add(o, "rule", json_object_new_string("r"));
    json_object_object_add(o, "severity", json_object_new_string("info"));
    json_object_object_add(o, "source", json_object_new_string("orders"));
    json_object_object_add(o, "message", json_object_new_string(message));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    assert_non_null(text);
    return text;
}

static char *repeated(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void publish_alert_text(const char *text)
{
    const char *argv[] = {"amqp-publish",
                          "--url",
                          harness_amqp_url(),
                          "-e",
                          "sluice.alerts",
                          "-r",
                          "alert.info.r",
                          "-b",
                          text,
                          NULL};
    assert_int_equal(harness_run(argv, NULL, 0, TIMEOUT_MS), 0);
}

/* What PostgreSQL could not index, or what is larger than the notifier
 * takes, is dead-lettered with the reason instead of holding back every
 * alert behind it (a 4,000-byte alert_id once did, retried forever); a
 * long message is cut to 16 KiB and delivered. */
static void test_oversized_alerts(void **state)
{
    (void)state;
    char *long_id = malloc(4001), *big_message = repeated('b', 70000),
         *long_message = repeated('m', 30000);
    assert_non_null(long_id);
    harness_random_text(long_id, 4000, 7);
    char *refused[2] = {alert_text(long_id, "m"), alert_text("too-big", big_message)};
    char *cut = alert_text("cut-1", long_message);
    for (int i = 0; i < 2; i++)
        publish_alert_text(refused[i]);
    publish_alert_text(cut);
    harness_publish_alerts("after", "info", 1, "fine ", "");
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--routes",
                          "*=log",
                          "--max-message-bytes",
                          "65536",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 2, TIMEOUT_MS, NULL);
    stop_notifier(pid);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts"), 2);
    assert_int_equal(pg_scalar("SELECT octet_length(message) FROM alerts WHERE alert_id = 'cut-1'"),
                     16384);
    assert_int_equal(
        pg_scalar("SELECT count(*) FROM alerts WHERE alert_id = 'cut-1' AND message LIKE 'mmm%…'"),
        1);
    static const char *const reasons[] = {"of at most 1024 bytes", "larger than the notifier's"};
    size_t cap = 100000;
    char *body = malloc(cap), why[512];
    assert_non_null(body);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(queue_get("sluice.dead", body, cap, "x-sluice-reason", why, sizeof why),
                         1);
        assert_string_equal(body, refused[i]);
        if (!strstr(why, reasons[i]))
            fail_msg("dead letter %d: reason '%s' lacks '%s'", i, why, reasons[i]);
        free(refused[i]);
    }
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
    free(body);
    free(cut);
    free(long_id);
    free(big_message);
    free(long_message);
}

/* The batch the notifier plans in one transaction is bounded in bytes as
 * well as in alerts: 40 alerts of about 1 KB queued at once, a prefetch
 * that would take them all, batch_max_bytes 4096: every batch stops once
 * it holds 4096 bytes (the alert that crossed the bound is its last), so
 * there are at least ten, and all 40 are planned once. */
static void test_planning_batches_bounded_in_bytes(void **state)
{
    (void)state;
    enum { N = 40, BUDGET = 4096 };
    char *pad = repeated('p', 1000);
    harness_publish_alerts("bytes", "info", N, pad, "");
    free(pad);
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--routes",
                          "*=log",
                          "--prefetch",
                          "100",
                          "--batch-max-bytes",
                          "4096",
                          "--log-level",
                          "debug",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", N, TIMEOUT_MS, NULL);
    stop_notifier(pid);
    char *log = harness_slurp(harness_log_path());
    assert_non_null(log);
    long batches = 0, planned = 0, largest = 0;
    for (char *p = strstr(log, "planned alerts="); p; p = strstr(p + 1, "planned alerts=")) {
        long n = 0, bytes = 0;
        assert_int_equal(sscanf(p, "planned alerts=%ld bytes=%ld", &n, &bytes), 2);
        batches++;
        planned += n;
        /* Below the bound before its last alert: at most one alert over. */
        if (bytes > largest)
            largest = bytes;
    }
    free(log);
    print_message("%ld batches, %ld alerts, largest batch %ld bytes\n", batches, planned, largest);
    assert_int_equal(planned, N);
    assert_true(batches >= 10);
    assert_true(largest < BUDGET + 1200);
}

static void test_bad_settings_exit_2(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value, *expect;
    } cases[] = {
        {"--routes", "*=email", "unknown channel 'email'"},
        {"--routes", "*=webhook", "webhook_url is not set"},
        {"--telegram-token-file", "/nonexistent/token", "telegram_token_file /nonexistent"},
        {"--telegram-token", TOKEN, "unknown flag '--telegram-token'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[] = {
            harness_bin("sluice-notifier"),         cases[i].flag, cases[i].value, "--routes",
            i == 2 ? "*=telegram" : cases[i].value, NULL};
        if (i == 0 || i == 1)
            argv[3] = NULL;
        char err[2048];
        assert_int_equal(harness_run(argv, err, sizeof err, 30000), 2);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_escaping_and_long_alert),
        harness_unit_test(test_retry_after_5xx_and_400),
        harness_unit_test(test_burst_respects_chat_rate),
        harness_unit_test(test_overall_rate_across_chats),
        harness_unit_test(test_restart_mid_burst_sends_nothing_twice),
        harness_unit_test(test_kill_during_request_is_not_resent),
        harness_unit_test(test_two_notifiers_and_copies_send_once),
        harness_unit_test(test_webhook_delivery),
        harness_unit_test(test_foreign_garbage_is_dead_lettered),
        cmocka_unit_test_setup_teardown(test_garbage_waits_for_sluice_dead, harness_test_setup,
                                        restore_dead),
        harness_unit_test(test_oversized_alerts),
        harness_unit_test(test_planning_batches_bounded_in_bytes),
        harness_unit_test(test_bad_settings_exit_2),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){NULL},
        .telegram_token = TOKEN,
        .log_name = "notifier",
    };
    return harness_run_tests(tests, &options);
}
