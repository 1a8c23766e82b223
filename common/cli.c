/*
 * cli: see cli.h.
 */
#include "cli.h"

#include <stdio.h>

#include "event.h"
#include "log.h"
#include "source_list.h"

int cli_parse(const cfg_option *table, void *settings, int argc, char **argv, const char *program,
              const char *summary)
{
    char err[1024];
    switch (cfg_parse(table, settings, argc, argv, err, sizeof err)) {
    case CFG_OK:
        return CLI_CONTINUE;
    case CFG_HELP:
        cfg_print_help(table, stdout, program, summary);
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
