/*
 * mq: see mq.h.
 */
#include "mq.h"

#include "amqp_api.h"
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct mq_conn {
    amqp_connection_state_t state;
    int broken; /* the peer or the socket failed: no polite close */
    char url[512];
    char *full_url; /* with its password, for mq_connect_again() */
};

void mq_redact_url(const char *url, char *out, size_t outlen)
{
    const char *scheme_end = strstr(url, "://");
    const char *at = strrchr(url, '@');
    const char *userinfo = scheme_end ? scheme_end + 3 : url;
    const char *colon = at ? memchr(userinfo, ':', (size_t)(at - userinfo)) : NULL;
    if (!colon) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s%s", (int)(colon - url), url, at);
}

/* The process's TLS settings (mq_set_tls), copied so that they outlive the
 * settings struct they came from. Verification is on until told otherwise. */
static struct {
    char ca_file[PATH_MAX];
    char cert_file[PATH_MAX];
    char key_file[PATH_MAX];
    int verify_peer;
    int verify_hostname;
} tls_settings = {.verify_peer = 1, .verify_hostname = 1};

/* A TLS file setting: unset, or a file this process can read. */
static int check_tls_path(const char *path, const char *prefix, const char *setting, char *err,
                          size_t errlen)
{
    if (!path || !*path)
        return 0;
    if (strlen(path) >= PATH_MAX) {
        snprintf(err, errlen, "%s_%s: path too long", prefix, setting);
        return -1;
    }
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s_%s: cannot read %s: %s", prefix, setting, path, strerror(errno));
        return -1;
    }
    return 0;
}

int mq_tls_check(const mq_tls *tls, const char *prefix, char *err, size_t errlen)
{
    int has_cert = tls->cert_file && *tls->cert_file;
    int has_key = tls->key_file && *tls->key_file;
    if (has_cert != has_key) {
        snprintf(err, errlen, "%s_%s is set but %s_%s is not: a client certificate needs its key",
                 prefix, has_cert ? "cert_file" : "key_file", prefix,
                 has_cert ? "key_file" : "cert_file");
        return -1;
    }
    if (check_tls_path(tls->ca_file, prefix, "ca_file", err, errlen) != 0 ||
        check_tls_path(tls->cert_file, prefix, "cert_file", err, errlen) != 0 ||
        check_tls_path(tls->key_file, prefix, "key_file", err, errlen) != 0)
        return -1;
    return 0;
}

/* dst (PATH_MAX bytes) := path, "" if unset; mq_tls_check() bounded it. */
static void copy_tls_path(char *dst, const char *path)
{
    snprintf(dst, PATH_MAX, "%s", path ? path : "");
}

int mq_set_tls(const mq_tls *tls, char *err, size_t errlen)
{
    if (mq_tls_check(tls, "amqp", err, errlen) != 0)
        return -1;
    copy_tls_path(tls_settings.ca_file, tls->ca_file);
    copy_tls_path(tls_settings.cert_file, tls->cert_file);
    copy_tls_path(tls_settings.key_file, tls->key_file);
    tls_settings.verify_peer = tls->verify_peer;
    tls_settings.verify_hostname = tls->verify_hostname;
    return 0;
}

/* Applies the TLS settings to a fresh SSL socket. */
static int configure_tls(amqp_socket_t *sock, const char *url, char *err, size_t errlen)
{
    int status;
    if (tls_settings.ca_file[0]) {
        status = amqp_ssl_socket_set_cacert(sock, tls_settings.ca_file);
        if (status != AMQP_STATUS_OK) {
            snprintf(err, errlen, "%s: amqp_ca_file %s: cannot load the CA certificates", url,
                     tls_settings.ca_file);
            return -1;
        }
    } else {
        SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
        if (!ctx || SSL_CTX_set_default_verify_paths(ctx) != 1) {
            snprintf(err, errlen, "%s: cannot load the system's CA certificates", url);
            return -1;
        }
    }
    if (tls_settings.cert_file[0]) {
        status = amqp_ssl_socket_set_key(sock, tls_settings.cert_file, tls_settings.key_file);
        if (status != AMQP_STATUS_OK) {
            snprintf(err, errlen, "%s: amqp_cert_file %s / amqp_key_file %s: cannot load: %s", url,
                     tls_settings.cert_file, tls_settings.key_file, amqp_error_string2(status));
            return -1;
        }
    }
    amqp_ssl_socket_set_verify_peer(sock, tls_settings.verify_peer ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(sock, tls_settings.verify_hostname ? 1 : 0);
    return 0;
}

static int is_tls_status(int status)
{
    return status == AMQP_STATUS_SSL_ERROR || status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
           status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
           status == AMQP_STATUS_SSL_CONNECTION_FAILED;
}

/* Why a connection failed, in words that point at the setting to fix:
 * rabbitmq-c's own strings for TLS failures name no file and no host. */
static void describe_open_failure(int status, const char *url, const char *host, char *err,
                                  size_t errlen)
{
    const char *cas = tls_settings.ca_file[0] ? tls_settings.ca_file : "the system's CA store";
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    switch (status) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        snprintf(err, errlen,
                 "%s: cannot connect: TLS: the broker's certificate is not signed by a CA in "
                 "amqp_ca_file (%s)",
                 url, cas);
        break;
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        snprintf(err, errlen,
                 "%s: cannot connect: TLS: the broker's certificate does not name host '%s' "
                 "(use the name it was issued for, or amqp_verify_hostname=false)",
                 url, host);
        break;
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        snprintf(err, errlen, "%s: cannot connect: TLS handshake failed%s%s", url,
                 reason[0] ? ": "
                           : " (the broker may require a client certificate: "
                             "amqp_cert_file, amqp_key_file)",
                 reason);
        break;
    default:
        snprintf(err, errlen, "%s: cannot connect: %s", url, amqp_error_string2(status));
    }
    ERR_clear_error();
}

static void describe_tls_refusal(const char *url, char *err, size_t errlen)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "no reason given";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    snprintf(err, errlen, "%s: login: TLS: the broker ended the session (%s)%s", url, reason,
             tls_settings.cert_file[0]
                 ? ": is amqp_cert_file signed by a CA the broker trusts?"
                 : ": the broker may require a client certificate (amqp_cert_file, amqp_key_file)");
    ERR_clear_error();
}

amqp_connection_state_t mq_amqp(mq_conn *c)
{
    return c->state;
}

const char *mq_url(const mq_conn *c)
{
    return c->url;
}

int mq_fail(mq_conn *c, int status, const char *what, char *err, size_t errlen)
{
    if (c)
        c->broken = 1;
    snprintf(err, errlen, "%s: %s", what, amqp_error_string2(status));
    return -1;
}

/* Said after a refusal for lack of permission: sluice-setup gives each
 * component's user only what its own operations need. */
static const char *refusal_hint(unsigned code)
{
    return code == AMQP_ACCESS_REFUSED
               ? " (this RabbitMQ user lacks the permission; docs/security.md lists what each "
                 "sluice user may do)"
               : "";
}

int mq_check(mq_conn *c, amqp_rpc_reply_t reply, const char *what, char *err, size_t errlen)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: missing RPC reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(reply.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = reply.reply.decoded;
            snprintf(err, errlen, "%s: server closed the channel: %u %.*s%s", what, m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                     refusal_hint(m->reply_code));
        } else if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = reply.reply.decoded;
            snprintf(err, errlen, "%s: server closed the connection: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: unexpected server method 0x%08x", what, reply.reply.id);
        }
        break;
    }
    if (c)
        c->broken = 1;
    return -1;
}

/* Logs in (announcing that consumers may be cancelled) and opens the
 * channel. Returns 0, or -1 with err. */
static int login(mq_conn *c, const struct amqp_connection_info *info, int heartbeat_s, char *err,
                 size_t errlen)
{
    /* consumer_cancel_notify: without it RabbitMQ drops a consumer whose
     * queue is deleted (or whose node goes away) without a word, and the
     * queue is then silently not consumed. */
    amqp_table_entry_t capability = {
        .key = amqp_cstring_bytes("consumer_cancel_notify"),
        .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    amqp_table_entry_t property = {
        .key = amqp_cstring_bytes("capabilities"),
        .value = {.kind = AMQP_FIELD_KIND_TABLE,
                  .value.table = {.num_entries = 1, .entries = &capability}}};
    amqp_table_t properties = {.num_entries = 1, .entries = &property};
    amqp_rpc_reply_t r =
        amqp_login_with_properties(c->state, info->vhost, 0, 131072, heartbeat_s, &properties,
                                   AMQP_SASL_METHOD_PLAIN, info->user, info->password);
    char what[600];
    snprintf(what, sizeof what, "%s: login", c->url);
    if (info->ssl && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        is_tls_status(r.library_error)) {
        /* Under TLS 1.3 a broker that refuses our certificate (or its
         * absence) says so only after the handshake, at the first read. */
        describe_tls_refusal(c->url, err, errlen);
        mq_mark_broken(c);
        return -1;
    }
    if (mq_check(c, r, what, err, errlen) != 0)
        return -1;
    amqp_channel_open(c->state, MQ_CHANNEL);
    snprintf(what, sizeof what, "%s: channel open", c->url);
    if (mq_check(c, amqp_get_rpc_reply(c->state), what, err, errlen) != 0)
        return -1;
    return 0;
}

mq_conn *mq_connect(const char *url, int heartbeat_s, long timeout_ms, char *err, size_t errlen)
{
    struct amqp_connection_info info;
    mq_conn *c = calloc(1, sizeof *c);
    char *parsed = strdup(url);
    if (!c || !parsed) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    mq_redact_url(url, c->url, sizeof c->url);
    if (!(c->full_url = strdup(url))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    amqp_default_connection_info(&info);
    if (amqp_parse_url(parsed, &info) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "bad AMQP URL '%s' (expected amqp://user:pass@host:port/vhost)",
                 c->url);
        goto fail;
    }
    /* "amqp://host/" names the empty vhost by the letter of the URI spec, but
     * everyone means the default one, and RabbitMQ has no empty vhost. */
    if (info.vhost == NULL || info.vhost[0] == '\0')
        info.vhost = "/";
    c->state = amqp_new_connection();
    if (!c->state) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    amqp_socket_t *sock = info.ssl ? amqp_ssl_socket_new(c->state) : amqp_tcp_socket_new(c->state);
    if (!sock) {
        snprintf(err, errlen, "%s: cannot create socket", c->url);
        goto fail;
    }
    if (info.ssl && configure_tls(sock, c->url, err, errlen) != 0)
        goto fail;
    /* Only for TLS: the first call into OpenSSL's error queue initialises
     * the library, some 1.7 MB of resident memory a plain connection does
     * not need. */
    if (info.ssl)
        ERR_clear_error();
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int status = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
    if (status != AMQP_STATUS_OK) {
        describe_open_failure(status, c->url, info.host, err, errlen);
        goto fail;
    }
    if (login(c, &info, heartbeat_s, err, errlen) != 0)
        goto fail;
    free(parsed);
    return c;
fail:
    free(parsed);
    mq_close(c);
    return NULL;
}

mq_conn *mq_connect_any(const strlist *urls, size_t *next, int heartbeat_s, long timeout_ms,
                        char *err, size_t errlen)
{
    if (urls->count == 0) {
        snprintf(err, errlen, "no AMQP URL configured");
        return NULL;
    }
    for (size_t tried = 0; tried < urls->count; tried++) {
        size_t i = (*next + tried) % urls->count;
        mq_conn *c = mq_connect(urls->items[i], heartbeat_s, timeout_ms, err, errlen);
        if (c) {
            *next = (i + 1) % urls->count;
            return c;
        }
    }
    *next = (*next + 1) % urls->count;
    return NULL;
}

int mq_queues_missing(mq_conn *c, const strlist *queues, int *missing, char *err, size_t errlen)
{
    amqp_connection_state_t st = c->state;
    for (size_t i = 0; i < queues->count; i++) {
        /* A passive declare of a missing queue closes its channel, so each
         * check has a channel of its own, never reused. */
        amqp_channel_t ch = (amqp_channel_t)(MQ_CHANNEL + 1 + i);
        amqp_channel_open(st, ch);
        if (mq_check(c, amqp_get_rpc_reply(st), "opening a channel", err, errlen) != 0)
            return -1;
        amqp_queue_declare(st, ch, amqp_cstring_bytes(queues->items[i]), 1, 0, 0, 0,
                           amqp_empty_table);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
            ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
            amqp_channel_close_ok_t ok = {0};
            if (amqp_send_method(st, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
                return mq_fail(c, AMQP_STATUS_SOCKET_ERROR, "closing a channel", err, errlen);
            missing[i] = 1;
            continue;
        }
        char what[300];
        snprintf(what, sizeof what, "looking for queue %s", queues->items[i]);
        if (mq_check(c, r, what, err, errlen) != 0)
            return -1;
        missing[i] = 0;
        amqp_channel_close(st, ch, AMQP_REPLY_SUCCESS);
        if (mq_check(c, amqp_get_rpc_reply(st), "closing a channel", err, errlen) != 0)
            return -1;
    }
    return 0;
}

int mq_read_unexpected(mq_conn *c, char *err, size_t errlen)
{
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame(mq_amqp(c), &frame);
    if (rc != AMQP_STATUS_OK)
        return mq_fail(c, rc, "reading from broker", err, errlen);
    return mq_unexpected_frame(c, &frame, err, errlen);
}

int mq_unexpected_frame(mq_conn *c, const amqp_frame_t *frame, char *err, size_t errlen)
{
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (frame->payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = frame->payload.method.decoded;
        snprintf(err, errlen, "broker closed the channel: %u %.*s%s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                 refusal_hint(m->reply_code));
        break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = frame->payload.method.decoded;
        snprintf(err, errlen, "broker closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        break;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        amqp_basic_cancel_t *m = frame->payload.method.decoded;
        snprintf(err, errlen, "broker cancelled consumer %.*s (queue deleted?)",
                 (int)m->consumer_tag.len, (const char *)m->consumer_tag.bytes);
        break;
    }
    default:
        return 0; /* e.g. a stray ack: nothing to do */
    }
    mq_mark_broken(c);
    return -1;
}

void mq_mark_broken(mq_conn *c)
{
    c->broken = 1;
}

/* How long a polite close may take before the connection is simply
 * dropped (the broker requeues what it had delivered either way). */
#define CLOSE_TIMEOUT_MS 10000

/*
 * Closes MQ_CHANNEL, dropping what arrives before the broker's close-ok.
 * rabbitmq-c's amqp_channel_close() waits for close-ok in amqp_simple_rpc(),
 * which keeps every other frame that comes first; a consumer's channel can
 * have its whole prefetch of deliveries on the way, so a worker closing
 * during a drain of large events held them all (190 MB for 900 KB events,
 * prefetch x the largest body in general). Here each frame read before
 * close-ok is released at once, so closing costs one frame of memory; the
 * broker requeues the unacknowledged deliveries when the channel closes.
 * Returns 0 once close-ok arrived, -1 if the socket failed or the time ran
 * out (the caller then drops the connection without more ado).
 */
static int close_channel_discarding(amqp_connection_state_t st)
{
    amqp_channel_close_t req = {.reply_code = AMQP_REPLY_SUCCESS,
                                .reply_text = amqp_cstring_bytes("closing"),
                                .class_id = 0,
                                .method_id = 0};
    if (amqp_send_method(st, MQ_CHANNEL, AMQP_CHANNEL_CLOSE_METHOD, &req) != AMQP_STATUS_OK)
        return -1;
    struct timeval start, now;
    gettimeofday(&start, NULL);
    for (;;) {
        gettimeofday(&now, NULL);
        long spent_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
        if (spent_ms >= CLOSE_TIMEOUT_MS)
            return -1;
        long left_ms = CLOSE_TIMEOUT_MS - spent_ms;
        struct timeval tv = {.tv_sec = left_ms / 1000, .tv_usec = (left_ms % 1000) * 1000};
        amqp_frame_t frame;
        if (amqp_simple_wait_frame_noblock(st, &frame, &tv) != AMQP_STATUS_OK)
            return -1;
        /* The broker closing the channel itself at the same moment ends
         * it as well as its close-ok would. */
        int closed = frame.channel == MQ_CHANNEL && frame.frame_type == AMQP_FRAME_METHOD &&
                     (frame.payload.method.id == AMQP_CHANNEL_CLOSE_OK_METHOD ||
                      frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD);
        amqp_maybe_release_buffers_on_channel(st, frame.channel);
        if (closed)
            return 0;
    }
}

void mq_close(mq_conn *c)
{
    if (!c)
        return;
    if (c->state) {
        /* After the channel's close-ok nothing more comes on it, so the
         * connection's own close (channel 0) has nothing to hold. */
        if (!c->broken && close_channel_discarding(c->state) == 0)
            amqp_connection_close(c->state, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c->state);
    }
    free(c->full_url);
    free(c);
}

mq_conn *mq_connect_again(const mq_conn *c, long timeout_ms, char *err, size_t errlen)
{
    return mq_connect(c->full_url, 0, timeout_ms, err, errlen);
}
