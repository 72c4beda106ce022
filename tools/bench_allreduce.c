/* mnnvl-bench allreduce: libmnnvl's all-reduce against NCCL's in the same run, on the same
 * GPUs and buffers, each captured in CUDA graphs. One process per GPU; NCCL is loaded with
 * dlopen (libnccl.so.2, or $MNNVL_BENCH_NCCL), so it is no dependency of anything.
 *
 * Per size: both outputs are checked against the exact sum first (the inputs are small
 * multiples of 1/4, exact in bf16); then each library runs K calls captured in one graph,
 * launched after a device barrier so that the ranks start together, timed with events, 15
 * times; the median per call counts, and the slowest rank's median is reported. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnnvl.h"
#include "tools/bench.h"

#ifdef HAVE_CUDA
#include <cuda_runtime.h>

#include "tools/bench_nccl.h"
#include "tools/cuda_dl.h"

#define MAX_SIZES 32
#define REPS 15
#define HIDDEN 7168
#define FUSED_CASES 4
#define FORCED_MAX ((size_t)16 << 20) /* forced strategies are timed up to this size */
static const int fused_tokens[FUSED_CASES] = {1, 8, 32, 128};

int bench_launch_residual_rmsnorm(const void *x, const void *res_in, const void *gamma, float eps,
                                  int tokens, int hidden, void *res_out, void *norm_out,
                                  void *stream);

typedef struct result {
    double mnnvl_us[MAX_SIZES];
    double nccl_us[MAX_SIZES];
    double oneshot_us[MAX_SIZES]; /* forced strategies, to choose AUTO's threshold */
    double twoshot_us[MAX_SIZES];
    double fused_us[FUSED_CASES];
    double unfused_us[FUSED_CASES];
    int failed;
    char why[256];
} result_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* An exact bf16 input: multiples of 1/4 in [-2, 2]; sums of a few stay exact. */
static uint16_t input_bits(int rank, size_t i)
{
    float v = (float)((int)((i * 7 + (size_t)rank * 3) % 17) - 8) * 0.25f;
    uint32_t u;
    memcpy(&u, &v, 4);
    return (uint16_t)(u >> 16);
}

static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Checks 4096 positions spread over the output (and the last one) against the exact sum. */
static int check(const void *dev, size_t count, int size, const char *who, int rank)
{
    enum { SAMPLES = 4096 };
    static uint16_t host[SAMPLES];
    size_t step = count / SAMPLES ? count / SAMPLES : 1;
    for (size_t k = 0; k < SAMPLES && k * step < count; k++) {
        size_t i = k == SAMPLES - 1 ? count - 1 : k * step;
        if (cudaMemcpy(&host[k], (const uint16_t *)dev + i, 2, cudaMemcpyDeviceToHost) != 0)
            return 1;
        float want = 0;
        for (int r = 0; r < size; r++)
            want += bf16_to_float(input_bits(r, i));
        if (bf16_to_float(host[k]) != want) {
            fprintf(stderr, "rank %d: %s: element %zu of %zu is %g, want %g\n", rank, who, i, count,
                    bf16_to_float(host[k]), want);
            return 1;
        }
    }
    return 0;
}

typedef struct op {
    int kind; /* 0 mnnvl, 1 nccl, 2 fused, 3 all-reduce then the residual+RMSNorm kernel */
    mnnvl_allreduce_t ar;
    nccl_t *nccl;
    void *nccl_comm;
    void *in, *out, *res, *gamma, *res_out, *norm;
    size_t count;
    int tokens;
} op_t;

static int enqueue(const op_t *o, cudaStream_t s)
{
    switch (o->kind) {
    case 0: return mnnvl_allreduce(o->ar, o->in, o->out, o->count, s);
    case 1:
        return o->nccl->all_reduce(o->in, o->out, o->count, NCCL_BF16, NCCL_SUM, o->nccl_comm, s);
    case 2:
        return mnnvl_allreduce_residual_rmsnorm(o->ar, o->in, o->res, o->gamma, 1e-6f,
                                                (size_t)o->tokens, HIDDEN, o->res_out, o->norm, s);
    default:
        if (mnnvl_allreduce(o->ar, o->in, o->out, o->count, s) != 0)
            return 1;
        return bench_launch_residual_rmsnorm(o->out, o->res, o->gamma, 1e-6f, o->tokens, HIDDEN,
                                             o->res_out, o->norm, s);
    }
}

/* Median microseconds per call of `o`, K calls per graph. */
static double time_op(mnnvl_comm_t comm, const op_t *o, cudaStream_t s, int calls)
{
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != 0)
        return -1;
    int bad = 0;
    for (int k = 0; k < calls; k++)
        bad |= enqueue(o, s) != 0;
    if (cudaStreamEndCapture(s, &graph) != 0 || bad || cudaGraphInstantiate(&exec, graph, 0) != 0)
        return -1;
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    double t[REPS];
    for (int rep = -2; rep < REPS; rep++) { /* two warm-up launches */
        mnnvl_comm_device_barrier(comm, s);
        cudaEventRecord(a, s);
        cudaGraphLaunch(exec, s);
        cudaEventRecord(b, s);
        cudaStreamSynchronize(s);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        if (rep >= 0)
            t[rep] = ms * 1000.0 / calls;
    }
    qsort(t, REPS, sizeof(double), cmp_double);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    mnnvl_status_t async = MNNVL_SUCCESS;
    mnnvl_comm_get_async_error(comm, &async);
    return async == MNNVL_SUCCESS ? t[REPS / 2] : -1;
}

typedef struct job {
    int size;
    size_t sizes[MAX_SIZES];
    int nsizes;
    int have_nccl;
} job_t;

static int rank_main(int rank, const job_t *job, const char *root, result_t *res)
{
    const int n = job->size;
    size_t max_bytes = job->sizes[job->nsizes - 1];
    if ((size_t)FUSED_CASES && (size_t)128 * HIDDEN * 2 > max_bytes)
        max_bytes = (size_t)128 * HIDDEN * 2;
    mnnvl_config_t cfg;
    mnnvl_config_create(&cfg);
    mnnvl_config_set(cfg, "root", root);
    mnnvl_config_set(cfg, "root_mode", "external");
    mnnvl_config_set(cfg, "timeout_ms", "30000");
    mnnvl_comm_t comm, forced_comm;
    if (mnnvl_comm_create(cfg, rank, n, rank, &comm) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "comm_create: %s", mnnvl_last_error());
        return 1;
    }
    /* The forced strategies live on a second communicator whose one-shot workspace covers
     * every size they are timed at. */
    char forced_max[32];
    snprintf(forced_max, sizeof(forced_max), "%zu", FORCED_MAX);
    mnnvl_config_set(cfg, "comm_name", "forced");
    mnnvl_config_set(cfg, "allreduce_oneshot_max", forced_max);
    if (mnnvl_comm_create(cfg, rank, n, rank, &forced_comm) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "comm_create: %s", mnnvl_last_error());
        return 1;
    }
    mnnvl_config_destroy(cfg);
    cudaSetDevice(rank);
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    p.dtype = MNNVL_DTYPE_BF16;
    p.max_count = max_bytes / 2;
    mnnvl_allreduce_t ar, forced[2];
    mnnvl_status_t st = mnnvl_allreduce_create(comm, &p, &ar);
    for (int f = 0; f < 2 && st == MNNVL_SUCCESS; f++) {
        p.strategy = f ? MNNVL_ALLREDUCE_TWOSHOT : MNNVL_ALLREDUCE_ONESHOT;
        p.max_count = FORCED_MAX / 2;
        st = mnnvl_allreduce_create(forced_comm, &p, &forced[f]);
    }
    if (st != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "allreduce_create: %s", mnnvl_last_error());
        return 1;
    }
    nccl_t nccl;
    char why[256];
    void *nccl_comm = NULL;
    if (job->have_nccl && bench_nccl_load(&nccl, why, sizeof(why)) == 0) {
        nccl_id_t id;
        if (rank == 0)
            nccl.get_unique_id(&id);
        mnnvl_comm_broadcast(comm, &id, sizeof(id), 0);
        int rc = nccl.init_rank(&nccl_comm, n, id, rank);
        if (rc != 0) {
            snprintf(res->why, sizeof(res->why), "ncclCommInitRank: %s", nccl.error_string(rc));
            return 1;
        }
    }
    void *in, *out, *nout, *resid, *gamma, *res_out, *norm;
    uint16_t *host = malloc(max_bytes);
    for (size_t i = 0; i < max_bytes / 2; i++)
        host[i] = input_bits(rank, i);
    if (cudaMalloc(&in, max_bytes) || cudaMalloc(&out, max_bytes) || cudaMalloc(&nout, max_bytes) ||
        cudaMalloc(&resid, max_bytes) || cudaMalloc(&gamma, HIDDEN * 2) ||
        cudaMalloc(&res_out, max_bytes) || cudaMalloc(&norm, max_bytes)) {
        snprintf(res->why, sizeof(res->why), "cudaMalloc of %zu bytes failed", max_bytes);
        return 1;
    }
    cudaMemcpy(in, host, max_bytes, cudaMemcpyHostToDevice);
    cudaMemcpy(resid, host, max_bytes, cudaMemcpyHostToDevice);
    cudaMemcpy(gamma, host, HIDDEN * 2, cudaMemcpyHostToDevice);
    free(host);
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    for (int k = 0; k < job->nsizes; k++) {
        size_t count = job->sizes[k] / 2;
        op_t mine = {.kind = 0, .ar = ar, .in = in, .out = out, .count = count};
        op_t theirs = {.kind = 1,
                       .nccl = &nccl,
                       .nccl_comm = nccl_comm,
                       .in = in,
                       .out = nout,
                       .count = count};
        cudaMemset(out, 0xff, job->sizes[k]);
        cudaMemset(nout, 0xff, job->sizes[k]);
        enqueue(&mine, s);
        if (nccl_comm)
            enqueue(&theirs, s);
        if (cudaStreamSynchronize(s) != 0 || check(out, count, n, "mnnvl", rank) ||
            (nccl_comm && check(nout, count, n, "nccl", rank))) {
            snprintf(res->why, sizeof(res->why), "wrong result at %zu bytes", job->sizes[k]);
            return 1;
        }
        /* Enough calls per graph that launch costs vanish, few enough for large sizes. */
        size_t calls = ((size_t)64 << 20) / job->sizes[k];
        calls = calls < 1 ? 1 : calls > 20 ? 20 : calls;
        /* Alternate who goes first so neither always runs on a warmer machine. */
        if (k % 2 == 0) {
            res->mnnvl_us[k] = time_op(comm, &mine, s, (int)calls);
            res->nccl_us[k] = nccl_comm ? time_op(comm, &theirs, s, (int)calls) : 0;
        } else {
            res->nccl_us[k] = nccl_comm ? time_op(comm, &theirs, s, (int)calls) : 0;
            res->mnnvl_us[k] = time_op(comm, &mine, s, (int)calls);
        }
        for (int f = 0; f < 2 && job->sizes[k] <= FORCED_MAX; f++) {
            op_t o = mine;
            o.ar = forced[f];
            *(f ? &res->twoshot_us[k] : &res->oneshot_us[k]) = time_op(comm, &o, s, (int)calls);
        }
        if (res->mnnvl_us[k] < 0 || res->nccl_us[k] < 0 || res->oneshot_us[k] < 0 ||
            res->twoshot_us[k] < 0) {
            snprintf(res->why, sizeof(res->why), "timing failed at %zu bytes: %s", job->sizes[k],
                     mnnvl_last_error());
            return 1;
        }
        if (rank == 0)
            fprintf(stderr, "\rmnnvl-bench allreduce: world %d, %d/%d sizes", n, k + 1,
                    job->nsizes);
    }
    for (int t = 0; t < FUSED_CASES; t++) {
        op_t fused = {.kind = 2,
                      .ar = ar,
                      .in = in,
                      .out = out,
                      .res = resid,
                      .gamma = gamma,
                      .res_out = res_out,
                      .norm = norm,
                      .tokens = fused_tokens[t],
                      .count = (size_t)fused_tokens[t] * HIDDEN};
        op_t unfused = fused;
        unfused.kind = 3;
        res->fused_us[t] = time_op(comm, &fused, s, 20);
        res->unfused_us[t] = time_op(comm, &unfused, s, 20);
    }
    if (rank == 0)
        fprintf(stderr, "\n");
    if (nccl_comm)
        nccl.destroy(nccl_comm);
    mnnvl_allreduce_destroy(ar);
    mnnvl_allreduce_destroy(forced[0]);
    mnnvl_allreduce_destroy(forced[1]);
    mnnvl_comm_destroy(forced_comm);
    mnnvl_comm_barrier(comm);
    mnnvl_comm_destroy(comm);
    return 0;
}

static double slowest(const result_t *r, int n, size_t offset)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&r[i] + offset);
        worst = v > worst ? v : worst;
    }
    return worst;
}

typedef struct world {
    const job_t *job;
    result_t *results; /* one per rank, shared with the parent */
} world_t;

static int world_rank(int rank, int size, const char *root, void *arg)
{
    world_t *w = arg;
    int rc = rank_main(rank, w->job, root, &w->results[rank]);
    if (rc)
        fprintf(stderr, "rank %d of %d: %s\n", rank, size, w->results[rank].why);
    return rc;
}

/* Runs one world size; fills `out` with the slowest rank's numbers. */
static int run_world(const job_t *job, result_t *out)
{
    const size_t bytes = sizeof(result_t) * (size_t)job->size;
    world_t w = {.job = job, .results = bench_shared_alloc(bytes)};
    result_t *res = w.results;
    int failed = res ? bench_run_ranks(job->size, world_rank, &w) : -1;
    for (int k = 0; k < job->nsizes; k++) {
        out->mnnvl_us[k] =
            slowest(res, job->size, offsetof(result_t, mnnvl_us) + k * sizeof(double));
        out->nccl_us[k] = slowest(res, job->size, offsetof(result_t, nccl_us) + k * sizeof(double));
        out->oneshot_us[k] =
            slowest(res, job->size, offsetof(result_t, oneshot_us) + k * sizeof(double));
        out->twoshot_us[k] =
            slowest(res, job->size, offsetof(result_t, twoshot_us) + k * sizeof(double));
    }
    for (int t = 0; t < FUSED_CASES; t++) {
        out->fused_us[t] =
            slowest(res, job->size, offsetof(result_t, fused_us) + t * sizeof(double));
        out->unfused_us[t] =
            slowest(res, job->size, offsetof(result_t, unfused_us) + t * sizeof(double));
    }
    bench_shared_free(res, bytes);
    return failed;
}

static void print_world(const job_t *job, const result_t *r, FILE *json, int first)
{
    const int n = job->size;
    printf("\nall-reduce, bf16, %d GPUs, CUDA graphs, median per call of the slowest rank\n", n);
    printf("%10s %10s %10s %7s %12s %12s %10s %10s\n", "bytes", "NCCL us", "mnnvl us", "ratio",
           "mnnvl busbw", "NCCL busbw", "1-shot us", "2-shot us");
    fprintf(json, "%s{\"world\": %d, \"sizes\": [", first ? "" : ",\n", n);
    for (int k = 0; k < job->nsizes; k++) {
        double factor = 2.0 * (n - 1) / n * (double)job->sizes[k] / 1e3; /* GB/s from us */
        double ratio = r->nccl_us[k] > 0 ? r->mnnvl_us[k] / r->nccl_us[k] : 0;
        printf("%10zu %10.2f %10.2f %7.2f %7.1f GB/s %7.1f GB/s %10.2f %10.2f\n", job->sizes[k],
               r->nccl_us[k], r->mnnvl_us[k], ratio, factor / r->mnnvl_us[k],
               r->nccl_us[k] > 0 ? factor / r->nccl_us[k] : 0, r->oneshot_us[k], r->twoshot_us[k]);
        fprintf(json,
                "%s{\"bytes\": %zu, \"nccl_us\": %.3f, \"mnnvl_us\": %.3f, \"ratio\": %.4f, "
                "\"oneshot_us\": %.3f, \"twoshot_us\": %.3f}",
                k ? ", " : "", job->sizes[k], r->nccl_us[k], r->mnnvl_us[k], ratio,
                r->oneshot_us[k], r->twoshot_us[k]);
    }
    printf("fused all-reduce + residual + RMSNorm, hidden %d (us per call)\n", HIDDEN);
    printf("%8s %12s %16s %10s\n", "tokens", "fused", "allreduce+norm", "fused-unf");
    fprintf(json, "], \"fused\": [");
    for (int t = 0; t < FUSED_CASES; t++) {
        printf("%8d %12.2f %16.2f %+10.2f\n", fused_tokens[t], r->fused_us[t], r->unfused_us[t],
               r->fused_us[t] - r->unfused_us[t]);
        fprintf(json, "%s{\"tokens\": %d, \"fused_us\": %.3f, \"unfused_us\": %.3f}", t ? ", " : "",
                fused_tokens[t], r->fused_us[t], r->unfused_us[t]);
    }
    fprintf(json, "]}");
}

int bench_allreduce(int argc, char **argv)
{
    const char *json_path = "allreduce.json", *svg_path = "allreduce.svg";
    size_t min = 4096, max = (size_t)256 << 20;
    int worlds[4] = {0}, nworlds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--world") == 0 && i + 1 < argc && nworlds < 4)
            worlds[nworlds++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc)
            min = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
            max = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
            svg_path = argv[++i];
        else {
            printf("usage: mnnvl-bench allreduce [--world N]... [--min BYTES] [--max BYTES] "
                   "[--json FILE] [--svg FILE]\n  defaults: every GPU, 4096 .. 268435456, "
                   "allreduce.json, allreduce.svg\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    char why[256] = "";
    int gpus = tool_gpu_count(why, sizeof(why));
    if (gpus < 2) {
        printf("mnnvl-bench allreduce: skipped: needs 2 GPUs, %d visible (%s)\n", gpus, why);
        return 0;
    }
    if (nworlds == 0)
        worlds[nworlds++] = gpus;
    job_t job = {.nsizes = 0};
    for (size_t b = min; b <= max && job.nsizes < MAX_SIZES; b *= 2)
        job.sizes[job.nsizes++] = b;
    nccl_t probe;
    job.have_nccl = bench_nccl_load(&probe, why, sizeof(why)) == 0;
    if (!job.have_nccl)
        printf("NCCL: not loaded (%s); set MNNVL_BENCH_NCCL=/path/libnccl.so.2. Timing "
               "libmnnvl alone.\n",
               why);
    FILE *json = fopen(json_path, "w");
    if (!json) {
        perror(json_path);
        return 1;
    }
    fprintf(json, "{\"benchmark\": \"allreduce\", \"dtype\": \"bf16\", \"results\": [");
    double x[MAX_SIZES], series[8][MAX_SIZES];
    const char *names[8];
    char labels[8][32];
    int nseries = 0, failed = 0;
    for (int w = 0; w < nworlds; w++) {
        if (worlds[w] < 2 || worlds[w] > gpus || worlds[w] > 64) {
            printf("mnnvl-bench allreduce: skipping world %d (%d GPUs visible)\n", worlds[w], gpus);
            continue;
        }
        job.size = worlds[w];
        result_t r;
        memset(&r, 0, sizeof(r));
        if (run_world(&job, &r) != 0) {
            fprintf(stderr, "mnnvl-bench allreduce: world %d failed\n", job.size);
            failed = 1;
            continue;
        }
        print_world(&job, &r, json, w == 0);
        for (int k = 0; k < job.nsizes; k++) {
            x[k] = (double)job.sizes[k];
            series[nseries][k] = r.nccl_us[k];
            series[nseries + 1][k] = r.mnnvl_us[k];
        }
        snprintf(labels[nseries], 32, "NCCL, %d GPUs", job.size);
        snprintf(labels[nseries + 1], 32, "libmnnvl, %d GPUs", job.size);
        names[nseries] = labels[nseries];
        names[nseries + 1] = labels[nseries + 1];
        nseries += 2;
    }
    fprintf(json, "]}\n");
    fclose(json);
    const double *ys[8];
    for (int i = 0; i < nseries; i++)
        ys[i] = series[i];
    if (nseries &&
        bench_svg_write(svg_path, "bf16 all-reduce latency (CUDA graphs)", "message size (bytes)",
                        "microseconds per call", nseries, names, x, ys, job.nsizes) == 0)
        printf("wrote %s and %s\n", json_path, svg_path);
    return failed;
}

#else

int bench_allreduce(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("mnnvl-bench allreduce: skipped: libmnnvl was built without CUDA\n");
    return 0;
}

#endif
