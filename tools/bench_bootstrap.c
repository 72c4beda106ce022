/* mnnvl-bench bootstrap: how long N processes take to get a working CPU-only communicator:
 * from the first fork until the last process exits, each running comm_create +
 * allgather(64 B, checked) + barrier + destroy over the tcp bootstrap on loopback. Also
 * reports each phase as the slowest rank saw it. Median over the repetitions. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h" /* base/: the one clock */
#include "mnnvl.h"
#include "tools/bench.h"

#define BLOB_BYTES 64
/* A run of the processes may take this much longer than timeout_ms before it is killed. */
#define WATCHDOG_SLACK_MS 10000

typedef struct bench_opts {
    int ranks;
    int reps;
    int timeout_ms;
    int external; /* one mnnvl_root_start root in this process instead of rank 0's */
} bench_opts_t;

/* What one rank measured, in memory shared with the parent. */
typedef struct rank_result {
    double create_ms;
    double allgather_ms;
    double barrier_ms;
} rank_result_t;

typedef struct rep_result {
    double wall_ms;
    double create_ms; /* the slowest rank's */
    double allgather_ms;
    double barrier_ms;
} rep_result_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mnnvl-bench bootstrap [--ranks N] [--reps K] [--timeout-ms MS] "
                 "[--external]\n"
                 "Forks N processes (default 8) K times (default 5); each creates a CPU-only\n"
                 "communicator over the tcp bootstrap on 127.0.0.1, allgathers 64 bytes, runs\n"
                 "a barrier and destroys it. Prints the median time from the first fork until\n"
                 "all processes exited, and each phase as the slowest rank saw it.\n"
                 "  --timeout-ms MS  the communicators' timeout_ms (default 30000)\n"
                 "  --external       run the root in this process (mnnvl_root_start) with\n"
                 "                   root_mode=external, instead of inside rank 0\n");
}

/* Returns 0 to run, 1 when --help was asked for, -1 on a bad option. */
static int parse_options(int argc, char **argv, bench_opts_t *o)
{
    static const struct option options[] = {
        {"ranks", required_argument, NULL, 'n'},
        {"reps", required_argument, NULL, 'k'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"external", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (bench_opts_t){.ranks = 8, .reps = 5, .timeout_ms = 30000};
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'n': o->ranks = atoi(optarg); break;
        case 'k': o->reps = atoi(optarg); break;
        case 't': o->timeout_ms = atoi(optarg); break;
        case 'e': o->external = 1; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || o->ranks < 1 || o->reps < 1 || o->timeout_ms < 1) {
        fprintf(stderr, "mnnvl-bench bootstrap: --ranks, --reps and --timeout-ms must be "
                        "positive numbers\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* A loopback port that was free a moment ago, for rank 0's root. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int rank_failed(int rank, const char *what, mnnvl_status_t st)
{
    fprintf(stderr, "rank %d: %s: %s: %s\n", rank, what, mnnvl_status_string(st),
            mnnvl_last_error());
    return 1;
}

/* One rank's whole life; the return value is its exit code. */
static int run_rank(const bench_opts_t *o, const char *root, int rank, rank_result_t *out)
{
    mnnvl_config_t cfg = NULL;
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", o->timeout_ms);
    mnnvl_status_t st = mnnvl_config_create(&cfg);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "bootstrap", "tcp");
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "root", root);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "root_mode", o->external ? "external" : "rank0");
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "timeout_ms", timeout);
    if (st != MNNVL_SUCCESS)
        return rank_failed(rank, "config", st);

    uint8_t send[BLOB_BYTES];
    uint8_t *recv = malloc((size_t)o->ranks * BLOB_BYTES);
    for (int i = 0; i < BLOB_BYTES; i++)
        send[i] = (uint8_t)(rank * 131 + i);
    mnnvl_comm_t comm = NULL;
    double t0 = mnnvl_now_ms_precise();
    st = mnnvl_comm_create(cfg, rank, o->ranks, -1, &comm);
    double t1 = mnnvl_now_ms_precise();
    if (st == MNNVL_SUCCESS && recv)
        st = mnnvl_comm_allgather(comm, send, recv, BLOB_BYTES);
    double t2 = mnnvl_now_ms_precise();
    if (st == MNNVL_SUCCESS)
        st = mnnvl_comm_barrier(comm);
    double t3 = mnnvl_now_ms_precise();
    int rc = st != MNNVL_SUCCESS || !recv ? rank_failed(rank, "bootstrap", st) : 0;
    for (int r = 0; rc == 0 && r < o->ranks; r++)
        for (int i = 0; i < BLOB_BYTES; i++)
            if (recv[r * BLOB_BYTES + i] != (uint8_t)(r * 131 + i)) {
                fprintf(stderr, "rank %d: allgather: wrong byte %d from rank %d\n", rank, i, r);
                rc = 1;
                break;
            }
    mnnvl_comm_destroy(comm);
    mnnvl_config_destroy(cfg);
    free(recv);
    *out = (rank_result_t){t1 - t0, t2 - t1, t3 - t2};
    return rc;
}

/* Waits for every child; kills them all when the watchdog expires. Returns the number of
 * children that did not exit with 0. */
static int wait_all(pid_t *pids, int n, double deadline_ms)
{
    int failed = 0;
    int left = n;
    while (left > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int r = 0; r < n; r++) {
                if (pids[r] == pid) {
                    pids[r] = 0;
                    left--;
                    failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
                }
            }
            continue;
        }
        if (pid < 0)
            break;
        if (mnnvl_now_ms_precise() > deadline_ms) {
            fprintf(stderr, "mnnvl-bench bootstrap: %d processes still running; killing them\n",
                    left);
            for (int r = 0; r < n; r++)
                if (pids[r] > 0)
                    kill(pids[r], SIGKILL);
            deadline_ms = 1e300;
        }
        usleep(1000);
    }
    return failed + left;
}

static int run_rep(const bench_opts_t *o, const char *root, rank_result_t *ranks, rep_result_t *rep)
{
    pid_t *pids = calloc((size_t)o->ranks, sizeof(*pids));
    if (!pids)
        return -1;
    fflush(NULL);
    double t0 = mnnvl_now_ms_precise();
    int forked = 0;
    for (; forked < o->ranks; forked++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(run_rank(o, root, forked, &ranks[forked]));
        if (pid < 0) {
            perror("mnnvl-bench bootstrap: fork");
            break;
        }
        pids[forked] = pid;
    }
    /* Without every rank the others would only time out: stop them at once. */
    double deadline = forked < o->ranks ? 0 : t0 + o->timeout_ms + WATCHDOG_SLACK_MS;
    int failed = wait_all(pids, forked, deadline) + (o->ranks - forked);
    rep->wall_ms = mnnvl_now_ms_precise() - t0;
    free(pids);
    *rep = (rep_result_t){.wall_ms = rep->wall_ms};
    for (int r = 0; r < o->ranks; r++) {
        rep->create_ms = ranks[r].create_ms > rep->create_ms ? ranks[r].create_ms : rep->create_ms;
        rep->allgather_ms =
            ranks[r].allgather_ms > rep->allgather_ms ? ranks[r].allgather_ms : rep->allgather_ms;
        rep->barrier_ms =
            ranks[r].barrier_ms > rep->barrier_ms ? ranks[r].barrier_ms : rep->barrier_ms;
    }
    return failed;
}

/* Prints one table row: the median, minimum and maximum over the reps of one field. */
static void print_row(const char *name, const rep_result_t *reps, int n, size_t field)
{
    double *v = malloc((size_t)n * sizeof(*v));
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        memcpy(&v[i], (const char *)&reps[i] + field, sizeof(double));
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("%-34s %10.1f %10.1f %10.1f\n", name, median, v[0], v[n - 1]);
    free(v);
}

static void print_table(const bench_opts_t *o, const rep_result_t *reps)
{
    printf("mnnvl-bench bootstrap: %d ranks, %d reps, tcp bootstrap, root_mode=%s, loopback\n",
           o->ranks, o->reps, o->external ? "external" : "rank0");
    printf("%-34s %10s %10s %10s\n", "phase", "median ms", "min ms", "max ms");
    print_row("fork to all exited (wall)", reps, o->reps, offsetof(rep_result_t, wall_ms));
    print_row("comm_create (slowest rank)", reps, o->reps, offsetof(rep_result_t, create_ms));
    print_row("allgather 64 B (slowest rank)", reps, o->reps, offsetof(rep_result_t, allgather_ms));
    print_row("barrier (slowest rank)", reps, o->reps, offsetof(rep_result_t, barrier_ms));
}

/* Runs the reps against `root`; returns the exit code. */
static int run_reps(const bench_opts_t *o, const char *fixed_root)
{
    size_t shared_bytes = (size_t)o->ranks * sizeof(rank_result_t);
    rank_result_t *ranks =
        mmap(NULL, shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    rep_result_t *reps = calloc((size_t)o->reps, sizeof(*reps));
    if (ranks == MAP_FAILED || !reps) {
        fprintf(stderr, "mnnvl-bench bootstrap: out of memory\n");
        free(reps);
        return 1;
    }
    int rc = 0;
    for (int k = 0; k < o->reps && rc == 0; k++) {
        char root[64];
        if (fixed_root)
            snprintf(root, sizeof(root), "%s", fixed_root);
        else
            snprintf(root, sizeof(root), "127.0.0.1:%d", free_port());
        memset(ranks, 0, shared_bytes);
        int failed = run_rep(o, root, ranks, &reps[k]);
        fprintf(stderr,
                "rep %d/%d: %.1f ms wall; slowest rank: create %.1f ms, allgather %.1f ms, "
                "barrier %.1f ms%s\n",
                k + 1, o->reps, reps[k].wall_ms, reps[k].create_ms, reps[k].allgather_ms,
                reps[k].barrier_ms, failed ? " (FAILED)" : "");
        if (failed) {
            fprintf(stderr, "mnnvl-bench bootstrap: %d of %d ranks failed\n", failed, o->ranks);
            rc = 1;
        }
    }
    if (rc == 0)
        print_table(o, reps);
    munmap(ranks, shared_bytes);
    free(reps);
    return rc;
}

int bench_bootstrap(int argc, char **argv)
{
    bench_opts_t o;
    int parsed = parse_options(argc, argv, &o);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    fprintf(stderr, "mnnvl-bench bootstrap: %d ranks x %d reps (root_mode=%s)\n", o.ranks, o.reps,
            o.external ? "external" : "rank0");
    if (!o.external)
        return run_reps(&o, NULL);

    bench_root_t root;
    if (bench_root_start(&root) != 0)
        return 1;
    int rc = run_reps(&o, mnnvl_root_address(root.root));
    bench_root_stop(&root);
    return rc;
}
