/*
 * settings: the rows every sluice binary shares in its config table, so a
 * setting has one name, variable, default and help text everywhere. Each
 * macro takes the binary's settings struct type, which must have a field of
 * the same name.
 */
#ifndef SLUICE_SETTINGS_H
#define SLUICE_SETTINGS_H

#include <stddef.h>

#include "config.h"
#include "log.h"

#define SETTING_AMQP_URL(type)                                                                     \
    {                                                                                              \
        "amqp_url", CFG_SECRET, offsetof(type, amqp_url), "amqp://guest:guest@127.0.0.1:5672", 0,  \
            0, "AMQP URL; several, comma-separated, are tried in turn (cluster nodes)", NULL       \
    }
/* The five TLS settings of one client, into the mq_tls named `field`:
 * <prefix>_ca_file, _cert_file, _key_file, _verify_peer, _verify_hostname.
 * `what` starts each help text (the URLs they apply to), `server` names
 * whom the certificates are about, `no_ca` says what an empty CA file means. */
#define SETTING_TLS_ROWS(type, field, prefix, what, server, no_ca)                                 \
    {prefix "_ca_file",                                                                            \
     CFG_STRING,                                                                                   \
     offsetof(type, field.ca_file),                                                                \
     "",                                                                                           \
     0,                                                                                            \
     0,                                                                                            \
     what ": PEM file of the CA(s) that sign " server "'s certificate; empty = " no_ca,            \
     NULL},                                                                                        \
        {prefix "_cert_file",                                                                      \
         CFG_STRING,                                                                               \
         offsetof(type, field.cert_file),                                                          \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         what ": client certificate (PEM), if " server " asks for one",                            \
         NULL},                                                                                    \
        {prefix "_key_file",                                                                       \
         CFG_STRING,                                                                               \
         offsetof(type, field.key_file),                                                           \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         what ": private key of " prefix "_cert_file (PEM)",                                       \
         NULL},                                                                                    \
        {prefix "_verify_peer",                                                                    \
         CFG_BOOL,                                                                                 \
         offsetof(type, field.verify_peer),                                                        \
         "true",                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         what ": refuse a certificate that does not chain to " prefix "_ca_file",                  \
         NULL},                                                                                    \
    {                                                                                              \
        prefix "_verify_hostname", CFG_BOOL, offsetof(type, field.verify_hostname), "true", 0, 0,  \
            what ": refuse a certificate that does not name the URL's host", NULL                  \
    }
/* TLS for amqps:// URLs; the struct holds an mq_tls named amqp_tls (mq.h)
 * and passes it to mq_set_tls() through cli_amqp() (cli.h). */
#define SETTING_AMQP_TLS(type)                                                                     \
    SETTING_TLS_ROWS(type, amqp_tls, "amqp", "amqps://", "the broker", "system store")
/* TLS for an https:// RabbitMQ management API (mgmt.h); the struct holds
 * an mq_tls named mgmt_tls, resolved by cli_mgmt_tls() (cli.h). The CA
 * falls back to amqp_ca_file: one broker's listeners usually share a CA. */
#define SETTING_MGMT_TLS(type)                                                                     \
    SETTING_TLS_ROWS(type, mgmt_tls, "mgmt", "https:// management API", "the API",                 \
                     "amqp_ca_file, or the system store if that is empty too")
/* AMQP heartbeat, into a long named `field`; the _DEFAULT form for a
 * binary whose connections may sit idle longer (the notifier). */
#define SETTING_HEARTBEAT(type, field) SETTING_HEARTBEAT_DEFAULT(type, field, "30")
#define SETTING_HEARTBEAT_DEFAULT(type, field, default_s)                                          \
    {                                                                                              \
        "heartbeat", CFG_INT, offsetof(type, field), default_s, 0, 3600,                           \
            "AMQP heartbeat in seconds; 0 = off", NULL                                             \
    }
/* The contract's largest body, into a long named `field`. */
#define SETTING_MAX_MESSAGE_BYTES(type, field, help)                                               \
    {                                                                                              \
        "max_message_bytes", CFG_INT, offsetof(type, field), "1048576", 2, 134217728, help, NULL   \
    }
#define SETTING_PG_DSN(type)                                                                       \
    {                                                                                              \
        "pg_dsn", CFG_SECRET, offsetof(type, pg_dsn), "postgresql://sluice@127.0.0.1:5432/sluice", \
            0, 0,                                                                                  \
            "PostgreSQL connection string (URI or key=value; sslmode and the PG* variables "       \
            "apply); "                                                                             \
            "several hosts with target_session_attrs=read-write follow a failover",                \
            NULL                                                                                   \
    }
#define SETTING_SOURCES(type)                                                                      \
    {                                                                                              \
        "sources", CFG_STRING, offsetof(type, sources), "", 0, 0,                                  \
            "comma-separated source names ([a-z0-9_-]{1,64}), each with queue sluice.q.<name>; "   \
            "empty: "                                                                              \
            "the config file's [source NAME] sections, else profiles,clickstream,orders,sensors; " \
            "with "                                                                                \
            "sections it picks some of them",                                                      \
            NULL                                                                                   \
    }
/* Into an int named log_level: a log_level (log.h). */
#define SETTING_LOG_LEVEL(type)                                                                    \
    {                                                                                              \
        "log_level", CFG_ENUM, offsetof(type, log_level), "info", 0, 0,                            \
            "least severe level logged", log_level_names                                           \
    }

#endif
