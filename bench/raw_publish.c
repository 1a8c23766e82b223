/*
 * bench-raw-publish: the broker's ceiling for the producer side. Publishes
 * the same events sluice-producer would (the generator's four simulated
 * sources, round robin, `count` each) straight through rabbitmq-c:
 * persistent, with the contract's properties and headers, publisher
 * confirms and a window of unconfirmed messages, and nothing else: no
 * republishing, no reconnecting, no copy of the message kept.
 *
 *   bench-raw-publish AMQP_URL COUNT_PER_SOURCE SEED WINDOW
 *
 * Prints one line: events=N seconds=S rate=R (first publish to last
 * confirm). Exits 1 on any broker error.
 */
#include "amqp_api.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generator.h"

static const char *const sources[] = {"profiles", "clickstream", "orders", "sensors"};
enum { NSOURCES = 4 };

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench-raw-publish: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    die(what, r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(r.library_error)
                                                              : "refused by the broker");
}

/* acked[tag] is set once delivery tag `tag` is confirmed; confirmed is the
 * count of the unbroken run of confirmed tags from 1 (what the window and
 * the final wait go by), so out-of-order confirms are counted right. */
static unsigned char *acked;
static uint64_t through; /* every tag <= through is confirmed */

static void mark(uint64_t tag, int multiple)
{
    if (multiple) {
        for (uint64_t t = through + 1; t <= tag; t++)
            acked[t] = 1;
    } else {
        acked[tag] = 1;
    }
    while (acked[through + 1])
        through++;
}

/* Reads confirms: waits up to timeout_us for the first frame, then takes
 * whatever else has arrived. Returns how many are confirmed in a row. */
static uint64_t read_confirms(amqp_connection_state_t st, uint64_t confirmed, long timeout_us)
{
    struct timeval tv = {.tv_sec = timeout_us / 1000000, .tv_usec = timeout_us % 1000000};
    for (;;) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(st, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            return confirmed;
        if (rc != AMQP_STATUS_OK)
            die("waiting for confirms", amqp_error_string2(rc));
        if (f.frame_type == AMQP_FRAME_METHOD) {
            if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *a = f.payload.method.decoded;
                mark(a->delivery_tag, a->multiple);
                confirmed = through;
            } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                die("broker refused a message (nack)", NULL);
            } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                       f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
                die("broker closed the channel", NULL);
            }
        }
        tv.tv_sec = 0;
        tv.tv_usec = 0;
    }
}

/* Publishes one event as sluice's producer would (the message contract's
 * properties and headers), persistent, to sluice.ingest. */
static void publish_one(amqp_connection_state_t st, const char *source, const char *id,
                        const char *body, size_t len)
{
    char rk[64];
    int64_t now = clock_us(CLOCK_REALTIME);
    snprintf(rk, sizeof rk, "src.%s", source);
    amqp_table_entry_t h[2] = {
        {.key = amqp_cstring_bytes("x-source"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(source)}},
        {.key = amqp_cstring_bytes("x-produced-at-us"),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = now}},
    };
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG |
                  AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = 2,
        .message_id = amqp_cstring_bytes(id),
        .timestamp = (uint64_t)(now / 1000000),
        .app_id = amqp_cstring_bytes("bench-raw-publish"),
        .headers = {.num_entries = 2, .entries = h},
    };
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    int rc = amqp_basic_publish(st, 1, amqp_cstring_bytes("sluice.ingest"), amqp_cstring_bytes(rk),
                                0, 0, &p, b);
    if (rc != AMQP_STATUS_OK)
        die("publishing", amqp_error_string2(rc));
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench-raw-publish AMQP_URL COUNT_PER_SOURCE SEED WINDOW\n");
        return 2;
    }
    char *url = strdup(argv[1]);
    uint64_t count = strtoull(argv[2], NULL, 10), seed = strtoull(argv[3], NULL, 10);
    uint64_t window = strtoull(argv[4], NULL, 10);
    struct amqp_connection_info ci;
    if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK || count == 0 || window == 0) {
        fprintf(stderr, "bench-raw-publish: bad arguments (url, count, window)\n");
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
    amqp_confirm_select(st, 1);
    check(amqp_get_rpc_reply(st), "confirm.select");

    generator_kind kinds[NSOURCES];
    for (int s = 0; s < NSOURCES; s++)
        generator_kind_parse(sources[s], &kinds[s]);
    /* One flag per delivery tag, plus tag 0 and a sentinel. */
    acked = calloc(count * NSOURCES + 2, 1);
    if (!acked)
        die("out of memory", NULL);
    char body[2048], id[128];
    uint64_t published = 0, confirmed = 0;
    int64_t t0 = clock_us(CLOCK_MONOTONIC);
    for (uint64_t n = 0; n < count; n++) {
        for (int s = 0; s < NSOURCES; s++) {
            int len =
                generator_make(kinds[s], seed, sources[s], n, body, sizeof body, id, sizeof id);
            if (len < 0)
                die("generator buffer too small", NULL);
            while (published - confirmed >= window)
                confirmed = read_confirms(st, confirmed, 200000);
            publish_one(st, sources[s], id, body, (size_t)len);
            published++;
        }
        /* Take confirms as they come so the window rarely fills. */
        if (n % 64 == 63)
            confirmed = read_confirms(st, confirmed, 0);
    }
    while (confirmed < published)
        confirmed = read_confirms(st, confirmed, 200000);
    double secs = (double)(clock_us(CLOCK_MONOTONIC) - t0) / 1e6;
    printf("events=%llu seconds=%.3f rate=%.0f\n", (unsigned long long)published, secs,
           (double)published / secs);
    amqp_channel_close(st, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(st, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(st);
    free(acked);
    free(url);
    return 0;
}
