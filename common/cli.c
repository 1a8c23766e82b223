/*
 * cli: see cli.h.
 */
#include "cli.h"

#include <stdio.h>

#include "event.h"
#include "log.h"
#include "source_list.h"

/* Every setting of every sluice binary: one config file serves them all,
 * so a binary skips the others' settings in it (a name in no binary's
 * table is still refused as unknown). Keep in step with the tables in each
 * main.c. */
static const char *const all_settings[] = {
    /* shared */
    "amqp_url", "amqp_ca_file", "amqp_cert_file", "amqp_key_file", "amqp_verify_peer",
    "amqp_verify_hostname", "pg_dsn", "sources", "heartbeat", "max_message_bytes", "log_level",
    "prefetch", "shutdown_timeout_ms",
    /* sluice-setup */
    "mgmt_url", "mgmt_ca_file", "mgmt_cert_file", "mgmt_key_file", "mgmt_verify_peer",
    "mgmt_verify_hostname", "queue_type", "delivery_limit", "sql_dir", "projections",
    "retention_days", "amqp_producer_user", "amqp_producer_password", "amqp_worker_user",
    "amqp_worker_password", "amqp_notifier_user", "amqp_notifier_password", "pg_roles",
    "pg_owner_role", "pg_owner_password", "pg_writer_role", "pg_writer_password",
    "pg_notifier_role", "pg_notifier_password", "pg_reader_role", "pg_reader_password",
    /* sluice-producer */
    "source", "adapter", "count", "rate", "duration", "seed", "window", "window_bytes", "buffer",
    "buffer_bytes", "checkpoint_interval_ms", "progress_interval_ms", "checkpoint_dir",
    /* sluice-worker */
    "mode", "workers", "batch_size", "batch_max_bytes", "flush_interval_ms", "max_retries",
    "stats_interval_ms", "idle_exit_ms", "metrics_address", "metrics_port", "rules",
    /* sluice-notifier */
    "routes", "telegram_api_url", "telegram_chat_id", "telegram_token_file",
    "telegram_rate_per_chat", "telegram_rate_total", "webhook_url", "max_attempts", "retry_base_ms",
    "retry_max_ms", "http_timeout_ms", "group_by", "group_interval_ms", "group_max", "group_show",
    "group_wait_ms",
    /* sluice-ctl */
    "mgmt_user", "mgmt_password", "json", "reason", "min_id", "max_id", "dead_scan_max", NULL};

void cli_print_version(const char *program)
{
    printf("%s %s\n", program, SLUICE_VERSION);
}

int cli_parse(const cfg_option *table, void *settings, int argc, char **argv, const char *program,
              const char *summary)
{
    char err[1024];
    cfg_tolerate(all_settings);
    switch (cfg_parse(table, settings, argc, argv, err, sizeof err)) {
    case CFG_OK:
        return CLI_CONTINUE;
    case CFG_HELP:
        cfg_print_help(table, stdout, program, summary);
        return 0;
    case CFG_VERSION:
        cli_print_version(program);
        return 0;
    case CFG_BAD_USAGE:
        break;
    }
    fprintf(stderr, "%s: %s\n", program, err);
    return EXIT_USAGE;
}

int cli_amqp(const char *program, const char *amqp_url, const mq_tls *tls, strlist *urls)
{
    char err[1024];
    if (mq_set_tls(tls, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return EXIT_USAGE;
    }
    if (strlist_split(amqp_url, urls) != 0) {
        fprintf(stderr, "%s: out of memory\n", program);
        return EXIT_RUNTIME;
    }
    if (urls->count == 0) {
        fprintf(stderr, "%s: amqp_url is empty\n", program);
        return EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int cli_mgmt_tls(const char *program, const mq_tls *mgmt_tls, const mq_tls *amqp_tls, mq_tls *out)
{
    char err[1024];
    *out = *mgmt_tls;
    if (!out->ca_file || !*out->ca_file)
        out->ca_file = amqp_tls->ca_file;
    /* Checked as given, so a message names the setting that holds the
     * file; the CA file taken over from amqp_tls was checked as such. */
    if (mq_tls_check(mgmt_tls, "mgmt", err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int cli_sources(const char *program, int argc, char **argv, const char *flat, strlist *out)
{
    char err[1024];
    cfg_sections secs = {0};
    int rc = cfg_read_sections(argc, argv, &secs, err, sizeof err);
    if (rc == 0)
        rc = source_list_resolve(&secs, flat, out, err, sizeof err);
    cfg_sections_free(&secs);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return EXIT_USAGE;
    }
    return CLI_CONTINUE;
}
