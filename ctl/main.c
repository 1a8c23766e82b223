/*
 * sluice-ctl: operating a running sluice: what state it is in, and putting
 * back what it could not process once the cause is fixed.
 *
 *   sluice-ctl status [--json]
 *   sluice-ctl replay-dead [--source S] [--reason R]
 *   sluice-ctl reprocess-errors [--reason R] [--source S] [--min-id N] [--max-id N]
 *
 * Same settings as every sluice binary (config file, SLUICE_* environment,
 * flags); secrets (amqp_url, pg_dsn, mgmt_password) need never be flags.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "db.h"
#include "log.h"
#include "settings.h"

static const cfg_option ctl_options[] = {
    SETTING_AMQP_URL(ctl_settings),
    SETTING_AMQP_TLS(ctl_settings),
    SETTING_PG_DSN(ctl_settings),
    SETTING_SOURCES(ctl_settings),
    {"mgmt_url", CFG_STRING, offsetof(ctl_settings, mgmt_url), "http://127.0.0.1:15672/", 0, 0,
     "status: root of RabbitMQ's management HTTP API", NULL},
    {"mgmt_user", CFG_STRING, offsetof(ctl_settings, mgmt_user), "guest", 0, 0,
     "status: management API user", NULL},
    {"mgmt_password", CFG_SECRET, offsetof(ctl_settings, mgmt_password), "guest", 0, 0,
     "status: management API password", NULL},
    SETTING_MGMT_TLS(ctl_settings),
    SETTING_HEARTBEAT(ctl_settings, heartbeat),
    SETTING_MAX_MESSAGE_BYTES(ctl_settings, max_message_bytes,
                              "reprocess-errors: larger bodies stay in ingest_errors as too_large"),
    SETTING_LOG_LEVEL(ctl_settings),
    {"json", CFG_BOOL, offsetof(ctl_settings, json), "false", 0, 0,
     "status: one JSON object on stdout instead of the table", NULL},
    {"source", CFG_STRING, offsetof(ctl_settings, source), "", 0, 0,
     "replay-dead, reprocess-errors: only this source (empty = all)", NULL},
    {"reason", CFG_STRING, offsetof(ctl_settings, reason), "", 0, 0,
     "replay-dead, reprocess-errors: only this reason (empty = all)", NULL},
    {"min_id", CFG_INT, offsetof(ctl_settings, min_id), "0", 0, 9223372036854775807L,
     "reprocess-errors: lowest ingest_errors id (0 = no bound)", NULL},
    {"max_id", CFG_INT, offsetof(ctl_settings, max_id), "0", 0, 9223372036854775807L,
     "reprocess-errors: highest ingest_errors id (0 = no bound)", NULL},
    {"dead_scan_max", CFG_INT, offsetof(ctl_settings, dead_scan_max), "10000", 0, 10000000,
     "status: dead letters read to count them by reason", NULL},
    CFG_END,
};

static const char program[] = "sluice-ctl";
static const char summary[] =
    "Operates a running sluice. Commands:\n"
    "  status            queues, warehouse, ingest_errors, dead letters and alerts on one\n"
    "                    screen (--json for scripts)\n"
    "  replay-dead       moves messages of sluice.dead back to their source queues (filters:\n"
    "                    --source, --reason), each removed only once its copy is confirmed\n"
    "  reprocess-errors  stores ingest_errors rows as events once their cause is fixed\n"
    "                    (filters: --reason, --source, --min-id, --max-id)\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage or configuration.";

typedef struct command {
    const char *name;
    int (*run)(const ctl_env *env);
    const char *needs; /* of PostgreSQL, for a refusal's message (db.h) */
} command;

static const command commands[] = {
    {"status", ctl_status,
     "sluice-ctl status needs SELECT on the warehouse: pg_dsn as the reader role, sluice_reader "
     "by default"},
    {"replay-dead", ctl_replay_dead, NULL},
    {"reprocess-errors", ctl_reprocess_errors,
     "sluice-ctl reprocess-errors needs the writer role's rights: pg_dsn as sluice_writer by "
     "default"}};

/* Whether argv holds `flag` (or `alias`, when not NULL) anywhere: --help
 * and --version answer before the command is looked at. */
static int has_flag(int argc, char **argv, const char *flag, const char *alias)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0 || (alias && strcmp(argv[i], alias) == 0))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (has_flag(argc, argv, "--help", "-h")) {
        cfg_print_help(ctl_options, stdout, "sluice-ctl COMMAND", summary);
        return 0;
    }
    if (has_flag(argc, argv, "--version", NULL)) {
        cli_print_version(program);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "%s: missing command: status, replay-dead or reprocess-errors (see "
                "--help)\n",
                program);
        return EXIT_USAGE;
    }
    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "%s: unknown command '%s' (status, replay-dead or reprocess-errors)\n",
                program, argv[1]);
        return EXIT_USAGE;
    }
    ctl_settings s = {0};
    ctl_env env = {.s = &s};
    /* The command takes argv[0]'s place: the flags follow it. */
    int rc = cli_parse(ctl_options, &s, argc - 1, argv + 1, program, summary);
    if (rc == CLI_CONTINUE)
        log_init("ctl", (log_level)s.log_level);
    if (rc == CLI_CONTINUE)
        rc = cli_amqp(program, s.amqp_url, &s.amqp_tls, &env.urls);
    if (rc == CLI_CONTINUE)
        rc = cli_mgmt_tls(program, &s.mgmt_tls, &s.amqp_tls, &env.mgmt_tls);
    if (rc == CLI_CONTINUE)
        rc = cli_sources(program, argc - 1, argv + 1, s.sources, &env.sources);
    if (rc == CLI_CONTINUE) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        shutdown_install();
        db_set_needs(cmd->needs);
        rc = cmd->run(&env);
        curl_global_cleanup();
    }
    strlist_free(&env.sources);
    strlist_free(&env.urls);
    cfg_free(ctl_options, &s);
    return rc;
}
