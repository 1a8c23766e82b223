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
    {"amqp_url", CFG_STRING, offsetof(type, amqp_url), "amqp://guest:guest@127.0.0.1:5672", 0,     \
     0, "AMQP URL; several, comma-separated, are tried in turn (cluster nodes)", NULL}
/* TLS for amqps:// URLs; the struct holds an mq_tls named amqp_tls (mq.h)
 * and passes it to mq_set_tls() through cli_amqp_tls() (cli.h). */
#define SETTING_AMQP_TLS(type)                                                                     \
    {"amqp_ca_file", CFG_STRING, offsetof(type, amqp_tls.ca_file), "", 0, 0,                       \
     "amqps://: PEM file of the CA(s) that sign the broker's certificate; empty = system store",   \
     NULL},                                                                                        \
    {"amqp_cert_file", CFG_STRING, offsetof(type, amqp_tls.cert_file), "", 0, 0,                   \
     "amqps://: client certificate (PEM), if the broker asks for one", NULL},                      \
    {"amqp_key_file", CFG_STRING, offsetof(type, amqp_tls.key_file), "", 0, 0,                     \
     "amqps://: private key of amqp_cert_file (PEM)", NULL},                                       \
    {"amqp_verify_peer", CFG_BOOL, offsetof(type, amqp_tls.verify_peer), "true", 0, 0,             \
     "amqps://: refuse a broker whose certificate does not chain to amqp_ca_file", NULL},          \
    {"amqp_verify_hostname", CFG_BOOL, offsetof(type, amqp_tls.verify_hostname), "true", 0, 0,     \
     "amqps://: refuse a certificate that does not name the URL's host", NULL}
/* TLS for an https:// RabbitMQ management API (mgmt.h); the struct holds
 * an mq_tls named mgmt_tls, resolved by cli_mgmt_tls() (cli.h). The CA
 * falls back to amqp_ca_file: one broker's listeners usually share a CA. */
#define SETTING_MGMT_TLS(type)                                                                     \
    {"mgmt_ca_file", CFG_STRING, offsetof(type, mgmt_tls.ca_file), "", 0, 0,                       \
     "https:// management API: PEM file of the CA(s) that sign its certificate; empty = "          \
     "amqp_ca_file, or the system store if that is empty too", NULL},                             \
    {"mgmt_cert_file", CFG_STRING, offsetof(type, mgmt_tls.cert_file), "", 0, 0,                   \
     "https:// management API: client certificate (PEM), if the API asks for one", NULL},          \
    {"mgmt_key_file", CFG_STRING, offsetof(type, mgmt_tls.key_file), "", 0, 0,                     \
     "https:// management API: private key of mgmt_cert_file (PEM)", NULL},                        \
    {"mgmt_verify_peer", CFG_BOOL, offsetof(type, mgmt_tls.verify_peer), "true", 0, 0,             \
     "https:// management API: refuse a certificate that does not chain to mgmt_ca_file", NULL},   \
    {"mgmt_verify_hostname", CFG_BOOL, offsetof(type, mgmt_tls.verify_hostname), "true", 0, 0,     \
     "https:// management API: refuse a certificate that does not name the URL's host", NULL}
/* AMQP heartbeat, into a long named `field`; the _DEFAULT form for a
 * binary whose connections may sit idle longer (the notifier). */
#define SETTING_HEARTBEAT(type, field) SETTING_HEARTBEAT_DEFAULT(type, field, "30")
#define SETTING_HEARTBEAT_DEFAULT(type, field, default_s)                                          \
    {"heartbeat", CFG_INT, offsetof(type, field), default_s, 0, 3600,                              \
     "AMQP heartbeat in seconds; 0 = off", NULL}
/* The contract's largest body, into a long named `field`. */
#define SETTING_MAX_MESSAGE_BYTES(type, field, help)                                               \
    {"max_message_bytes", CFG_INT, offsetof(type, field), "1048576", 2, 134217728, help, NULL}
#define SETTING_PG_DSN(type)                                                                       \
    {"pg_dsn", CFG_STRING, offsetof(type, pg_dsn), "postgresql://sluice@127.0.0.1:5432/sluice", 0, \
     0, "PostgreSQL connection string (URI or key=value; sslmode and the PG* variables apply)",    \
     NULL}
#define SETTING_SOURCES(type)                                                                      \
    {"sources", CFG_STRING, offsetof(type, sources), "", 0, 0,                                     \
     "comma-separated source names ([a-z0-9_-]{1,64}), each with queue sluice.q.<name>; empty: "   \
     "the config file's [source NAME] sections, else profiles,clickstream,orders,sensors; with "   \
     "sections it picks some of them", NULL}
/* Into an int named log_level: a log_level (log.h). */
#define SETTING_LOG_LEVEL(type)                                                                    \
    {"log_level", CFG_ENUM, offsetof(type, log_level), "info", 0, 0,                               \
     "least severe level logged", log_level_names}

#endif
