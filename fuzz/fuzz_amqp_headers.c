/*
 * fuzz_amqp_headers: the worker's reading of the AMQP properties any
 * publisher may set (event_produced_at_us() in common/event.c: the
 * x-produced-at-us header, else the timestamp property).
 *
 * Input: the property list of a basic.publish content header as it comes
 * off the wire (16-bit flags, then the fields the flags announce), decoded
 * by rabbitmq-c's own amqp_decode_properties() as the consumer receives it.
 *
 * Properties checked, not only the absence of crashes: the time is 0
 * (unknown) or between the epoch and 10^17 us (the year 5138, a time
 * PostgreSQL's timestamptz holds, so one header cannot make a batch's COPY
 * fail); it is the value of the first x-produced-at-us header that is an
 * integer in that range or the decimal text of one in at most 31 bytes
 * (as computed here,
 * independently), else the timestamp property in seconds if in range; the
 * same properties always give the same time.
 */
#include "amqp_api.h"
#include <ctype.h>
#include <string.h>

#include "check.h"
#include "event.h"

#define MAX_US INT64_C(100000000000000000) /* 10^17 us: year 5138 */

/* The header's value as a time, or -1 if it is not one. */
static int64_t value_of(const amqp_field_value_t *v)
{
    int64_t x;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I64:
        x = v->value.i64;
        break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        x = v->value.u64 < (uint64_t)MAX_US ? (int64_t)v->value.u64 : -1;
        break;
    case AMQP_FIELD_KIND_I32:
        x = v->value.i32;
        break;
    case AMQP_FIELD_KIND_U32:
        x = v->value.u32;
        break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
        /* Decimal text as strtoll reads it, at most 31 bytes: blanks, a
         * sign, digits, and nothing after them. */
        if (v->value.bytes.len > 31)
            return -1;
        const uint8_t *s = v->value.bytes.bytes, *end = s + v->value.bytes.len;
        while (s < end && isspace(*s))
            s++;
        int neg = s < end && *s == '-';
        if (s < end && (*s == '-' || *s == '+'))
            s++;
        if (s == end)
            return -1;
        x = 0;
        for (; s < end; s++) {
            if (*s < '0' || *s > '9')
                return -1;
            x = x < MAX_US ? x * 10 + (*s - '0') : MAX_US;
        }
        if (neg)
            x = -x;
        break;
    }
    default:
        return -1;
    }
    return x > 0 && x < MAX_US ? x : -1;
}

static int64_t expected(const amqp_basic_properties_t *p)
{
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            if (e->key.len == strlen("x-produced-at-us") &&
                memcmp(e->key.bytes, "x-produced-at-us", e->key.len) == 0 &&
                value_of(&e->value) > 0)
                return value_of(&e->value);
        }
    }
    if ((p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) && p->timestamp > 0 &&
        p->timestamp < (uint64_t)MAX_US / 1000000)
        return (int64_t)p->timestamp * 1000000;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of its own size, so AddressSanitizer sees a read past it. */
    void *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    amqp_pool_t pool;
    init_amqp_pool(&pool, 4096);
    void *decoded = NULL;
    amqp_bytes_t wire = {size, copy};
    if (amqp_decode_properties(AMQP_BASIC_CLASS, &pool, wire, &decoded) == 0) {
        const amqp_basic_properties_t *p = decoded;
        int64_t us = event_produced_at_us(p);
        CHECK(us == 0 || (us > 0 && us < MAX_US), "time %lld out of range", (long long)us);
        CHECK(us == expected(p), "time %lld, expected %lld", (long long)us, (long long)expected(p));
        CHECK(event_produced_at_us(p) == us, "the same properties, another time");
    }
    empty_amqp_pool(&pool);
    free(copy);
    return 0;
}
