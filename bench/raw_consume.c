/*
 * bench-raw-consume: the broker's ceiling for the worker side. Consumes the
 * four source queues (sluice.q.<source>) on one channel, as a unified
 * worker does, with the same prefetch per queue, and acknowledges every
 * `batch` deliveries with one basic.ack (multiple), as a worker does after
 * a commit; but it never looks at a body and has no database.
 *
 *   bench-raw-consume AMQP_URL TOTAL PREFETCH BATCH
 *
 * Stops after TOTAL deliveries. Prints one line: events=N seconds=S rate=R,
 * timed from launch (connecting included, as for the workers) to the last
 * acknowledgement being taken by the broker (the channel's close-ok, which
 * comes after it). Exits 1 on any broker error or after 30 s with nothing
 * delivered.
 */
#include "amqp_api.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const sources[] = {"profiles", "clickstream", "orders", "sensors"};
enum { NSOURCES = 4 };

static int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench-raw-consume: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    die(what, r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(r.library_error)
                                                              : "refused by the broker");
}

int main(int argc, char **argv)
{
    int64_t t0 = mono_now_us();
    if (argc != 5) {
        fprintf(stderr, "usage: bench-raw-consume AMQP_URL TOTAL PREFETCH BATCH\n");
        return 2;
    }
    char *url = strdup(argv[1]);
    uint64_t total = strtoull(argv[2], NULL, 10);
    long prefetch = strtol(argv[3], NULL, 10), batch = strtol(argv[4], NULL, 10);
    struct amqp_connection_info ci;
    if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK || total == 0 || prefetch < 1 ||
        prefetch > 65535 || batch < 1) {
        fprintf(stderr, "bench-raw-consume: bad arguments (url, total, prefetch, batch)\n");
        return 2;
    }
    amqp_connection_state_t st = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(st);
    if (!sock || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK)
        die("cannot connect", ci.host);
    check(amqp_login(st, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password),
          "login");
    amqp_channel_open(st, 1);
    check(amqp_get_rpc_reply(st), "channel.open");
    amqp_basic_qos(st, 1, 0, (uint16_t)prefetch, 0);
    check(amqp_get_rpc_reply(st), "basic.qos");
    for (int s = 0; s < NSOURCES; s++) {
        char queue[64];
        snprintf(queue, sizeof queue, "sluice.q.%s", sources[s]);
        amqp_basic_consume(st, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                           amqp_empty_table);
        check(amqp_get_rpc_reply(st), queue);
    }
    /* For a caller waiting until the consumers are registered. */
    fprintf(stderr, "bench-raw-consume: consuming\n");

    uint64_t got = 0, last_tag = 0;
    long pending = 0;
    while (got < total) {
        amqp_envelope_t e;
        amqp_maybe_release_buffers(st);
        struct timeval tv = {.tv_sec = 30, .tv_usec = 0};
        amqp_rpc_reply_t r = amqp_consume_message(st, &e, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            fprintf(stderr, "bench-raw-consume: nothing delivered for 30 s after %llu of %llu\n",
                    (unsigned long long)got, (unsigned long long)total);
            return 1;
        }
        check(r, "consuming");
        last_tag = e.delivery_tag;
        amqp_destroy_envelope(&e);
        got++;
        if (++pending >= batch || got == total) {
            if (amqp_basic_ack(st, 1, last_tag, 1) != AMQP_STATUS_OK)
                die("acknowledging", NULL);
            pending = 0;
        }
    }
    /* close-ok comes after the broker has processed every ack before it. */
    check(amqp_channel_close(st, 1, AMQP_REPLY_SUCCESS), "channel.close");
    double secs = (double)(mono_now_us() - t0) / 1e6;
    printf("events=%llu seconds=%.3f rate=%.0f\n", (unsigned long long)got, secs,
           (double)got / secs);
    amqp_connection_close(st, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(st);
    free(url);
    return 0;
}
