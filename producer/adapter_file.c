/*
 * adapter_file: the "file" source adapter: follows an NDJSON file like
 * `tail -F`, one event per non-blank line, across appends, rotation (the
 * file renamed away and a new one created at the path) and truncation.
 *
 * Settings: the table file_settings below.
 *
 * Generations: each file followed at the path, and each truncation of it,
 * is a new generation with a serial number that only grows (kept in the
 * checkpoint). A line's message id derives from the source, its
 * generation's serial, its byte offset and its content, so reading it again
 * after a restart gives the same id, while new lines written at the same
 * offset after a truncation are different events.
 *
 * Positions: the producer tracks a single growing number per source; here
 * it is the generation's base plus the byte offset after the line, the
 * base being above every position of earlier generations. checkpoint()
 * maps a position back to (generation, offset) and writes
 *   confirmed <serial> <dev> <ino> <offset>
 *   current <serial> <dev> <ino>
 * to the checkpoint file (write to a temporary file, fsync, rename). The
 * current generation is written as soon as it starts, so a restart after a
 * rotation or truncation that the checkpoint has not caught up with resumes
 * at the start of the current generation (same ids as before) instead of
 * in a file that is gone.
 *
 * Limits: lines still unread in a file rotated away while the producer was
 * not running are not read (as with tail -F); a file truncated and grown
 * past the saved offset while the producer was not running cannot be told
 * from an appended one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "line_event.h"
#include "linebuf.h"
#include "log.h"
#include "util.h"

/* A generation whose positions may still be checkpointed. */
typedef struct generation {
    uint64_t serial;
    dev_t dev;
    ino_t ino;
    uint64_t base; /* position of its offset 0 */
} generation;

#define MAX_GENERATIONS 64

typedef struct file_state {
    char name[72];
    char *path;
    char *checkpoint_path;
    long poll_ms;
    const atomic_int *stop;
    int fd;            /* -1 while the path does not exist */
    uint64_t read_off; /* bytes of the current file read into lb */
    uint64_t line_off; /* offset after the last line handed out */
    uint64_t lineno;   /* lines handed out of the current generation */
    int rotating;      /* another file is at the path: finishing the old one */
    linebuf lb;
    generation gens[MAX_GENERATIONS]; /* oldest first; the last is current */
    size_t ngens;
    uint64_t confirmed_serial; /* last written confirmed part */
    dev_t confirmed_dev;
    ino_t confirmed_ino;
    uint64_t confirmed_off;
    char scope[32];
    char msg_id[SOURCE_EVENT_ID_LEN + 1];
    char where[96];
} file_state;

static generation *current(file_state *f)
{
    return &f->gens[f->ngens - 1];
}

static int write_checkpoint(file_state *f, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->checkpoint_path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        snprintf(err, errlen, "source %s: checkpoint %s: %s", f->name, tmp, strerror(errno));
        return -1;
    }
    generation *g = current(f);
    fprintf(out, "confirmed %" PRIu64 " %llu %llu %" PRIu64 "\ncurrent %" PRIu64 " %llu %llu\n",
            f->confirmed_serial, (unsigned long long)f->confirmed_dev,
            (unsigned long long)f->confirmed_ino, f->confirmed_off, g->serial,
            (unsigned long long)g->dev, (unsigned long long)g->ino);
    int rc = fflush(out) == 0 && fsync(fileno(out)) == 0 ? 0 : -1;
    if (fclose(out) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, f->checkpoint_path) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "source %s: checkpoint %s: %s", f->name, f->checkpoint_path,
                 strerror(errno));
        unlink(tmp);
    }
    return rc;
}

typedef struct saved {
    int present;
    uint64_t c_serial, c_dev, c_ino, c_off;
    uint64_t k_serial, k_dev, k_ino;
} saved;

static int read_checkpoint(file_state *f, saved *sv, char *err, size_t errlen)
{
    memset(sv, 0, sizeof *sv);
    FILE *in = fopen(f->checkpoint_path, "r");
    if (!in) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "source %s: checkpoint %s: %s", f->name, f->checkpoint_path,
                 strerror(errno));
        return -1;
    }
    int n = fscanf(in,
                   "confirmed %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " current %" SCNu64
                   " %" SCNu64 " %" SCNu64,
                   &sv->c_serial, &sv->c_dev, &sv->c_ino, &sv->c_off, &sv->k_serial, &sv->k_dev,
                   &sv->k_ino);
    fclose(in);
    if (n != 7) {
        snprintf(err, errlen,
                 "source %s: checkpoint %s is not a file checkpoint (delete it to start over)",
                 f->name, f->checkpoint_path);
        return -1;
    }
    sv->present = 1;
    return 0;
}

/* Starts a new generation for the file open on f->fd (or none yet). */
static void new_generation(file_state *f, uint64_t serial, const struct stat *st)
{
    uint64_t base = 0;
    if (f->ngens > 0)
        base = current(f)->base + f->line_off + 1; /* above every earlier position */
    if (f->ngens == MAX_GENERATIONS) {
        /* Confirms lag many rotations behind: forget the oldest. Its
         * positions can then no longer be checkpointed, which only delays
         * the checkpoint until a position of a later generation comes. */
        memmove(&f->gens[0], &f->gens[1], (MAX_GENERATIONS - 1) * sizeof *f->gens);
        f->ngens--;
    }
    generation *g = &f->gens[f->ngens++];
    g->serial = serial;
    g->dev = st ? st->st_dev : 0;
    g->ino = st ? st->st_ino : 0;
    g->base = base;
    f->read_off = f->line_off = f->lineno = 0;
    linebuf_reset(&f->lb);
    snprintf(f->scope, sizeof f->scope, "gen%" PRIu64, serial);
}

static void file_close(void *state)
{
    file_state *f = state;
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    linebuf_free(&f->lb);
    free(f->path);
    free(f->checkpoint_path);
    free(f);
}

/* Counts the lines before `offset`, so messages can name line numbers
 * after a resume. */
static uint64_t count_lines(int fd, uint64_t offset)
{
    char buf[65536];
    uint64_t lines = 0, done = 0;
    while (done < offset) {
        size_t want = offset - done < sizeof buf ? (size_t)(offset - done) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)done);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
        done += (uint64_t)n;
    }
    return lines;
}

/* Opens the path and positions it from the checkpoint. */
static int resume(file_state *f, const saved *sv, int start_at_end, char *err, size_t errlen)
{
    struct stat st;
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd >= 0 && fstat(f->fd, &st) != 0) {
        snprintf(err, errlen, "source %s: %s: %s", f->name, f->path, strerror(errno));
        return -1;
    }
    if (f->fd < 0 && errno != ENOENT) {
        snprintf(err, errlen, "source %s: %s: %s", f->name, f->path, strerror(errno));
        return -1;
    }
    int exists = f->fd >= 0;
    if (!sv->present) {
        new_generation(f, 0, exists ? &st : NULL);
        if (exists && start_at_end) {
            f->read_off = f->line_off = (uint64_t)st.st_size;
            f->lineno = count_lines(f->fd, f->line_off);
        }
        f->confirmed_serial = 0;
        f->confirmed_dev = exists ? st.st_dev : 0;
        f->confirmed_ino = exists ? st.st_ino : 0;
        f->confirmed_off = f->line_off;
    } else {
        f->confirmed_serial = sv->c_serial;
        f->confirmed_dev = (dev_t)sv->c_dev;
        f->confirmed_ino = (ino_t)sv->c_ino;
        f->confirmed_off = sv->c_off;
        int same_as_current =
            exists && (uint64_t)st.st_dev == sv->k_dev && (uint64_t)st.st_ino == sv->k_ino;
        int same_as_confirmed =
            exists && (uint64_t)st.st_dev == sv->c_dev && (uint64_t)st.st_ino == sv->c_ino;
        if (sv->k_serial > sv->c_serial) {
            /* A rotation or truncation after the last confirmed line: start
             * the current generation over, with the ids it had. */
            if (same_as_current)
                new_generation(f, sv->k_serial, &st);
            else
                new_generation(f, sv->k_serial + 1, exists ? &st : NULL);
        } else if (same_as_confirmed && (uint64_t)st.st_size >= sv->c_off) {
            new_generation(f, sv->c_serial, &st);
            f->read_off = f->line_off = sv->c_off;
            f->lineno = count_lines(f->fd, sv->c_off);
        } else {
            log_warn("file replaced or truncated while stopped source=%s path=%s "
                     "checkpoint_offset=%" PRIu64 ": following the new file from its start",
                     f->name, f->path, sv->c_off);
            new_generation(f, sv->c_serial + 1, exists ? &st : NULL);
        }
    }
    if (exists && lseek(f->fd, (off_t)f->read_off, SEEK_SET) < 0) {
        snprintf(err, errlen, "source %s: %s: %s", f->name, f->path, strerror(errno));
        return -1;
    }
    return write_checkpoint(f, err, errlen);
}

typedef struct file_conf {
    char *path, *checkpoint;
    int start_at; /* START_BEGINNING or START_END */
    long poll_ms, max_line_bytes;
} file_conf;

enum { START_BEGINNING, START_END };
static const char *const start_words[] = {"beginning", "end", NULL};

static const cfg_option file_settings[] = {
    {"path", CFG_STRING, offsetof(file_conf, path), NULL, 0, 0, "the file to follow (required)",
     NULL},
    {"checkpoint", CFG_STRING, offsetof(file_conf, checkpoint), NULL, 0, 0,
     "where confirmed positions are kept, by default <checkpoint_dir>/<source>.offset", NULL},
    {"start_at", CFG_ENUM, offsetof(file_conf, start_at), "beginning", 0, 0,
     "where to start in a file without a checkpoint", start_words},
    {"poll_ms", CFG_INT, offsetof(file_conf, poll_ms), "200", 10, 60000,
     "how often to look for new data at the end of the file", NULL},
    LINE_SETTING_MAX_LINE_BYTES(file_conf),
    CFG_END,
};

static int file_open(void **state, const source_spec *spec, const void *conf_, char *err,
                     size_t errlen)
{
    const file_conf *conf = conf_;
    const char *path = conf->path, *checkpoint = conf->checkpoint;
    if (!path || !*path) {
        spec_error(spec, NULL, err, errlen, "adapter file needs 'path = FILE'");
        return -1;
    }
    file_state *f = calloc(1, sizeof *f);
    if (!f) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        return -1;
    }
    f->fd = -1;
    snprintf(f->name, sizeof f->name, "%s", spec->name);
    f->poll_ms = conf->poll_ms;
    f->stop = spec->stop;
    f->path = strdup(path);
    char cp[4096];
    if (checkpoint)
        snprintf(cp, sizeof cp, "%s", checkpoint);
    else
        snprintf(cp, sizeof cp, "%s/%s.offset", spec->checkpoint_dir, spec->name);
    f->checkpoint_path = strdup(cp);
    saved sv;
    if (!f->path || !f->checkpoint_path ||
        linebuf_init(&f->lb, (size_t)conf->max_line_bytes) != 0) {
        spec_error(spec, NULL, err, errlen, "out of memory");
        goto fail;
    }
    if (read_checkpoint(f, &sv, err, errlen) != 0 ||
        resume(f, &sv, conf->start_at == START_END, err, errlen) != 0)
        goto fail;
    log_info("following file source=%s path=%s generation=%" PRIu64 " offset=%" PRIu64
             " checkpoint=%s",
             f->name, f->path, current(f)->serial, f->line_off, f->checkpoint_path);
    *state = f;
    return 0;
fail:
    file_close(f);
    return -1;
}

/* Fills ev for a line; returns 1 for an event or a skip, 0 for a blank. */
static int make_event(file_state *f, line_result r, const char *line, size_t len, size_t consumed,
                      source_event *ev)
{
    uint64_t start = f->line_off;
    f->line_off += consumed;
    f->lineno++;
    memset(ev, 0, sizeof *ev);
    snprintf(f->where, sizeof f->where,
             "line %" PRIu64 " (byte %" PRIu64 ", generation %" PRIu64 ")", f->lineno, start,
             current(f)->serial);
    ev->where = f->where;
    ev->position = current(f)->base + f->line_off;
    return line_event(ev, r, line, len, f->name, f->scope, start, f->msg_id);
}

static int switch_file(file_state *f, int fd, const struct stat *st, const char *why, char *err,
                       size_t errlen)
{
    uint64_t serial = current(f)->serial + 1;
    if (f->fd >= 0 && f->fd != fd)
        close(f->fd);
    f->fd = fd;
    log_info("file %s source=%s path=%s generation=%" PRIu64, why, f->name, f->path, serial);
    new_generation(f, serial, st);
    return write_checkpoint(f, err, errlen);
}

/* At end of the current file: looks for truncation or rotation. Returns 1
 * if reading should go on at once, 0 to wait, -1 on error. */
static int check_file(file_state *f, char *err, size_t errlen)
{
    struct stat st, path_st;
    if (f->fd >= 0) {
        if (fstat(f->fd, &st) != 0) {
            snprintf(err, errlen, "source %s: %s: %s", f->name, f->path, strerror(errno));
            return -1;
        }
        if ((uint64_t)st.st_size < f->read_off) {
            if (lseek(f->fd, 0, SEEK_SET) < 0) {
                snprintf(err, errlen, "source %s: %s: %s", f->name, f->path, strerror(errno));
                return -1;
            }
            if (f->lb.end > f->lb.start)
                log_warn("unterminated line dropped by truncation source=%s bytes=%zu", f->name,
                         f->lb.end - f->lb.start);
            return switch_file(f, f->fd, &st, "truncated", err, errlen) == 0 ? 1 : -1;
        }
    }
    if (stat(f->path, &path_st) != 0)
        return 0; /* between a rename and the new file: wait */
    if (f->fd >= 0 && path_st.st_dev == st.st_dev && path_st.st_ino == st.st_ino)
        return 0; /* same file, nothing new */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (fstat(fd, &path_st) != 0) {
        close(fd);
        return 0;
    }
    if (f->fd < 0 && current(f)->ino == 0 && f->lineno == 0) {
        /* The file appeared for the first time: it is generation 0's. */
        f->fd = fd;
        current(f)->dev = path_st.st_dev;
        current(f)->ino = path_st.st_ino;
        if (f->confirmed_serial == current(f)->serial && f->confirmed_ino == 0) {
            /* Nothing of it is confirmed yet: the confirmed position is its
             * start, which a restart must recognise as this file. */
            f->confirmed_dev = path_st.st_dev;
            f->confirmed_ino = path_st.st_ino;
        }
        log_info("file appeared source=%s path=%s", f->name, f->path);
        return write_checkpoint(f, err, errlen) == 0 ? 1 : -1;
    }
    return switch_file(f, fd, &path_st, "rotated", err, errlen) == 0 ? 1 : -1;
}

/* Whether another file now sits at the path (the one we read was rotated). */
static int path_replaced(file_state *f)
{
    struct stat st;
    return f->fd >= 0 && stat(f->path, &st) == 0 &&
           (st.st_ino != current(f)->ino || st.st_dev != current(f)->dev);
}

static adapter_result file_next(void *state, source_event *ev, char *err, size_t errlen)
{
    file_state *f = state;
    const char *line;
    size_t len, consumed;
    int checked = 0;
    for (;;) {
        line_result r = linebuf_next(&f->lb, &line, &len, &consumed);
        if (r != LINE_NONE) {
            if (make_event(f, r, line, len, consumed, ev))
                return ADAPTER_EVENT;
            continue;
        }
        ssize_t n = f->fd >= 0 ? linebuf_fill(&f->lb, f->fd) : 0;
        if (n > 0) {
            f->read_off += (uint64_t)n;
            continue;
        }
        if (n < 0) {
            snprintf(err, errlen, "source %s: reading %s: %s", f->name, f->path, strerror(errno));
            return ADAPTER_ERROR;
        }
        /* End of the file as it is now. */
        if (!f->rotating && path_replaced(f)) {
            /* Read the old file once more after seeing the rename: a writer
             * may have added lines between our last read and the rename. */
            f->rotating = 1;
            continue;
        }
        if (f->rotating) {
            /* The old file is done, so an unterminated last line is complete. */
            r = linebuf_rest(&f->lb, &line, &len, &consumed);
            if (r != LINE_NONE && make_event(f, r, line, len, consumed, ev)) {
                f->read_off = f->line_off;
                return ADAPTER_EVENT;
            }
            f->rotating = 0;
        }
        if (!checked) {
            checked = 1;
            int rc = check_file(f, err, errlen);
            if (rc < 0)
                return ADAPTER_ERROR;
            if (rc > 0)
                continue;
        }
        source_sleep_ms(f->stop, f->poll_ms);
        return ADAPTER_IDLE;
    }
}

static int file_checkpoint(void *state, uint64_t position, char *err, size_t errlen)
{
    file_state *f = state;
    if (position < f->gens[0].base)
        return 0; /* in a generation forgotten (see new_generation) */
    size_t g = f->ngens;
    while (g > 1 && f->gens[g - 1].base > position)
        g--;
    generation *gen = &f->gens[g - 1];
    f->confirmed_serial = gen->serial;
    f->confirmed_dev = gen->dev;
    f->confirmed_ino = gen->ino;
    f->confirmed_off = position - gen->base;
    /* Earlier generations can no longer be named by a position. */
    if (g > 1) {
        memmove(f->gens, &f->gens[g - 1], (f->ngens - (g - 1)) * sizeof *f->gens);
        f->ngens -= g - 1;
    }
    return write_checkpoint(f, err, errlen);
}

const adapter_class file_adapter = {
    .name = "file",
    .summary = "follows an NDJSON file like tail -F, across rotation and truncation",
    .settings = file_settings,
    .settings_size = sizeof(file_conf),
    .open = file_open,
    .next = file_next,
    .checkpoint = file_checkpoint,
    .close = file_close,
};
