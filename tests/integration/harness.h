/*
 * harness: what the integration tests need to drive sluice's binaries
 * against the real servers of scripts/stack.sh: running tools, waiting for
 * conditions, and looking at the warehouse and the queues.
 *
 * The servers are found through SLUICE_AMQP_URL and SLUICE_PG_DSN (as
 * printed by `scripts/stack.sh env`); a test fails with advice if unset.
 */
#ifndef SLUICE_HARNESS_H
#define SLUICE_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "publisher.h"

/* The AMQP URL and PostgreSQL DSN of the stack under test. */
const char *harness_amqp_url(void);
const char *harness_pg_dsn(void);

/* The simulated sources of sluice's default source list. */
#define HARNESS_SOURCES 4
extern const char *const harness_sources[HARNESS_SOURCES];

/* What a group of tests needs beyond the defaults; zero fields take them. */
typedef struct harness_options {
    /* sluice-setup's arguments (NULL-terminated); NULL: the demo's
     * projections (--projections config/projections.conf). */
    const char *const *setup_args;
    /* The sources whose queues harness_reset() empties; NULL: the demo's
     * harness_sources. */
    const char *const *sources;
    size_t nsources;
    /* What else harness_reset() empties (HARNESS_EMPTY_* bits). */
    unsigned empties;
    /* The notifier's tests: starts fakehttp's server on harness_port(6)
     * for the group (harness_fake_http(), the fake Telegram API), gives
     * notifiers this token, and has harness_reset() empty the alert tables,
     * sluice.q.notifier and sluice.dead. */
    const char *telegram_token;
    /* Fails the group setup, with advice, unless SLUICE_MGMT_URL is set. */
    int needs_mgmt;
    /* Gives the group a fresh directory (harness_workdir()), removed with
     * its contents by the group teardown. */
    int workdir;
    /* Names the group's log (harness_log_path()): /tmp/sluice-test-<name>-<pid>.log. */
    const char *log_name;
    /* Called once, after the group's first sluice-setup, for what else the
     * group needs (a rules file); nonzero fails the group. */
    int (*ready)(void);
} harness_options;

#define HARNESS_EMPTY_ALERTS 1u   /* the alert tables */
#define HARNESS_EMPTY_NOTIFIER 2u /* sluice.q.notifier */
#define HARNESS_EMPTY_DEAD 4u     /* sluice.dead */

struct CMUnitTest;

/* Runs a cmocka group of tests with harness_group_setup and
 * harness_group_teardown under options (NULL: the defaults); returns
 * cmocka's result. Use through harness_run_tests(tests, options). */
int harness_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                      const harness_options *options);
#define harness_run_tests(tests, options)                                                          \
    harness_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]), options)

/* A cmocka group setup: runs sluice-setup (topology and migrations) with the
 * group's arguments, and, the first time, prepares what the options ask
 * for. Tests that broke the topology call it again to restore it. */
int harness_group_setup(void **state);

/* A cmocka group teardown: stops the fake HTTP server and removes the
 * workdir, if the options made them. */
int harness_group_teardown(void **state);

/* Starts a test from scratch: kills what an earlier failed test left
 * running, empties the warehouse's tables, the group's source queues,
 * sluice.q.unrouted, whatever the options' empties name, the fake HTTP
 * server's record and the group's log. */
void harness_reset(void);

/* harness_reset and harness_kill_spawned as cmocka setup and teardown of
 * one test. */
int harness_test_setup(void **state);
int harness_test_teardown(void **state);

/* A cmocka test with those two around it. */
#define harness_unit_test(f)                                                                       \
    cmocka_unit_test_setup_teardown(f, harness_test_setup, harness_test_teardown)

/* The group's fake HTTP server, workdir and log path (see harness_options). */
struct fake_http *harness_fake_http(void);
const char *harness_workdir(void);
const char *harness_log_path(void);

/* Waits until the group's fake HTTP server has received at_least requests,
 * SIGKILLs pid (a notifier) and reaps it; fails the test unless fewer than
 * all `total` requests due had arrived by then, that is, unless the kill
 * struck mid-work. Returns the requests received at the kill. */
size_t harness_kill_mid_requests(pid_t pid, size_t at_least, size_t total);

/* Writes text to path, aside first and renamed, as an editor or a
 * deployment would, so a process watching the file never reads half of it.
 * Fails the test on error. */
void harness_write_file(const char *path, const char *text);

/* Fills out with n letters and digits drawn from `seed` (the same seed,
 * the same text) and a NUL. PostgreSQL compresses a repetitive long value
 * until it fits an index; such text does not compress, as real keys do not. */
void harness_random_text(char *out, size_t n, unsigned seed);

/* Waits up to timeout_ms until the integer query sql returns at least want;
 * fails the test otherwise, showing the value and the file at log_path (may
 * be NULL). */
void harness_wait_sql(const char *sql, long long want, long timeout_ms, const char *log_path);

/* Ready messages over all source queues. */
long harness_backlog(void);

/* Fails the test unless every source queue is empty. */
void assert_source_queues_empty(void);

/* A loopback port for test number n's /metrics, derived from the stack's
 * AMQP port, so test runs against different stacks never collide. Its
 * text form ("27004") is statically allocated, valid for four calls. */
int harness_port(int n);
const char *harness_port_text(int n);

/* Path of a sluice binary in the build tree ("sluice-worker" -> its path);
 * statically allocated, valid for the next seven calls. */
const char *harness_bin(const char *name);

/* Runs argv to completion with stderr captured into err (cap bytes, NUL
 * terminated; may be NULL). Returns the exit code, or -1 if it died of a
 * signal or ran longer than timeout_ms. */
int harness_run(const char *const argv[], char *err, size_t cap, long timeout_ms);

/* harness_run, also giving the peak resident set (kB) of the process or of
 * any child it waited for, whichever was largest (wait4's ru_maxrss): for
 * sluice-worker, its largest worker process. */
int harness_run_peak_rss(const char *const argv[], char *err, size_t cap, long timeout_ms,
                         long *peak_kb);

/* Runs sluice-worker until it has been idle 1.5 s (--idle-exit-ms 1500,
 * --metrics-port 0, then the NULL-terminated extra arguments; extra may be
 * NULL); fails the test, with its stderr, unless it exits 0. */
void harness_drain(const char *const extra[]);

/* Starts argv in the background with stdout and stderr appended to
 * log_path. Returns its pid. */
pid_t harness_spawn(const char *const argv[], const char *log_path);

/* harness_wait(), also giving the largest peak RSS in kB of the process and
 * of any child it waited for (wait4's ru_maxrss). */
int harness_wait_peak_rss(pid_t pid, long timeout_ms, long *peak_kb);

/* Waits for pid to exit, at most timeout_ms (then kills it). Returns the
 * exit code, or -1 after a signal or the timeout. */
int harness_wait(pid_t pid, long timeout_ms);

/* Kills (SIGKILL) and reaps every process harness_spawn started that
 * harness_wait has not reaped: call from teardowns, so a failed test
 * leaves nothing running behind it. */
void harness_kill_spawned(void);

/* Polls cond(arg) every 50 ms until it returns nonzero (returns 1) or
 * timeout_ms passes (returns 0). */
int harness_wait_for(int (*cond)(void *), void *arg, long timeout_ms);

/* From now on the warehouse refuses (a statement trigger on events raises
 * "refused for the test") every COPY or INSERT holding an event whose
 * payload has the key "refuse": such an event keeps failing, so a worker
 * dead-letters it. harness_accept_events() drops the trigger (for
 * teardowns: harmless if there is none). */
void harness_refuse_marked_events(void);
void harness_accept_events(void);

/* Publishes n messages to `exchange` with confirms, as sluice's producer
 * and workers do (a window of 512 unconfirmed): make(i, &m, arg) fills
 * the i-th, whose strings must last until make is called again. Fails the test
 * unless every message is confirmed within `timeout_ms`. */
void harness_publish_each(const char *exchange, int n,
                          void (*make)(int i, pub_message *m, void *arg), void *arg,
                          long timeout_ms);

/* Publishes n alerts to sluice.alerts, with confirms, as a worker would:
 * alert i of rule `rule` has id "<rule>-<i>", routing key
 * alert.<severity>.<rule>, source orders and message before + i + after.
 * Fails the test on error. */
void harness_publish_alerts(const char *rule, const char *severity, int n, const char *before,
                            const char *after);

/* Fails the test unless the warehouse holds exactly what sluice-producer's
 * generator was asked for: for each of the demo's four sources,
 * `per_source` rows whose msg_ids (<source>-<seed>-<seq>) carry every seq
 * from 0 to per_source - 1 once: no event lost (a gap), none stored twice,
 * and no more than asked for. The expected total is the test's, never the
 * producer's report. */
void assert_generated_exactly(long long per_source);

/* Paces storing: from now on every statement that adds events (each
 * worker's COPY of a batch) first sleeps 200 ms, so a worker stores at most
 * batch-size events per 200 ms and a fault test's kill lands while a
 * backlog is still being stored. harness_reset() (and
 * harness_unpace_storing()) drop the trigger. */
void harness_pace_storing(void);
void harness_unpace_storing(void);

/* A gate before storing: once closed, every statement that adds events
 * waits inside it (its session's application_name reads "harness gate")
 * until harness_open_gate(). While it is closed no batch commits, so a
 * worker killed once harness_sessions_at_gate() counts it holds a batch
 * certainly (its deliveries unacknowledged, unless it acked before
 * committing), and the rows read then are exact. harness_open_gate() also
 * drops it; so does harness_reset(). Nothing that locks events whole
 * (harness_unpace_storing(), a DROP or TRUNCATE) may run while it is
 * closed: it would wait for the sessions held at the gate. */
void harness_close_gate(void);
long harness_sessions_at_gate(void);
void harness_open_gate(void);

/* Messages RabbitMQ has delivered again (redelivered flag set) from the
 * demo's source queues since it started: the sum of the management API's
 * message_stats.redeliver (needs SLUICE_MGMT_URL). The statistics lag by up
 * to RabbitMQ's collection interval (5 s): wait for a rise, do not read
 * once. */
long long harness_redelivered(void);

/* GET of path on the stack's RabbitMQ management API (SLUICE_MGMT_URL,
 * user guest); returns the HTTP status with the body in out (cut to cap). */
long harness_mgmt_get(const char *path, char *out, size_t cap);

/* For harness_wait_for after `stack.sh block-publishers`: nonzero once a
 * connection is blocked, that is, it published and RabbitMQ stopped
 * reading from it, so what it sends from then on stays unconfirmed. */
int harness_publisher_blocked(void *arg);

/* Runs one SQL command on the warehouse; fails the test on error. */
void pg_exec(const char *sql);

/* Runs a query returning one integer (first column of the first row);
 * fails the test on error. */
long long pg_scalar(const char *sql);

/* Runs a query returning one text value into out; fails the test on error. */
void pg_text(const char *sql, char *out, size_t cap);

/* Publishes body to sluice.ingest with routing_key through amqp-publish
 * (Debian's amqp-tools): a foreign producer, with no message_id and no
 * headers. Fails the test if it cannot. */
void harness_amqp_publish(const char *routing_key, const char *body);

/* Ready messages in a queue (AMQP passive declare), or -1 if it does not
 * exist. */
long queue_ready(const char *queue);

/* Consumers attached to a queue (AMQP passive declare), -1 if missing. */
long queue_consumers(const char *queue);

/* Removes every ready message from each sluice.q.<source> of the list. */
void queues_purge(const char *const sources[], size_t n);

/* Removes every ready message from one queue (which must exist). */
void queue_purge(const char *queue);

/* For conflict tests: declares a durable classic queue with the arguments
 * sluice-setup gives a source queue plus x-max-length 1, which sluice's
 * queues never have. Delete it with queue_delete(). */
void queue_declare_conflicting(const char *queue);
void queue_delete(const char *queue);

/* Deletes an exchange (with its bindings); sluice-setup declares it again. */
void exchange_delete(const char *exchange);

/* Empties events and ingest_errors. */
void warehouse_truncate(void);

/* Takes one message from a queue (basic.get, acknowledged). Returns 1 with
 * the body (NUL-terminated, cut to cap) and the text value of header
 * `header` (empty if absent) filled, 0 if the queue is empty. */
int queue_get(const char *queue, char *body, size_t body_cap, const char *header, char *value,
              size_t value_cap);

/* Takes the next message from sluice.dead; fails the test unless there is
 * one, its body is `body` and its x-sluice-reason holds `reason`. */
void assert_dead_letter(const char *body, const char *reason);

/* GET of a URL on loopback; returns the HTTP status (0 if it could not
 * connect) with the body in out (cut to cap). */
long http_get(const char *url, char *out, size_t cap);

/* Runs scripts/stack.sh VERB (stop-pg, start-rabbit, ...); fails the test
 * unless it succeeds. */
void stack_ctl(const char *verb);

/* Pid of the most recent "worker started worker=N pid=P" line for worker
 * N in a log file, or 0. */
int harness_worker_pid(const char *log_path, int worker);

/* How often `text` occurs in the file at path (0 if it cannot be read). */
int harness_log_count(const char *path, const char *text);

/* Waits up to timeout_ms until `text` occurs at least `times` times in the
 * file at path; fails the test, showing the file, if it never does. */
void harness_wait_log(const char *path, const char *text, int times, long timeout_ms);

/* The largest integer that follows `key` anywhere in the file at path
 * ("buffered=" in "... buffered=12 ..."), or -1 if key never occurs. */
long long harness_log_max(const char *path, const char *key);

/* Reads a whole file into a malloc'd NUL-terminated string (NULL if none). */
char *harness_slurp(const char *path);

#endif
