/*
 * deadmsg: see deadmsg.h.
 */
#include "deadmsg.h"

#include <stdio.h>
#include <string.h>

#include "event.h"

static const amqp_field_value_t *header(const amqp_basic_properties_t *props, const char *key)
{
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    size_t klen = strlen(key);
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (e->key.len == klen && memcmp(e->key.bytes, key, klen) == 0)
            return &e->value;
    }
    return NULL;
}

int dead_header_text(const amqp_basic_properties_t *props, const char *key, char *out, size_t cap)
{
    const amqp_field_value_t *v = header(props, key);
    out[0] = '\0';
    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        return 0;
    snprintf(out, cap, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
    return 1;
}

int64_t dead_header_int(const amqp_basic_properties_t *props, const char *key, int64_t fallback)
{
    const amqp_field_value_t *v = header(props, key);
    if (!v)
        return fallback;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
        return (int64_t)v->value.u64;
    default:
        return fallback;
    }
}

void dead_info_read(amqp_bytes_t routing_key, const amqp_basic_properties_t *props, dead_info *out)
{
    memset(out, 0, sizeof *out);
    size_t plen = strlen(SLUICE_ROUTING_PREFIX);
    if (routing_key.len > plen && routing_key.len - plen < sizeof out->source &&
        memcmp(routing_key.bytes, SLUICE_ROUTING_PREFIX, plen) == 0) {
        memcpy(out->source, (const char *)routing_key.bytes + plen, routing_key.len - plen);
        if (!source_name_valid(out->source))
            out->source[0] = '\0';
    }
    if (!dead_header_text(props, SLUICE_HEADER_REASON, out->reason, sizeof out->reason) &&
        !dead_header_text(props, "x-first-death-reason", out->reason, sizeof out->reason))
        snprintf(out->reason, sizeof out->reason, "unknown");
}

int dead_info_matches(const dead_info *info, const char *source, const char *reason)
{
    if (source && *source && strcmp(info->source, source) != 0)
        return 0;
    if (reason && *reason && strcmp(info->reason, reason) != 0)
        return 0;
    return 1;
}
