/*
 * cli: the start-up steps every sluice binary takes the same way: read its
 * settings (printing --help, --version or a one-line usage error), check the AMQP
 * URLs and the source list. Each returns CLI_CONTINUE or the exit code main()
 * should return (0 after --help, 2 for bad usage or config).
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include "config.h"
#include "mq.h"
#include "util.h"

#define CLI_CONTINUE (-1)
#define EXIT_RUNTIME 1 /* runtime failure */
#define EXIT_USAGE 2   /* bad usage or config */

/* Prints "PROGRAM VERSION" on stdout; the version is the project's, set once
 * in the top CMakeLists.txt (SLUICE_VERSION). */
void cli_print_version(const char *program);

int cli_parse(const cfg_option *table, void *settings, int argc, char **argv, const char *program,
              const char *summary);

/* Hands the amqps:// settings (SETTING_AMQP_TLS rows) to mq_set_tls() (a
 * bad combination or an unreadable file is bad config) and splits
 * amqp_url's comma-separated list of nodes into `urls` (free with
 * strlist_free); an empty list is bad usage. */
int cli_amqp(const char *program, const char *amqp_url, const mq_tls *tls, strlist *urls);

/* The management API's TLS settings (SETTING_MGMT_TLS rows) resolved into
 * `out`: mgmt_tls's, with amqp_tls's CA file when mgmt_ca_file is unset.
 * `out` points into the two (no copies: it lives as long as they do). A
 * bad combination or an unreadable file is bad config. */
int cli_mgmt_tls(const char *program, const mq_tls *mgmt_tls, const mq_tls *amqp_tls, mq_tls *out);

/* The deployment's sources (source_list.h): the [source NAME] sections of
 * the config file named in argv or SLUICE_CONFIG, or the flat `sources`
 * setting (`flat`, "" when unset). Fills `out` (free with strlist_free). */
int cli_sources(const char *program, int argc, char **argv, const char *flat, strlist *out);

#endif
