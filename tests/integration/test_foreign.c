/* Integration tests: messages from other AMQP clients (amqp-publish from
 * Debian's amqp-tools, which sets no message_id or headers) are stored too,
 * and poison input lands in ingest_errors instead of looping or vanishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "harness.h"

#define TIMEOUT_MS 120000

static void drain_with_worker(void)
{
    harness_drain(NULL);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
}

static void test_foreign_message_is_stored_once(void **state)
{
    (void)state;
    const char body[] = "{\"order_id\":\"ext-1\",\"total\":12.5,\"from\":\"amqp-publish\"}";
    harness_amqp_publish("src.orders", body);
    harness_amqp_publish("src.orders", body); /* same content, no message_id: same derived id */
    drain_with_worker();

    char expected[EVENT_DERIVED_ID_LEN + 1], got[128];
    event_derive_id("orders", body, strlen(body), expected);
    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 1);
    pg_text("SELECT msg_id FROM events WHERE source = 'orders'", got, sizeof got);
    assert_string_equal(got, expected);
    assert_int_equal(pg_scalar("SELECT (payload->>'total')::numeric * 10 FROM events"), 125);
    /* No x-produced-at-us and no timestamp: produced_at stays unknown. */
    assert_int_equal(pg_scalar("SELECT count(*) FROM events WHERE produced_at IS NULL"), 1);
}

/* Each kind of poison is recorded with its raw bytes and reason, acked,
 * and does not hold back the good events around it. */
static void test_poison_goes_to_ingest_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *reason;
    } poison[] = {
        {"{\"broken\": ", "invalid_json"},
        {"[1, 2, 3]", "not_an_object"},
        {"{\"text\":\"nul \\u0000 inside\"}", "nul_character"},
        {"{\"name\":\"\xff\xfe\"}", "invalid_utf8"},
        /* Valid JSON that PostgreSQL still refuses: isolated row by row. */
        {"{\"huge\":1e1000000}", "rejected_by_database"},
    };
    harness_amqp_publish("src.orders", "{\"good\":1}");
    for (size_t i = 0; i < sizeof poison / sizeof *poison; i++)
        harness_amqp_publish("src.orders", poison[i].body);
    harness_amqp_publish("src.orders", "{\"good\":2}");
    drain_with_worker();

    assert_int_equal(pg_scalar("SELECT count(*) FROM events"), 2);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"),
                     sizeof poison / sizeof *poison);
    for (size_t i = 0; i < sizeof poison / sizeof *poison; i++) {
        char sql[512], raw[256], want[256] = "";
        snprintf(sql, sizeof sql,
                 "SELECT encode(raw, 'hex') FROM ingest_errors WHERE reason = '%s'",
                 poison[i].reason);
        pg_text(sql, raw, sizeof raw);
        /* Every byte, in hex (the bytes >= 0x80 of invalid_utf8 included):
         * a record that cut, re-encoded or replaced any byte of the body
         * would lose the evidence it exists to keep. */
        for (const unsigned char *b = (const unsigned char *)poison[i].body; *b; b++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%02x", *b);
        if (strcmp(raw, want) != 0)
            fail_msg("reason %s: raw %s is not the body %s", poison[i].reason, raw, want);
    }
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = "
                               "'rejected_by_database' AND detail LIKE '%numeric%'"),
                     1);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE source <> 'orders'"), 0);

    /* A second worker finds nothing left to do: nothing loops. */
    drain_with_worker();
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors"),
                     sizeof poison / sizeof *poison);
}

static void test_oversize_body_is_recorded(void **state)
{
    (void)state;
    char body[3000];
    memset(body, ' ', sizeof body - 1);
    body[0] = '{';
    body[sizeof body - 2] = '}';
    body[sizeof body - 1] = '\0';
    harness_amqp_publish("src.orders", body);
    const char *argv[] = {
        harness_bin("sluice-worker"), "--idle-exit-ms", "1500", "--metrics-port", "0",
        "--max-message-bytes",        "2048",           NULL};
    assert_int_equal(harness_run(argv, NULL, 0, TIMEOUT_MS), 0);
    assert_int_equal(pg_scalar("SELECT count(*) FROM ingest_errors WHERE reason = 'too_large'"
                               " AND length(raw) = 2999"),
                     1);
    assert_int_equal(queue_ready("sluice.q.orders"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_foreign_message_is_stored_once, harness_test_setup),
        cmocka_unit_test_setup(test_poison_goes_to_ingest_errors, harness_test_setup),
        cmocka_unit_test_setup(test_oversize_body_is_recorded, harness_test_setup),
    };
    return harness_run_tests(tests, NULL);
}
