/*
 * bench-pg-copy: the database's ceiling for the worker side. Writes the
 * same events the producer makes (the generator's four sources, `count`
 * each) into a JSONB table with COPY on libpq, `batch` rows per
 * transaction (the worker's batch size), and nothing else: no staging
 * table, no duplicate check beyond the primary key, no projections.
 *
 *   bench-pg-copy PG_DSN COUNT_PER_SOURCE SEED BATCH
 *
 * The table bench_copy (msg_id text primary key, source text, payload
 * jsonb, stored_at timestamptz) is dropped and made again first. Prints
 * one line: events=N seconds=S rate=R (first COPY to last commit). Exits 1
 * on any database error.
 */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generator.h"

static const char *const sources[] = {"profiles", "clickstream", "orders", "sensors"};
enum { NSOURCES = 4 };

static PGconn *db;

static int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-pg-copy: %s: %s", what, PQerrorMessage(db));
    exit(1);
}

static void exec_ok(const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != want)
        die(sql);
    PQclear(r);
}

/* Appends s (n bytes) to out in COPY text format: backslash, tab, newline
 * and carriage return escaped. out has room for 2n bytes. */
static size_t copy_escape(char *out, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            out[k++] = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        }
        out[k++] = c;
    }
    return k;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench-pg-copy PG_DSN COUNT_PER_SOURCE SEED BATCH\n");
        return 2;
    }
    uint64_t count = strtoull(argv[2], NULL, 10), seed = strtoull(argv[3], NULL, 10);
    long batch = strtol(argv[4], NULL, 10);
    if (count == 0 || batch < 1) {
        fprintf(stderr, "bench-pg-copy: bad arguments (count, batch)\n");
        return 2;
    }
    db = PQconnectdb(argv[1]);
    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect");
    exec_ok("SET client_min_messages = warning", PGRES_COMMAND_OK);
    exec_ok("DROP TABLE IF EXISTS bench_copy", PGRES_COMMAND_OK);
    exec_ok("CREATE TABLE bench_copy (msg_id text PRIMARY KEY, source text NOT NULL,"
            " payload jsonb NOT NULL, stored_at timestamptz NOT NULL DEFAULT now())",
            PGRES_COMMAND_OK);

    generator_kind kinds[NSOURCES];
    for (int s = 0; s < NSOURCES; s++)
        generator_kind_parse(sources[s], &kinds[s]);
    char body[2048], id[128], line[4096 + 256 + 64];
    long in_batch = 0;
    uint64_t rows = 0, total = count * NSOURCES;
    int64_t t0 = mono_now_us();
    for (uint64_t n = 0; n < count; n++) {
        for (int s = 0; s < NSOURCES; s++) {
            if (in_batch == 0) {
                exec_ok("BEGIN", PGRES_COMMAND_OK);
                exec_ok("COPY bench_copy (msg_id, source, payload) FROM STDIN", PGRES_COPY_IN);
            }
            int len =
                generator_make(kinds[s], seed, sources[s], n, body, sizeof body, id, sizeof id);
            if (len < 0) {
                fprintf(stderr, "bench-pg-copy: generator buffer too small\n");
                return 1;
            }
            int k = snprintf(line, sizeof line, "%s\t%s\t", id, sources[s]);
            k += (int)copy_escape(line + k, body, (size_t)len);
            line[k++] = '\n';
            if (PQputCopyData(db, line, k) != 1)
                die("COPY data");
            rows++;
            if (++in_batch == batch || rows == total) {
                if (PQputCopyEnd(db, NULL) != 1)
                    die("COPY end");
                PGresult *r;
                while ((r = PQgetResult(db)) != NULL) {
                    if (PQresultStatus(r) != PGRES_COMMAND_OK)
                        die("COPY");
                    PQclear(r);
                }
                exec_ok("COMMIT", PGRES_COMMAND_OK);
                in_batch = 0;
            }
        }
    }
    double secs = (double)(mono_now_us() - t0) / 1e6;
    printf("events=%llu seconds=%.3f rate=%.0f\n", (unsigned long long)rows, secs,
           (double)rows / secs);
    PQfinish(db);
    return 0;
}
