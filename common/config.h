/*
 * config: settings described once, as a table, and read from a config file,
 * then the environment, then command-line flags (later wins).
 *
 * A row names a setting ("amqp_url"); the same row gives its environment
 * variable (SLUICE_AMQP_URL), its flag (--amqp-url), its type, default and
 * help text, and where it lives in the caller's settings struct. --help is
 * printed from the table, so it cannot drift from what is parsed.
 *
 * Config file syntax: "key = value" lines; '#' at the start of a line or
 * after a blank starts a comment; blank lines are ignored; keys are the
 * setting names. The file is named by --config
 * FILE or SLUICE_CONFIG.
 *
 * A line "[kind name]" (e.g. "[source orders]") opens a section: the lines
 * after it, up to the next header, describe that one object and are not
 * settings of the binary. cfg_parse() skips sections; a binary that has
 * sections reads them with cfg_read_sections(), so one file can serve
 * every binary.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/*
 * CFG_ENUM is a word out of a fixed list (PgBouncer's CF_LOOKUP): the row's
 * `choices` name the words, and the field holds the index of the one given,
 * so a caller declares the list once, beside an enum in the same order, and
 * compares numbers; an unknown word is refused here with the list.
 */
/* CFG_LIST is a setting that may be given several times, each adding one
 * value to a strlist (util.h), e.g. an HTTP header. */
/*
 * CFG_SECRET is a CFG_STRING that may carry a password or a token (a URL
 * or DSN with credentials, a bearer token). It may also be given as the
 * contents of a file, the postgres image's *_FILE convention, so it never
 * needs argv or a process environment: key NAME_file, variable
 * SLUICE_NAME_FILE or flag --name-file names the file, whose text without
 * its trailing newlines is the value (Docker secrets are such files). Its
 * value is never written into a message.
 */
typedef enum { CFG_STRING, CFG_INT, CFG_BOOL, CFG_ENUM, CFG_LIST, CFG_SECRET } cfg_type;

typedef struct cfg_option {
    const char *name;          /* setting name: file key; flag and env derive from it */
    cfg_type type;             /* storage: char * (malloc'd), long, int (0/1), int (index),
                                  strlist (its strings malloc'd), char * (malloc'd) */
    size_t offset;             /* offsetof() the field in the settings struct */
    const char *default_value; /* text parsed like any other value; NULL = unset */
    long min, max;             /* accepted range for CFG_INT */
    const char *help;
    const char *const *choices; /* CFG_ENUM: the words, NULL-terminated; statically allocated */
} cfg_option;

/* Terminates a table. */
#define CFG_END                                                                                    \
    {                                                                                              \
        NULL, CFG_STRING, 0, NULL, 0, 0, NULL, NULL                                                \
    }

typedef enum {
    CFG_OK = 0,
    CFG_HELP = 1,       /* --help was given: caller prints help and exits 0 */
    CFG_VERSION = 2,    /* --version was given: caller prints its version and exits 0 */
    CFG_BAD_USAGE = -2, /* err says what and where: caller exits 2 */
} cfg_result;

/*
 * Fills `settings` from defaults, the config file, the environment and argv,
 * in that order. Flags take "--name value" or "--name=value"; a bool flag
 * alone means true. On CFG_BAD_USAGE, err holds one line naming the setting
 * and the source (file:line, variable or flag). Strings stored in `settings`
 * are malloc'd: free them with cfg_free().
 */
cfg_result cfg_parse(const cfg_option *table, void *settings, int argc, char **argv, char *err,
                     size_t errlen);

/*
 * Names (NULL-terminated list, or NULL) that a config file may hold for
 * other programs sharing it: load_file skips them instead of calling them
 * unknown. Flags and the environment stay strict. The list is borrowed and
 * must outlive every cfg_parse call.
 */
void cfg_tolerate(const char *const *names);

/* Sets one setting from text; `origin` names where the text came from for
 * the error message. `name` may be a CFG_SECRET's NAME_file, and `value`
 * then names the file to read. Returns 0 or -1 with err filled. */
int cfg_set(const cfg_option *table, void *settings, const char *name, const char *value,
            const char *origin, char *err, size_t errlen);

/* The row `name` sets: the row of that name, or the CFG_SECRET row whose
 * NAME_file it is; NULL if none. Points into `table`. */
const cfg_option *cfg_find(const cfg_option *table, const char *name);

/* Prints "usage" and one line per setting with its flag, variable, the
 * words of an enum, the range of an int, default and help. */
void cfg_print_help(const cfg_option *table, FILE *out, const char *program, const char *summary);

/*
 * Prints one line per setting of a table that is read from a config file
 * section rather than from flags (an adapter's settings): key, help, the
 * words of an enum and the default, each line starting with `indent`.
 */
void cfg_print_keys(const cfg_option *table, FILE *out, const char *indent);

/* Stores each row's default into `settings` (zero-initialised), as
 * cfg_parse() does first. Returns 0, or -1 with err filled. */
int cfg_defaults(const cfg_option *table, void *settings, char *err, size_t errlen);

/* Frees the strings cfg_parse stored in `settings`, a CFG_SECRET's wiped
 * first. Accepts a settings
 * struct that was never parsed if it was zero-initialised. */
void cfg_free(const cfg_option *table, void *settings);

/* One "key = value" line of a section. */
typedef struct cfg_entry {
    char *key;
    char *value;
    int line; /* line number in the file, for messages */
} cfg_entry;

/* A "[kind name]" section and its lines, in file order. */
typedef struct cfg_section {
    char *kind; /* "source" */
    char *name;
    int line; /* of the header */
    cfg_entry *entries;
    size_t count;
} cfg_section;

typedef struct cfg_sections {
    char *path; /* the config file; NULL if none was named */
    cfg_section *items;
    size_t count;
} cfg_sections;

/* The config file named by --config FILE or SLUICE_CONFIG (the flag wins);
 * NULL if neither. Points into argv or the environment. */
const char *cfg_file_path(int argc, char **argv);

/*
 * Reads every section of the config file named in argv/the environment
 * into `out` (no sections and path NULL when no file is named). A header
 * must be "[kind name]"; a section line must be "key = value"; otherwise
 * returns -1 with err naming file:line. Free with cfg_sections_free().
 */
int cfg_read_sections(int argc, char **argv, cfg_sections *out, char *err, size_t errlen);

/* Frees what cfg_read_sections stored; accepts a zeroed struct. */
void cfg_sections_free(cfg_sections *s);

#endif
