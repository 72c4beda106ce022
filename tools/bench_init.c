/* mnnvl-bench init: how long a job waits for libmnnvl before its first operation:
 * communicator creation plus a 64 MiB symmetric allocation, one process per GPU. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h" /* base/: the one clock */
#include "mnnvl.h"
#include "tools/bench.h"
#ifdef HAVE_CUDA
#include "tools/cuda_dl.h"
#endif

#ifdef HAVE_CUDA
typedef struct rank_times {
    double context_ms; /* CUDA context creation, once per process, outside the loop */
    double create_ms[64];
    double alloc_ms[64];
    int failed;
} rank_times_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_rank(int rank, int size, const char *root, int reps, size_t bytes, rank_times_t *t)
{
    tool_cuda_t cu;
    char why[256];
    double t0 = mnnvl_now_ms_precise();
    void *ctx = NULL;
    if (tool_cuda_load(&cu, why, sizeof(why)) != 0 || !cu.primary_ctx_retain ||
        cu.primary_ctx_retain(&ctx, rank) != 0) {
        fprintf(stderr, "rank %d: cannot create a CUDA context: %s\n", rank, why);
        return 1;
    }
    /* An application has its context long before it creates a communicator, so the loop
     * below measures libmnnvl alone; the context's cost is reported on its own. */
    t->context_ms = mnnvl_now_ms_precise() - t0;
    mnnvl_config_t cfg;
    mnnvl_config_create(&cfg);
    mnnvl_config_set(cfg, "root", root);
    mnnvl_config_set(cfg, "root_mode", "external");
    mnnvl_config_set(cfg, "comm_name", "bench-init");
    for (int r = 0; r < reps; r++) {
        mnnvl_comm_t comm;
        mnnvl_mem_t mem;
        double a = mnnvl_now_ms_precise();
        mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, rank, &comm);
        double b = mnnvl_now_ms_precise();
        if (st == MNNVL_SUCCESS)
            st = mnnvl_mem_alloc(comm, bytes, &mem);
        double c = mnnvl_now_ms_precise();
        if (st != MNNVL_SUCCESS) {
            fprintf(stderr, "rank %d: %s: %s\n", rank, mnnvl_status_string(st), mnnvl_last_error());
            return 1;
        }
        t->create_ms[r] = b - a;
        t->alloc_ms[r] = c - b;
        mnnvl_comm_barrier(comm);
        mnnvl_mem_release(mem);
        mnnvl_comm_destroy(comm);
        if (rank == 0)
            fprintf(stderr, "\rmnnvl-bench init: %d/%d done", r + 1, reps);
    }
    if (rank == 0)
        fprintf(stderr, "\n");
    mnnvl_config_destroy(cfg);
    return 0;
}

typedef struct init_job {
    int reps;
    size_t bytes;
    rank_times_t *times; /* shared with the parent */
} init_job_t;

static int init_rank(int rank, int size, const char *root, void *arg)
{
    init_job_t *job = arg;
    return run_rank(rank, size, root, job->reps, job->bytes, &job->times[rank]);
}
#endif

int bench_init(int argc, char **argv)
{
    int reps = 10;
    size_t bytes = 64u << 20;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
            bytes = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else {
            printf("usage: mnnvl-bench init [--reps N (1-64, default 10)] [--bytes B "
                   "(default 64 MiB)] [--json FILE]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "mnnvl-bench init: --reps %d is not in 1..64\n", reps);
        return 2;
    }
#ifndef HAVE_CUDA
    (void)bytes;
    (void)json;
    printf("mnnvl-bench init: skipped: libmnnvl was built without CUDA\n");
    return 0;
#else
    char why[256] = "";
    int n = tool_gpu_count(why, sizeof(why));
    if (n < 1) {
        printf("mnnvl-bench init: skipped: no GPU visible (%s)\n", why);
        return 0;
    }
    if (n > 64)
        n = 64;
    init_job_t job = {.reps = reps,
                      .bytes = bytes,
                      .times = bench_shared_alloc(sizeof(rank_times_t) * (size_t)n)};
    rank_times_t *times = job.times;
    printf("mnnvl-bench init: %d GPUs, one process each, %d repetitions, %zu-byte allocation\n", n,
           reps, bytes);
    fflush(stdout);
    int failed = times ? bench_run_ranks(n, init_rank, &job) : -1;
    if (failed) {
        fprintf(stderr, "mnnvl-bench init: %d rank(s) failed\n", failed);
        return 1;
    }
    /* A job is ready when its slowest rank is: take the maximum over ranks per repetition. */
    double create[64], alloc[64], total[64], ctx = 0;
    for (int i = 0; i < reps; i++) {
        create[i] = alloc[i] = total[i] = 0;
        for (int r = 0; r < n; r++) {
            if (times[r].create_ms[i] > create[i])
                create[i] = times[r].create_ms[i];
            if (times[r].alloc_ms[i] > alloc[i])
                alloc[i] = times[r].alloc_ms[i];
            double t = times[r].create_ms[i] + times[r].alloc_ms[i];
            if (t > total[i])
                total[i] = t;
        }
    }
    for (int r = 0; r < n; r++)
        if (times[r].context_ms > ctx)
            ctx = times[r].context_ms;
    double first = total[0];
    double m_create = median(create, reps), m_alloc = median(alloc, reps);
    double m_total = median(total, reps);
    printf("%-34s %10s\n", "phase (slowest rank)", "median ms");
    printf("%-34s %10.2f\n", "comm_create", m_create);
    printf("%-34s %10.2f\n", "mem_alloc", m_alloc);
    printf("%-34s %10.2f\n", "comm_create + mem_alloc", m_total);
    printf("%-34s %10.2f\n", "first repetition (create+alloc)", first);
    printf("%-34s %10.2f\n", "CUDA context creation (not incl.)", ctx);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"benchmark\": \"init\", \"gpus\": %d, \"reps\": %d, \"bytes\": %zu, "
                    "\"median_create_ms\": %.3f, \"median_alloc_ms\": %.3f, "
                    "\"median_total_ms\": %.3f, \"first_total_ms\": %.3f, "
                    "\"context_ms\": %.3f}\n",
                    n, reps, bytes, m_create, m_alloc, m_total, first, ctx);
            fclose(f);
        }
    }
    bench_shared_free(times, sizeof(rank_times_t) * (size_t)n);
    return 0;
#endif
}
