/* Integration tests of the notifier's destinations and grouping against
 * real RabbitMQ and PostgreSQL and a fake Bot API / webhook (fakehttp.c):
 * a chat draining a backlog at 1/s holds back no other chat; a critical
 * alert goes before a backlog of info alerts; a chat told to wait 20 s by a
 * 429 and a webhook that hangs hold back neither Telegram nor the webhook;
 * a notifier killed midway delivers every alert once per destination; a
 * burst of 1,000 alerts of one rule reaches a chat as a few messages (also
 * across a kill); the log takes a backlog of 20,000 in claims of up to 100,
 * critical first, each alert accounted for once across a kill; a long group
 * is split into parts; SIGHUP reloads the
 * routes and refuses a bad file; /metrics passes `promtool check metrics`. */
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
#include "util.h"

#define TIMEOUT_MS 120000
#define TOKEN "123456:SECRET-token-never-logged"

static char api[128], hook[160];

static int name_api(void)
{
    snprintf(api, sizeof api, "http://127.0.0.1:%d", harness_port(6));
    snprintf(hook, sizeof hook, "%s/hook", api);
    return 0;
}

/* Publishes n alerts of rule `rule` (ids "<rule>-<i>", message
 * "<rule> <i><pad>") with confirms, as a worker would. */
static void publish_alerts(const char *rule, const char *severity, int n, const char *pad)
{
    char before[160];
    snprintf(before, sizeof before, "%s ", rule);
    harness_publish_alerts(rule, severity, n, before, pad);
}

/* Starts a notifier on the fake harness_fake_http() with `routes` and extra flags
 * (NULL-terminated). */
static pid_t start_notifier(const char *routes, ...)
{
    const char *argv[64] = {harness_bin("sluice-notifier"),
                            "--routes",
                            routes,
                            "--telegram-api-url",
                            api,
                            "--webhook-url",
                            hook,
                            "--telegram-rate-total",
                            "1000",
                            "--retry-base-ms",
                            "100",
                            "--retry-max-ms",
                            "400",
                            "--metrics-port",
                            "0"};
    size_t n = 15;
    va_list ap;
    va_start(ap, routes);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 62;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return harness_spawn(argv, harness_log_path());
}

static void stop_notifier(pid_t pid, long within_ms)
{
    int64_t start = mono_us();
    kill(pid, SIGTERM);
    assert_int_equal(harness_wait(pid, 30000), 0);
    long took = (long)((mono_us() - start) / 1000);
    if (took > within_ms)
        fail_msg("the notifier took %ld ms to stop (expected under %ld)", took, within_ms);
}

/* One request as these tests read it. */
typedef struct seen {
    char dest[64]; /* "telegram:<chat>" or "webhook" */
    char text[16384];
    char alert_id[256]; /* webhook: X-Sluice-Alert-Id */
    int64_t at_us;
    int status;
} seen;

static void read_request(size_t i, seen *s)
{
    fake_request r;
    assert_int_equal(fake_http_request(harness_fake_http(), i, &r), 0);
    memset(s, 0, sizeof *s);
    s->at_us = r.at_us;
    s->status = r.status;
    if (strcmp(r.path, "/hook") == 0) {
        snprintf(s->dest, sizeof s->dest, "webhook");
        snprintf(s->alert_id, sizeof s->alert_id, "%s", r.alert_id);
        snprintf(s->text, sizeof s->text, "%s", r.body);
    } else {
        json_object *doc = json_tokener_parse(r.body), *chat, *text;
        if (!doc || !json_object_object_get_ex(doc, "chat_id", &chat) ||
            !json_object_object_get_ex(doc, "text", &text))
            fail_msg("request %zu is not a sendMessage: %s", i, r.body);
        snprintf(s->dest, sizeof s->dest, "telegram:%s", json_object_get_string(chat));
        snprintf(s->text, sizeof s->text, "%s", json_object_get_string(text));
        json_object_put(doc);
    }
    free(r.body);
}

/* Requests to dest answered 200 so far. */
static int count_to(const char *dest)
{
    int n = 0;
    size_t total = fake_http_count(harness_fake_http());
    for (size_t i = 0; i < total; i++) {
        seen s;
        read_request(i, &s);
        n += strcmp(s.dest, dest) == 0 && s.status == 200;
    }
    return n;
}

typedef struct dest_count {
    const char *dest;
    int want;
} dest_count;

static int dest_reaches(void *arg)
{
    const dest_count *w = arg;
    return count_to(w->dest) >= w->want;
}

static void wait_dest(const char *dest, int want)
{
    dest_count w = {dest, want};
    if (!harness_wait_for(dest_reaches, &w, TIMEOUT_MS))
        fail_msg("timed out: %s received %d of %d", dest, count_to(dest), want);
}

/* Arrival time of the k-th (0-based) request to dest, or -1. */
static int64_t arrival(const char *dest, int k)
{
    size_t total = fake_http_count(harness_fake_http());
    for (size_t i = 0; i < total; i++) {
        seen s;
        read_request(i, &s);
        if (strcmp(s.dest, dest) == 0 && k-- == 0)
            return s.at_us;
    }
    return -1;
}

/* The case: twenty critical alerts for chat 111 at 1/s, then one
 * warning for chat 222: 222 gets its alert at once while 111 drains. */
static void test_busy_chat_holds_back_no_other(void **state)
{
    (void)state;
    publish_alerts("c111", "critical", 20, "");
    publish_alerts("w222", "warning", 1, "");
    pid_t pid = start_notifier("critical=telegram:111;warning=telegram:222", "--group-by", "alert",
                               "--telegram-rate-per-chat", "1", NULL);
    wait_dest("telegram:222", 1);
    wait_dest("telegram:111", 4);
    int64_t first = arrival("telegram:111", 0), other = arrival("telegram:222", 0);
    print_message("chat 222 served %.3f s after chat 111's first\n", (double)(other - first) / 1e6);
    assert_true(other - first < 1000000);
    for (int k = 1; k < 4; k++) { /* 111 keeps its rate */
        int64_t gap = arrival("telegram:111", k) - arrival("telegram:111", k - 1);
        if (gap < 900000)
            fail_msg("chat 111's alerts %d and %d came %lld us apart", k - 1, k, (long long)gap);
    }
    /* Stopping in the middle of 111's backlog is prompt and loses nothing:
     * the rest stay pending in the outbox. */
    stop_notifier(pid, 5000);
    int sent = count_to("telegram:111");
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = "
                               "'telegram:111' AND state <> 'sent'"),
                     20 - sent);
    assert_int_equal(queue_ready("sluice.q.notifier"), 0);
}

/* Ten info alerts wait in one chat; a critical one raised after them goes
 * next, not eleventh. */
static void test_critical_goes_before_info_backlog(void **state)
{
    (void)state;
    publish_alerts("chatter", "info", 10, "");
    publish_alerts("fire", "critical", 1, "");
    pid_t pid = start_notifier("*=telegram:333", "--group-by", "alert", "--telegram-rate-per-chat",
                               "2", NULL);
    wait_dest("telegram:333", 2);
    stop_notifier(pid, 5000);
    seen s;
    int found = 0;
    for (size_t i = 0; i < 2; i++) {
        read_request(i, &s);
        found |= strstr(s.text, "[CRITICAL] fire") != NULL;
    }
    if (!found)
        fail_msg("the critical alert was not among the first two messages");
}

static const char retry_after_20[] =
    "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 20\","
    "\"parameters\":{\"retry_after\":20}}";

/* Chat 111 is told to wait 20 s; chat 222 and the webhook keep receiving
 * meanwhile, and a SIGTERM during the wait is prompt. */
static void test_429_holds_back_only_its_chat(void **state)
{
    (void)state;
    fake_http_when(harness_fake_http(), "\"chat_id\":\"111\"", 429, retry_after_20);
    publish_alerts("ra", "warning", 3, "");
    publish_alerts("rb", "warning", 5, "");
    pid_t pid = start_notifier("*.ra=telegram:111; *.rb=telegram:222+webhook", "--group-by",
                               "alert", "--telegram-rate-per-chat", "50", NULL);
    wait_dest("telegram:222", 5);
    wait_dest("webhook", 5);
    int64_t told = arrival("telegram:111", 0);
    assert_true(told > 0);
    /* Chat 222's and the webhook's five alerts need 0.1 s at 50 a
     * second; 2 s leaves room for a loaded machine and still fails if
     * chat 111's 429 (retry after 20 s) holds the others back even a few
     * seconds (head-of-line blocking). */
    assert_true(arrival("telegram:222", 4) - told < 2000000);
    assert_true(arrival("webhook", 4) - told < 2000000);
    /* Chat 111 was asked once and is waiting out its 20 s. */
    int asked = 0;
    for (size_t i = 0; i < fake_http_count(harness_fake_http()); i++) {
        seen s;
        read_request(i, &s);
        asked += strcmp(s.dest, "telegram:111") == 0;
    }
    assert_int_equal(asked, 1);
    stop_notifier(pid, 5000);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = "
                               "'telegram:111' AND state = 'sent'"),
                     0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel IN "
                               "('telegram:222', 'webhook') AND state = 'sent'"),
                     10);
}

/* The webhook endpoint hangs (6 s, past the 3 s timeout) while Telegram
 * keeps receiving. */
static void test_hanging_webhook_holds_back_no_chat(void **state)
{
    (void)state;
    fake_http_delay(harness_fake_http(), "hang 0", 6000);
    publish_alerts("hang", "info", 1, "");
    publish_alerts("tg", "critical", 5, "");
    pid_t pid = start_notifier("info=webhook; critical=telegram:111", "--group-by", "alert",
                               "--telegram-rate-per-chat", "10", "--http-timeout-ms", "3000",
                               "--max-attempts", "2", NULL);
    wait_dest("telegram:111", 5);
    int64_t hung = -1;
    for (size_t i = 0; i < fake_http_count(harness_fake_http()); i++) {
        seen s;
        read_request(i, &s);
        if (strcmp(s.dest, "webhook") == 0 && hung < 0)
            hung = s.at_us;
    }
    assert_true(hung > 0);
    /* All five arrived while the webhook's request was still hanging. */
    assert_true(arrival("telegram:111", 4) - hung < 2500000);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE channel = 'webhook' AND state IN "
                     "('sent', 'failed')",
                     1, TIMEOUT_MS, NULL);
    stop_notifier(pid, 10000);
}

/* How often alert "<rule> <k>" reached dest. */
static void tally(const char *dest, const char *rule, int *hits, int n)
{
    memset(hits, 0, (size_t)n * sizeof *hits);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s-", rule);
    for (size_t i = 0; i < fake_http_count(harness_fake_http()); i++) {
        seen s;
        read_request(i, &s);
        if (strcmp(s.dest, dest) != 0)
            continue;
        int k = -1;
        if (strcmp(dest, "webhook") == 0) {
            if (strncmp(s.alert_id, prefix, strlen(prefix)) == 0)
                k = atoi(s.alert_id + strlen(prefix));
        } else {
            char word[64];
            snprintf(word, sizeof word, ")\n%s ", rule);
            const char *p = strstr(s.text, word);
            if (p)
                k = atoi(p + strlen(word));
        }
        if (k >= 0 && k < n)
            hits[k]++;
    }
}

/* SIGKILL in the middle of three destinations' traffic, then a new
 * notifier: every alert reaches each of its destinations once. Telegram:
 * a request under way at the kill is not sent again (recorded as
 * interrupted; it may or may not have arrived). Webhook: it is sent again
 * with the same X-Sluice-Alert-Id, so every alert arrives and the receiver
 * drops the one copy. */
static void test_kill_midway_exactly_once_per_destination(void **state)
{
    (void)state;
    publish_alerts("ka", "warning", 100, "");
    publish_alerts("kb", "warning", 100, "");
    const char *routes = "*.ka=telegram:111+webhook; *.kb=telegram:222+log";
    pid_t pid =
        start_notifier(routes, "--group-by", "alert", "--telegram-rate-per-chat", "25", NULL);
    /* Struck mid-work: 300 requests are due (100 to each of chat 111,
     * chat 222 and the webhook), and the rate of 25 a second per chat keeps
     * them coming for 4 s. */
    size_t before = harness_kill_mid_requests(pid, 60, 300);
    pid = start_notifier(routes, "--group-by", "alert", "--telegram-rate-per-chat", "25", NULL);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE state IN ('sent', 'failed')", 400,
                     TIMEOUT_MS, NULL);
    stop_notifier(pid, 10000);

    static const struct {
        const char *dest, *rule;
    } dests[] = {{"telegram:111", "ka"}, {"telegram:222", "kb"}, {"webhook", "ka"}};
    for (size_t d = 0; d < 3; d++) {
        int hits[100], missing = 0, twice = 0;
        tally(dests[d].dest, dests[d].rule, hits, 100);
        for (int k = 0; k < 100; k++) {
            missing += hits[k] == 0;
            twice += hits[k] == 2;
            if (hits[k] > 2 || (hits[k] == 2 && d < 2))
                fail_msg("%s-%d reached %s %d times", dests[d].rule, k, dests[d].dest, hits[k]);
        }
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM alert_deliveries WHERE channel = '%s' AND state = "
                 "'failed' AND last_error LIKE 'interrupted%%'",
                 dests[d].dest);
        long long interrupted = pg_scalar(sql);
        print_message("%s: killed after %zu requests in all; %d missing, %d twice (same alert "
                      "id), %lld interrupted\n",
                      dests[d].dest, before, missing, twice, interrupted);
        assert_true(missing <= interrupted); /* each missing one is recorded */
        assert_true(interrupted <= 1);       /* only the request under way */
        if (d == 2) {
            assert_int_equal(missing, 0);
            assert_int_equal(interrupted, 0);
            assert_true(twice <= 1);
        }
    }
    /* The log channel cannot lose a line to a kill except the one it was
     * writing. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = 'log' AND "
                               "state = 'sent'") +
                         pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = 'log' "
                                   "AND last_error LIKE 'interrupted%'"),
                     100);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = 'webhook' "
                               "AND state = 'sent'"),
                     100);
}

/* The count a grouped message's header gives ("1,000 alerts"), 1 for a
 * single alert's message, 0 for a continuation part. */
static long alerts_in(const char *text)
{
    const char *b = strstr(text, "</b>: ");
    if (!b)
        return strncmp(text, "<b>[", 4) == 0 ? 1 : 0;
    long n = 0;
    for (const char *p = b + 6; *p && *p != ' '; p++) {
        if (*p >= '0' && *p <= '9')
            n = n * 10 + (*p - '0');
    }
    return n;
}

/* UTF-16 units of an HTML text as Telegram counts it: tags count nothing
 * (the texts here hold no entities and no 4-byte characters). */
static size_t utf16_len(const char *s)
{
    size_t n = 0;
    for (int tag = 0; *s; s++) {
        if (*s == '<')
            tag = 1;
        else if (*s == '>' && tag)
            tag = 0;
        else if (!tag && ((unsigned char)*s & 0xc0) != 0x80)
            n++;
    }
    return n;
}

/* Largest number of requests to any chat in one second. */
static int busiest_second(void)
{
    size_t n = fake_http_count(harness_fake_http());
    int most = 0;
    for (size_t i = 0; i < n; i++) {
        seen a;
        read_request(i, &a);
        int in = 0;
        for (size_t j = i; j < n; j++) {
            seen b;
            read_request(j, &b);
            in += strcmp(a.dest, b.dest) == 0 && b.at_us < a.at_us + 1000000;
        }
        if (in > most)
            most = in;
    }
    return most;
}

/* Every delivery of the chat is in a message, the messages' counts add up
 * to n, and the texts received say the same (interrupted ones excepted). */
static void assert_burst_accounted(const char *dest, int n)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM alert_deliveries WHERE channel = '%s' AND message_id IS NOT "
             "NULL AND state IN ('sent', 'failed')",
             dest);
    assert_int_equal(pg_scalar(sql), n);
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(sum(alerts), 0) FROM alert_messages WHERE channel = '%s'", dest);
    assert_int_equal(pg_scalar(sql), n);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM alert_deliveries WHERE channel = '%s' AND state = 'failed' "
             "AND last_error LIKE 'interrupted%%'",
             dest);
    long long interrupted = pg_scalar(sql);
    long received = 0;
    for (size_t i = 0; i < fake_http_count(harness_fake_http()); i++) {
        seen s;
        read_request(i, &s);
        if (strcmp(s.dest, dest) == 0 && s.status == 200)
            received += alerts_in(s.text);
    }
    print_message("%s: %zu messages carried %ld alerts, %lld interrupted\n", dest,
                  fake_http_count(harness_fake_http()), received, interrupted);
    assert_int_equal(received + interrupted, n);
}

/* 1,000 alerts of one rule: a few messages, within the chat's rate of 1/s,
 * each naming how many it carries; all 1,000 accounted for. */
static void test_burst_of_1000_becomes_a_few_messages(void **state)
{
    (void)state;
    publish_alerts("gburst", "warning", 1000, "");
    pid_t pid = start_notifier("*=telegram:111", "--group-wait-ms", "1500", "--group-interval-ms",
                               "3000", "--telegram-rate-per-chat", "1", NULL);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE state = 'sent'", 1000, TIMEOUT_MS,
                     NULL);
    stop_notifier(pid, 5000);
    size_t messages = fake_http_count(harness_fake_http());
    assert_true(messages >= 1 && messages <= 4);
    assert_true(busiest_second() <= 1);
    seen s;
    read_request(0, &s);
    assert_non_null(strstr(s.text, "<b>[WARNING] gburst</b>: "));
    assert_non_null(strstr(s.text, " alerts in "));
    assert_non_null(strstr(s.text, "\xe2\x80\xa2 (orders) gburst 0\n"));
    assert_non_null(strstr(s.text, " more"));
    assert_burst_accounted("telegram:111", 1000);
}

static int planned_300(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM alert_deliveries") >= 300;
}

/* The same burst with the notifier killed while it was taking it in. */
static void test_burst_survives_a_kill(void **state)
{
    (void)state;
    publish_alerts("kburst", "warning", 1000, "");
    pid_t pid = start_notifier("*=telegram:111", "--group-wait-ms", "1500", "--group-interval-ms",
                               "3000", "--telegram-rate-per-chat", "1", "--prefetch", "20", NULL);
    assert_true(harness_wait_for(planned_300, NULL, TIMEOUT_MS));
    kill(pid, SIGKILL);
    harness_wait(pid, 10000);
    long long planned = pg_scalar("SELECT count(*) FROM alert_deliveries");
    pid = start_notifier("*=telegram:111", "--group-wait-ms", "1500", "--group-interval-ms", "3000",
                         "--telegram-rate-per-chat", "1", NULL);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE state IN ('sent', 'failed')",
                     1000, TIMEOUT_MS, NULL);
    stop_notifier(pid, 5000);
    print_message("killed with %lld of 1000 planned\n", planned);
    assert_true(planned < 1000);
    assert_true(fake_http_count(harness_fake_http()) <= 6);
    /* A new process starts with a full bucket: the second around the
     * restart may hold one message more. */
    assert_true(busiest_second() <= 2);
    assert_burst_accounted("telegram:111", 1000);
}

#define LOG_BURST 20000
#define LOG_FIRE 50 /* the last LOG_FIRE of the burst are critical */

static int log_sent_2000(void *arg)
{
    (void)arg;
    return pg_scalar("SELECT count(*) FROM alert_deliveries WHERE channel = 'log' AND "
                     "state = 'sent'") >= 2000;
}

/* The log takes its backlog in claims of up to 100 alerts (one message
 * each, sent line by line, recorded once). A backlog of 20,000 (the last 50
 * critical, planned last) and a SIGKILL in the middle of it: the critical
 * alerts are the first written; every alert is accounted for exactly once
 * (sent, or failed as interrupted, in exactly one message); only the one
 * claim under way at the kill is interrupted; no line is written twice and
 * every alert recorded sent has its line. */
static void test_log_burst_claimed_in_batches_survives_a_kill(void **state)
{
    (void)state;
    char sql[1024];
    /* A backlog as a notifier that stopped would leave it: the next one
     * resumes it at start. */
    snprintf(sql, sizeof sql,
             "INSERT INTO alerts (alert_id, rule, severity, source, message) SELECT 'lb-' || i, "
             "CASE WHEN i >= %d THEN 'lfire' ELSE 'lburst' END, CASE WHEN i >= %d THEN "
             "'critical' ELSE 'info' END, 'orders', 'line ' || i FROM generate_series(0, %d) i",
             LOG_BURST - LOG_FIRE, LOG_BURST - LOG_FIRE, LOG_BURST - 1);
    pg_exec(sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO alert_deliveries (alert_id, channel, group_key, severity_rank, "
             "planned_at) SELECT 'lb-' || i, 'log', 'lb-' || i, CASE WHEN i >= %d THEN 2 ELSE 0 "
             "END, now() + make_interval(secs => i / 1e6) FROM generate_series(0, %d) i",
             LOG_BURST - LOG_FIRE, LOG_BURST - 1);
    pg_exec(sql);
    pid_t pid = start_notifier("*=log", NULL);
    assert_true(harness_wait_for(log_sent_2000, NULL, TIMEOUT_MS));
    kill(pid, SIGKILL);
    harness_wait(pid, 10000);
    long long at_kill = pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state = 'sent'");
    pid = start_notifier("*=log", NULL);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE state IN ('sent', 'failed')",
                     LOG_BURST, TIMEOUT_MS, NULL);
    stop_notifier(pid, 10000);

    long long interrupted = pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state = "
                                      "'failed' AND last_error LIKE 'interrupted%'");
    print_message("killed with %lld of %d sent; %lld interrupted\n", at_kill, LOG_BURST,
                  interrupted);
    assert_true(at_kill < LOG_BURST);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE state = 'sent'") +
                         interrupted,
                     LOG_BURST);
    /* Each delivery in exactly one message; claims of at most 100. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries WHERE message_id IS NULL"),
                     0);
    assert_int_equal(pg_scalar("SELECT sum(alerts) FROM alert_messages"), LOG_BURST);
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_messages m WHERE alerts <> (SELECT "
                               "count(*) FROM alert_deliveries d WHERE d.message_id = m.id)"),
                     0);
    assert_true(pg_scalar("SELECT max(alerts) FROM alert_messages") <= 100);
    assert_true(pg_scalar("SELECT count(*) FROM alert_messages") >= LOG_BURST / 100);
    assert_true(interrupted <= 100); /* the one claim under way */
    assert_int_equal(pg_scalar("SELECT count(*) FROM alerts WHERE state = 'sent'") + interrupted,
                     LOG_BURST);
    /* Most severe first: the critical alerts went in the first claim. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_deliveries d WHERE severity_rank = 2 "
                               "AND message_id > (SELECT min(message_id) FROM alert_deliveries)"),
                     0);

    /* The lines: none twice, each alert recorded sent has one, and the
     * first written are the critical ones. */
    char *log = harness_slurp(harness_log_path());
    assert_non_null(log);
    static unsigned char lines[LOG_BURST];
    memset(lines, 0, sizeof lines);
    int fire_first = 0, order = 0;
    for (char *p = log; (p = strstr(p, " alert_id=lb-")) != NULL;) {
        p += strlen(" alert_id=lb-");
        long k = strtol(p, &p, 10);
        assert_true(k >= 0 && k < LOG_BURST);
        if (lines[k]++)
            fail_msg("alert lb-%ld was written twice", k);
        if (order++ < LOG_FIRE)
            fire_first += k >= LOG_BURST - LOG_FIRE;
    }
    assert_int_equal(fire_first, LOG_FIRE);
    /* Every alert without a line is one the kill interrupted. */
    char failed[4096];
    pg_text("SELECT COALESCE(string_agg(substr(alert_id, 4), ','), '') FROM alert_deliveries "
            "WHERE state = 'failed'",
            failed, sizeof failed);
    for (char *p = failed; *p;) {
        long k = strtol(p, &p, 10);
        assert_true(k >= 0 && k < LOG_BURST);
        lines[k] = 1; /* accounted for */
        p += *p == ',';
    }
    for (int k = 0; k < LOG_BURST; k++) {
        if (!lines[k])
            fail_msg("alert lb-%d is recorded sent but has no line", k);
    }
    free(log);
}

/* A group whose text is longer than Telegram allows arrives in parts, each
 * within the limit, together the whole text. */
static void test_long_group_is_split_into_parts(void **state)
{
    (void)state;
    char pad[2001];
    memset(pad, 'x', 2000);
    pad[2000] = '\0';
    publish_alerts("wide", "info", 4, pad);
    pid_t pid = start_notifier("*=telegram:111", "--group-wait-ms", "500", "--group-show", "5",
                               "--telegram-rate-per-chat", "20", NULL);
    harness_wait_sql("SELECT count(*) FROM alert_deliveries WHERE state = 'sent'", 4, TIMEOUT_MS,
                     NULL);
    stop_notifier(pid, 5000);
    size_t n = fake_http_count(harness_fake_http());
    assert_int_equal(pg_scalar("SELECT count(*) FROM alert_messages"), 1);
    assert_int_equal(pg_scalar("SELECT parts FROM alert_messages"), (long long)n);
    assert_true(n >= 2);
    char *whole = calloc(1, 65536);
    for (size_t i = 0; i < n; i++) {
        seen s;
        read_request(i, &s);
        assert_true(utf16_len(s.text) <= 4096);
        strcat(whole, s.text);
    }
    assert_non_null(strstr(whole, "<b>[INFO] wide</b>: 4 alerts in "));
    for (int k = 0; k < 4; k++) {
        char line[2100];
        snprintf(line, sizeof line, "\xe2\x80\xa2 (orders) wide %d%s\n", k, pad);
        if (!strstr(whole, line))
            fail_msg("alert %d is not whole in the parts", k);
    }
    free(whole);
}

/* SIGHUP re-reads the routes: alerts under way stay on their way, new ones
 * follow the new routes; a bad file is refused with the line it gives at
 * start and the routes in force stay. */
static void test_sighup_reloads_routes(void **state)
{
    (void)state;
    char conf[256];
    snprintf(conf, sizeof conf, "/tmp/sluice-test-notifier-%d.conf", (int)getpid());
    harness_write_file(conf, "routes = *=telegram:111\n");
    publish_alerts("before", "info", 3, "");
    /* No --routes flag: it would win over the file. */
    const char *argv[] = {harness_bin("sluice-notifier"),
                          "--config",
                          conf,
                          "--telegram-api-url",
                          api,
                          "--group-by",
                          "alert",
                          "--telegram-rate-per-chat",
                          "1",
                          "--metrics-port",
                          "0",
                          NULL};
    pid_t pid = harness_spawn(argv, harness_log_path());
    wait_dest("telegram:111", 1);
    harness_write_file(conf, "routes = *=telegram:222\n");
    kill(pid, SIGHUP);
    harness_wait_log(harness_log_path(), "reloaded routes=\"*=telegram:222\"", 1, TIMEOUT_MS);
    publish_alerts("after", "info", 2, "");
    wait_dest("telegram:222", 2);
    wait_dest("telegram:111", 3); /* in flight at the reload: still delivered */

    /* A mistake: the same line as at start, and the old routes stay. */
    harness_write_file(conf, "routes = *=email\n");
    char err[2048];
    const char *check[] = {
        harness_bin("sluice-notifier"), "--config", conf, "--metrics-port", "0", NULL};
    assert_int_equal(harness_run(check, err, sizeof err, 30000), 2);
    assert_non_null(strstr(err, "unknown channel 'email'"));
    kill(pid, SIGHUP);
    harness_wait_log(harness_log_path(), "reload refused", 1, TIMEOUT_MS);
    char *log = harness_slurp(harness_log_path());
    if (!strstr(log, err))
        fail_msg("the refused reload did not log the start-up line '%s'", err);
    free(log);
    publish_alerts("later", "info", 1, "");
    wait_dest("telegram:222", 3);
    assert_int_equal(count_to("telegram:111"), 3);
    stop_notifier(pid, 5000);
    unlink(conf);
}

/* /metrics counts by channel and destination, and Prometheus' own checker
 * accepts it. */
static void test_metrics_pass_promtool(void **state)
{
    (void)state;
    publish_alerts("met", "warning", 3, "");
    const char *port = harness_port_text(7);
    pid_t pid = start_notifier("*=telegram:111+log", "--group-by", "alert",
                               "--telegram-rate-per-chat", "50", "--metrics-port", port, NULL);
    harness_wait_sql("SELECT count(*) FROM alerts WHERE state = 'sent'", 3, TIMEOUT_MS, NULL);
    char url[128], body[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/metrics", port);
    /* The counters are bumped once the outcome is recorded: poll. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(http_get(url, body, sizeof body), 200);
        if (strstr(body, "sluice_notifier_alerts_delivered_total{channel=\"telegram\","
                         "destination=\"telegram:111\"} 3"))
            break;
        usleep(50000);
    }
    assert_non_null(strstr(body, "sluice_notifier_alerts_delivered_total{channel=\"telegram\","
                                 "destination=\"telegram:111\"} 3"));
    assert_non_null(strstr(
        body, "sluice_notifier_alerts_delivered_total{channel=\"log\",destination=\"log\"} 3"));
    assert_non_null(strstr(body, "sluice_notifier_alerts_received_total 3"));
    assert_non_null(strstr(body, "sluice_notifier_backlog{channel=\"telegram\""));
    char cmd[256], err[4096];
    snprintf(cmd, sizeof cmd, "curl -sf %s | promtool check metrics", url);
    const char *check[] = {"sh", "-c", cmd, NULL};
    int rc = harness_run(check, err, sizeof err, 30000);
    if (rc != 0)
        fail_msg("promtool check metrics failed (%d): %s", rc, err);
    stop_notifier(pid, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        harness_unit_test(test_busy_chat_holds_back_no_other),
        harness_unit_test(test_critical_goes_before_info_backlog),
        harness_unit_test(test_429_holds_back_only_its_chat),
        harness_unit_test(test_hanging_webhook_holds_back_no_chat),
        harness_unit_test(test_kill_midway_exactly_once_per_destination),
        harness_unit_test(test_burst_of_1000_becomes_a_few_messages),
        harness_unit_test(test_burst_survives_a_kill),
        harness_unit_test(test_log_burst_claimed_in_batches_survives_a_kill),
        harness_unit_test(test_long_group_is_split_into_parts),
        harness_unit_test(test_sighup_reloads_routes),
        harness_unit_test(test_metrics_pass_promtool),
    };
    const harness_options options = {
        .setup_args = (const char *const[]){NULL},
        .telegram_token = TOKEN,
        .log_name = "destinations",
        .ready = name_api,
    };
    return harness_run_tests(tests, &options);
}
