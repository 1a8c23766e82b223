/*
 * config: the table-driven settings reader described in config.h.
 */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A CFG_SECRET's file: key NAME_file, variable SLUICE_NAME_FILE. */
#define FILE_SUFFIX "_file"
#define FILE_SUFFIX_LEN 5
/* The most a secret's file may hold: a password, a token or a DSN. */
#define SECRET_FILE_MAX 65536

static const char *const *tolerated;

void cfg_tolerate(const char *const *names)
{
    tolerated = names;
}

/* A tolerated name, or its NAME_file (which may be another program's
 * secret file). */
static int is_tolerated(const char *name)
{
    size_t len = strlen(name);
    if (len > FILE_SUFFIX_LEN && strcmp(name + len - FILE_SUFFIX_LEN, FILE_SUFFIX) == 0)
        len -= FILE_SUFFIX_LEN;
    for (const char *const *t = tolerated; t && *t; t++) {
        if (strcmp(*t, name) == 0 || (strlen(*t) == len && strncmp(*t, name, len) == 0))
            return 1;
    }
    return 0;
}

static const cfg_option *find_option(const cfg_option *table, const char *name, size_t len)
{
    for (const cfg_option *o = table; o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    }
    return NULL;
}

/* The row a key of `len` bytes sets, as cfg_find(); *from_file says
 * whether the key named a CFG_SECRET's file. */
static const cfg_option *resolve(const cfg_option *table, const char *name, size_t len,
                                 int *from_file)
{
    *from_file = 0;
    const cfg_option *o = find_option(table, name, len);
    if (o || len <= FILE_SUFFIX_LEN ||
        strncmp(name + len - FILE_SUFFIX_LEN, FILE_SUFFIX, FILE_SUFFIX_LEN) != 0)
        return o;
    o = find_option(table, name, len - FILE_SUFFIX_LEN);
    if (!o || o->type != CFG_SECRET)
        return NULL;
    *from_file = 1;
    return o;
}

const cfg_option *cfg_find(const cfg_option *table, const char *name)
{
    int from_file;
    return resolve(table, name, strlen(name), &from_file);
}

/* "amqp_url" -> "SLUICE_AMQP_URL" */
static void env_name(const char *name, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "SLUICE_");
    for (; *name && n + 1 < outlen; name++)
        out[n++] = (char)toupper((unsigned char)*name);
    out[n] = '\0';
}

/* "amqp_url" -> "amqp-url" */
static void flag_name(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *name && n + 1 < outlen; name++)
        out[n++] = *name == '_' ? '-' : *name;
    out[n] = '\0';
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* Appends "a, b or c" to the text in buf. */
static void append_choices(const char *const *choices, char *buf, size_t buflen)
{
    for (size_t i = 0; choices[i]; i++) {
        size_t used = strlen(buf);
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        snprintf(buf + used, buflen - used, "%s%s", sep, choices[i]);
    }
}

/* Frees a string setting's value; a secret's bytes are wiped first, so a
 * freed password does not linger in the heap. */
static void free_string(const cfg_option *o, char *value)
{
    if (value && o->type == CFG_SECRET)
        explicit_bzero(value, strlen(value));
    free(value);
}

/*
 * Reads a CFG_SECRET's file into a malloc'd string: the whole file, less
 * its trailing newlines (an editor's or `echo`'s). An unreadable, empty or
 * oversized file, or one holding a NUL byte, is refused: each is a mistake
 * that would otherwise surface later as a failed login. `origin` and
 * `name` word the message; the contents never appear in it.
 */
static char *read_secret_file(const char *path, const cfg_option *o, const char *origin, char *err,
                              size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s_file %s: %s", origin, o->name, path, strerror(errno));
        goto fail;
    }
    if (!(text = malloc(SECRET_FILE_MAX + 1))) {
        snprintf(err, errlen, "%s: out of memory", origin);
        goto fail;
    }
    len = fread(text, 1, SECRET_FILE_MAX + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s_file %s: read error", origin, o->name, path);
        goto fail;
    }
    if (len > SECRET_FILE_MAX) {
        snprintf(err, errlen, "%s: %s_file %s: larger than %d bytes", origin, o->name, path,
                 SECRET_FILE_MAX);
        goto fail;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: %s_file %s: holds a NUL byte", origin, o->name, path);
        goto fail;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    text[len] = '\0';
    if (len == 0) {
        snprintf(err, errlen, "%s: %s_file %s: empty", origin, o->name, path);
        goto fail;
    }
    fclose(f);
    return text;
fail:
    if (text)
        explicit_bzero(text, SECRET_FILE_MAX + 1);
    free(text);
    if (f)
        fclose(f);
    return NULL;
}

static int store_value(const cfg_option *o, void *settings, const char *value, const char *origin,
                       char *err, size_t errlen)
{
    char *field = (char *)settings + o->offset;
    switch (o->type) {
    case CFG_STRING:
    case CFG_SECRET: {
        char **slot = (char **)(void *)field;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy) {
            snprintf(err, errlen, "%s: out of memory", origin);
            return -1;
        }
        free_string(o, *slot);
        *slot = copy;
        return 0;
    }
    case CFG_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: %s must be an integer, got '%s'", origin, o->name, value);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: %s must be between %ld and %ld, got %ld", origin, o->name,
                     o->min, o->max, v);
            return -1;
        }
        *(long *)(void *)field = v;
        return 0;
    }
    case CFG_BOOL: {
        int b;
        if (parse_bool(value, &b) != 0) {
            snprintf(err, errlen, "%s: %s must be true or false, got '%s'", origin, o->name, value);
            return -1;
        }
        *(int *)(void *)field = b;
        return 0;
    }
    case CFG_LIST:
        if (strlist_push((strlist *)(void *)field, value) != 0) {
            snprintf(err, errlen, "%s: out of memory", origin);
            return -1;
        }
        return 0;
    case CFG_ENUM:
        for (int i = 0; o->choices[i]; i++) {
            if (strcmp(value, o->choices[i]) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
        }
        snprintf(err, errlen, "%s: %s must be ", origin, o->name);
        append_choices(o->choices, err, errlen);
        snprintf(err + strlen(err), errlen - strlen(err), ", got '%s'", value);
        return -1;
    }
    return -1;
}

/* Stores `value`, or, when it names a CFG_SECRET's file, that file's
 * contents. */
static int store_setting(const cfg_option *o, int from_file, void *settings, const char *value,
                         const char *origin, char *err, size_t errlen)
{
    if (!from_file)
        return store_value(o, settings, value, origin, err, errlen);
    char *secret = read_secret_file(value, o, origin, err, errlen);
    if (!secret)
        return -1;
    int rc = store_value(o, settings, secret, origin, err, errlen);
    free_string(o, secret);
    return rc;
}

int cfg_set(const cfg_option *table, void *settings, const char *name, const char *value,
            const char *origin, char *err, size_t errlen)
{
    int from_file;
    const cfg_option *o = resolve(table, name, strlen(name), &from_file);
    if (!o) {
        snprintf(err, errlen, "%s: unknown setting '%s'", origin, name);
        return -1;
    }
    return store_setting(o, from_file, settings, value, origin, err, errlen);
}

/* A config file line without its comment and surrounding blanks. '#'
 * starts a comment at the start of a line or after a blank, so values such
 * as passwords may still contain it. */
static char *clean_line(char *line)
{
    for (char *hash = strchr(line, '#'); hash; hash = strchr(hash + 1, '#')) {
        if (hash == line || isspace((unsigned char)hash[-1])) {
            *hash = '\0';
            break;
        }
    }
    return str_trim(line);
}

/* One meaningful line of a config file, as read_lines() hands it on. */
typedef struct file_line {
    char *header;       /* "[kind name]" (trimmed), or NULL for a "key = value" line */
    char *key, *value;  /* trimmed; NULL for a header */
    const char *origin; /* "file:line", for messages */
    int lineno;
} file_line;

/* Called for each line; returns 0 to go on, 1 to stop reading, -1 on an
 * error (err filled). */
typedef int (*line_fn)(void *ctx, file_line *l, char *err, size_t errlen);

/*
 * The one loop over a config file, for the binary's own settings
 * (cfg_parse) and for its sections (cfg_read_sections): comments and blank
 * lines dropped, a header or "key = value" passed to `each`, anything else
 * refused with the file and line. Returns 0, or -1 with err filled.
 */
static int read_lines(const char *path, line_fn each, void *ctx, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], origin[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        file_line l = {.origin = origin, .lineno = lineno};
        char *text = clean_line(line);
        if (*text == '\0')
            continue;
        if (*text == '[') {
            l.header = text;
        } else {
            char *eq = strchr(text, '=');
            if (!eq) {
                snprintf(err, errlen, "%s: expected 'key = value', got '%s'", origin, text);
                rc = -1;
                break;
            }
            *eq = '\0';
            l.key = str_trim(text);
            l.value = str_trim(eq + 1);
        }
        rc = each(ctx, &l, err, errlen);
    }
    fclose(f);
    return rc < 0 ? -1 : 0;
}

typedef struct settings_reader {
    const cfg_option *table;
    void *settings;
} settings_reader;

/* The binary's settings are the lines before the first section header;
 * the sections are read by cfg_read_sections(). */
static int setting_line(void *ctx, file_line *l, char *err, size_t errlen)
{
    settings_reader *r = ctx;
    if (l->header)
        return 1;
    if (!cfg_find(r->table, l->key) && is_tolerated(l->key))
        return 0; /* another program's setting in a shared file */
    return cfg_set(r->table, r->settings, l->key, l->value, l->origin, err, errlen);
}

static int load_file(const cfg_option *table, void *settings, const char *path, char *err,
                     size_t errlen)
{
    settings_reader r = {table, settings};
    return read_lines(path, setting_line, &r, err, errlen);
}

/* SLUICE_NAME, and for a CFG_SECRET SLUICE_NAME_FILE: as the postgres
 * image does, an empty *_FILE is unset and the two together are refused,
 * since which one should win is a guess. */
static int load_env(const cfg_option *table, void *settings, char *err, size_t errlen)
{
    char var[128], file_var[160];
    for (const cfg_option *o = table; o->name; o++) {
        env_name(o->name, var, sizeof var);
        const char *v = getenv(var);
        if (o->type == CFG_SECRET) {
            snprintf(file_var, sizeof file_var, "%s_FILE", var);
            const char *path = getenv(file_var);
            if (path && *path) {
                if (v && *v) {
                    snprintf(err, errlen, "%s and %s are both set: keep one", var, file_var);
                    return -1;
                }
                if (store_setting(o, 1, settings, path, file_var, err, errlen) != 0)
                    return -1;
                continue;
            }
        }
        if (v && store_value(o, settings, v, var, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int cfg_defaults(const cfg_option *table, void *settings, char *err, size_t errlen)
{
    for (const cfg_option *o = table; o->name; o++) {
        if (o->default_value &&
            store_value(o, settings, o->default_value, "default", err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Finds --config in argv (it must be read before the other flags apply). */
const char *cfg_file_path(int argc, char **argv)
{
    const char *path = getenv("SLUICE_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path;
}

static int load_flags(const cfg_option *table, void *settings, int argc, char **argv, char *err,
                      size_t errlen)
{
    char origin[256], fname[128];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (settings are --name value)", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        char key[128];
        if (len >= sizeof key) {
            snprintf(err, errlen, "unknown flag '%s'", arg);
            return -1;
        }
        for (size_t k = 0; k < len; k++)
            key[k] = name[k] == '-' ? '_' : name[k];
        key[len] = '\0';
        int from_file;
        const cfg_option *o = resolve(table, key, len, &from_file);
        if (!o) {
            snprintf(err, errlen, "unknown flag '%.*s' (see --help)", (int)len + 2, arg);
            return -1;
        }
        flag_name(o->name, fname, sizeof fname);
        snprintf(origin, sizeof origin, "--%s%s", fname, from_file ? "-file" : "");
        const char *value;
        if (eq)
            value = eq + 1;
        else if (o->type == CFG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            value = "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "%s needs a value", origin);
            return -1;
        }
        if (store_setting(o, from_file, settings, value, origin, err, errlen) != 0)
            return -1;
    }
    return 0;
}

cfg_result cfg_parse(const cfg_option *table, void *settings, int argc, char **argv, char *err,
                     size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return CFG_HELP;
        if (strcmp(argv[i], "--version") == 0)
            return CFG_VERSION;
    }
    if (cfg_defaults(table, settings, err, errlen) != 0)
        return CFG_BAD_USAGE;
    const char *path = cfg_file_path(argc, argv);
    if (path && load_file(table, settings, path, err, errlen) != 0)
        return CFG_BAD_USAGE;
    if (load_env(table, settings, err, errlen) != 0)
        return CFG_BAD_USAGE;
    if (load_flags(table, settings, argc, argv, err, errlen) != 0)
        return CFG_BAD_USAGE;
    return CFG_OK;
}

void cfg_print_help(const cfg_option *table, FILE *out, const char *program, const char *summary)
{
    char fname[128], var[128];
    fprintf(out, "usage: %s [--config FILE] [--SETTING VALUE ...]\n%s\n\n", program, summary);
    fprintf(out, "Settings (config file key, then flag and environment variable; later wins):\n");
    for (const cfg_option *o = table; o->name; o++) {
        flag_name(o->name, fname, sizeof fname);
        env_name(o->name, var, sizeof var);
        fprintf(out, "  --%-22s %s\n  %-24s   env %s", fname, o->help, "", var);
        if (o->type == CFG_ENUM) {
            char words[256] = "";
            append_choices(o->choices, words, sizeof words);
            fprintf(out, ", one of %s", words);
        }
        if (o->type == CFG_INT)
            fprintf(out, ", %ld to %ld", o->min, o->max);
        if (o->type == CFG_LIST)
            fprintf(out, ", repeatable");
        if (o->default_value)
            fprintf(out, ", default %s", *o->default_value ? o->default_value : "\"\"");
        if (o->type == CFG_SECRET)
            fprintf(out, "; or read from a file: --%s-file, env %s_FILE", fname, var);
        fputc('\n', out);
    }
    fprintf(out, "  --%-22s %s\n", "config FILE", "read settings from FILE (env SLUICE_CONFIG)");
    fprintf(out, "  --%-22s %s\n", "help", "print this help");
    fprintf(out, "  --%-22s %s\n", "version", "print the program's name and version");
}

void cfg_print_keys(const cfg_option *table, FILE *out, const char *indent)
{
    for (const cfg_option *o = table; o->name; o++) {
        fprintf(out, "%s%-20s %s", indent, o->name, o->help);
        if (o->type == CFG_ENUM) {
            char words[256] = "";
            append_choices(o->choices, words, sizeof words);
            fprintf(out, "; one of %s", words);
        }
        if (o->type == CFG_INT)
            fprintf(out, "; %ld to %ld", o->min, o->max);
        if (o->type == CFG_LIST)
            fprintf(out, "; repeatable");
        if (o->default_value)
            fprintf(out, "; default %s", *o->default_value ? o->default_value : "\"\"");
        if (o->type == CFG_SECRET)
            fprintf(out, "; or %s_file = FILE holding it", o->name);
        fputc('\n', out);
    }
}

void cfg_free(const cfg_option *table, void *settings)
{
    for (const cfg_option *o = table; o->name; o++) {
        void *field = (char *)settings + o->offset;
        if (o->type == CFG_STRING || o->type == CFG_SECRET) {
            char **slot = field;
            free_string(o, *slot);
            *slot = NULL;
        } else if (o->type == CFG_LIST) {
            strlist_free(field);
        }
    }
}

void cfg_sections_free(cfg_sections *s)
{
    for (size_t i = 0; i < s->count; i++) {
        cfg_section *sec = &s->items[i];
        for (size_t k = 0; k < sec->count; k++) {
            free(sec->entries[k].key);
            free(sec->entries[k].value);
        }
        free(sec->entries);
        free(sec->kind);
        free(sec->name);
    }
    free(s->items);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* Parses "[kind name]" (text is trimmed, starts with '['). Returns 0, or -1
 * with err. */
static int add_section(cfg_sections *out, char *text, const char *origin, int lineno, char *err,
                       size_t errlen)
{
    size_t len = strlen(text);
    if (len < 2 || text[len - 1] != ']') {
        snprintf(err, errlen, "%s: expected a section header '[kind name]', got '%s'", origin,
                 text);
        return -1;
    }
    text[len - 1] = '\0';
    char *kind = str_trim(text + 1);
    char *name = kind;
    while (*name && !isspace((unsigned char)*name))
        name++;
    if (*name)
        *name++ = '\0';
    name = str_trim(name);
    if (*kind == '\0' || *name == '\0' || strpbrk(name, " \t")) {
        snprintf(err, errlen, "%s: a section header is '[kind name]', e.g. '[source orders]'",
                 origin);
        return -1;
    }
    cfg_section *grown = realloc(out->items, (out->count + 1) * sizeof *grown);
    if (!grown)
        goto oom;
    out->items = grown;
    cfg_section *sec = &out->items[out->count];
    memset(sec, 0, sizeof *sec);
    sec->line = lineno;
    sec->kind = strdup(kind);
    sec->name = strdup(name);
    out->count++; /* counted before checking, so cfg_sections_free frees it */
    if (!sec->kind || !sec->name)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", origin);
    return -1;
}

static int add_entry(cfg_section *sec, const char *key, const char *value, int lineno)
{
    cfg_entry *grown = realloc(sec->entries, (sec->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    sec->entries = grown;
    cfg_entry *e = &sec->entries[sec->count];
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = lineno;
    sec->count++;
    return e->key && e->value ? 0 : -1;
}

/* A header opens a section; a "key = value" line belongs to the last one,
 * or, before the first header, is a setting of the binary (cfg_parse). */
static int section_line(void *ctx, file_line *l, char *err, size_t errlen)
{
    cfg_sections *out = ctx;
    if (l->header)
        return add_section(out, l->header, l->origin, l->lineno, err, errlen);
    if (out->count == 0)
        return 0;
    if (add_entry(&out->items[out->count - 1], l->key, l->value, l->lineno) != 0) {
        snprintf(err, errlen, "%s: out of memory", l->origin);
        return -1;
    }
    return 0;
}

int cfg_read_sections(int argc, char **argv, cfg_sections *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *path = cfg_file_path(argc, argv);
    if (!path)
        return 0;
    out->path = strdup(path);
    int rc = out->path ? read_lines(path, section_line, out, err, errlen) : -1;
    if (!out->path)
        snprintf(err, errlen, "config file %s: out of memory", path);
    if (rc != 0)
        cfg_sections_free(out);
    return rc;
}
