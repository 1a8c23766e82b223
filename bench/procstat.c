/*
 * bench-procstat: runs a command and measures it with its whole process
 * tree, the way the benchmark needs it for sluice's worker pools (a
 * supervisor and its forked workers) and producers.
 *
 *   bench-procstat [-i MS] -o FILE -- COMMAND [ARGS...]
 *
 * Every MS milliseconds (default 20) it walks the tree from the command's
 * pid through /proc/PID/task/TID/children and sums VmRSS over all its live
 * processes; the peak of that sum is the tree's peak resident memory. It
 * also keeps each process's VmHWM (its own peak) and sums those, an upper
 * bound for processes that peaked at different times. CPU time is the
 * command's user+system time including every descendant it reaped
 * (getrusage RUSAGE_CHILDREN), read after the command exits.
 *
 * FILE gets key=value lines: start_us (wall clock at launch, microseconds
 * since the epoch), end_us, wall_s, cpu_user_s, cpu_sys_s, cpu_s,
 * peak_rss_kb, sum_hwm_kb, max_procs, status. SIGTERM/SIGINT are passed to
 * the command. Exits with the command's exit status (128+signal if killed).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 4096

typedef struct seen {
    pid_t pid;
    long hwm_kb;
} seen;

static seen procs[MAX_PIDS];
static size_t nprocs;
static volatile sig_atomic_t child_pid;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* VmRSS and VmHWM of pid in kB; returns -1 if it is gone. */
static int read_status(pid_t pid, long *rss_kb, long *hwm_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    *rss_kb = *hwm_kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return 0;
}

static void note_hwm(pid_t pid, long hwm_kb)
{
    for (size_t i = 0; i < nprocs; i++) {
        if (procs[i].pid == pid) {
            if (hwm_kb > procs[i].hwm_kb)
                procs[i].hwm_kb = hwm_kb;
            return;
        }
    }
    if (nprocs < MAX_PIDS)
        procs[nprocs++] = (seen){pid, hwm_kb};
}

/* Adds pid's and its descendants' VmRSS to *rss_kb; counts them in *n. */
static void walk(pid_t pid, long *rss_kb, int *n, int depth)
{
    long rss, hwm;
    if (depth > 16 || read_status(pid, &rss, &hwm) != 0)
        return;
    *rss_kb += rss;
    (*n)++;
    note_hwm(pid, hwm);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char cpath[300];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, e->d_name);
        FILE *f = fopen(cpath, "r");
        if (!f)
            continue;
        int kid;
        while (fscanf(f, "%d", &kid) == 1)
            walk((pid_t)kid, rss_kb, n, depth + 1);
        fclose(f);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    long interval_ms = 20;
    int opt;
    while ((opt = getopt(argc, argv, "+i:o:")) != -1) {
        if (opt == 'i')
            interval_ms = strtol(optarg, NULL, 10);
        else if (opt == 'o')
            out = optarg;
        else
            break;
    }
    if (!out || optind >= argc || interval_ms <= 0) {
        fprintf(stderr, "usage: bench-procstat [-i MS] -o FILE -- COMMAND [ARGS...]\n");
        return 2;
    }
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "bench-procstat: cannot write %s: %s\n", out, strerror(errno));
        return 2;
    }
    struct sigaction sa = {.sa_handler = forward};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int64_t start = wall_us();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench-procstat: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execvp(argv[optind], &argv[optind]);
        fprintf(stderr, "bench-procstat: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    child_pid = pid;

    long peak_rss = 0;
    int max_procs = 0, status = 0;
    for (;;) {
        long rss = 0;
        int n = 0;
        walk(pid, &rss, &n, 0);
        if (rss > peak_rss)
            peak_rss = rss;
        if (n > max_procs)
            max_procs = n;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "bench-procstat: waitpid: %s\n", strerror(errno));
            return 1;
        }
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int64_t end = wall_us();
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    long sum_hwm = 0;
    for (size_t i = 0; i < nprocs; i++)
        sum_hwm += procs[i].hwm_kb;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(f,
            "start_us=%lld\nend_us=%lld\nwall_s=%.3f\ncpu_user_s=%.3f\ncpu_sys_s=%.3f\n"
            "cpu_s=%.3f\npeak_rss_kb=%ld\nsum_hwm_kb=%ld\nmax_procs=%d\nstatus=%d\n",
            (long long)start, (long long)end, (double)(end - start) / 1e6, user, sys, user + sys,
            peak_rss, sum_hwm, max_procs, code);
    fclose(f);
    return code;
}
