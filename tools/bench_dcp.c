/* mnnvl-bench dcp: the decode-context-parallel (Helix) all-to-all against NCCL in the same
 * run on the same GPUs: bf16 partial outputs, 2 fp32 stats lanes (lane 0 the LSE), head_dim
 * 128 and 512, entries 1 .. 128 (a decode batch's tokens x heads per rank).
 *
 *   transpose:  mnnvl_dcp_a2a   vs NCCL all-to-all (grouped ncclSend/ncclRecv to every rank,
 *               itself included) of the same bytes: E rows of O and of stats per peer
 *   lse_reduce: mnnvl_dcp_a2a_lse_reduce vs that NCCL all-to-all + a merge kernel
 *               (tools/bench_kernels.cu, fp32, what a server runs after an unfused a2a)
 *
 * Every case is checked against a host reference first (the transpose bit for bit, the merge
 * against a double-precision one), libmnnvl and the NCCL baseline alike. Then CALLS calls are
 * captured between two events in one CUDA graph, replayed after a device barrier (2 warm-up
 * replays, then REPS), and the median per call of the slowest rank counts. Ranks beyond the
 * visible GPUs share them (rank r on GPU r % gpus): correct, but timings are meaningless and
 * the run says so loudly. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"
#include "tools/bench.h"

#ifdef HAVE_CUDA
#include <cuda_runtime.h>

#include "tools/bench_nccl.h"
#include "tools/cuda_dl.h"

#define LANES 2
#define CALLS 20
#define REPS 20
#define MAX_ENTRIES 128
#define NDIMS 2
#define NCASES 8
static const int head_dims[NDIMS] = {128, 512};
static const int entry_cases[NCASES] = {1, 2, 4, 8, 16, 32, 64, 128};

enum { T_A2A, T_REDUCE, T_NCCL_A2A, T_NCCL_MERGE, NTIMES };

typedef struct dcp_result {
    double us[NDIMS][NCASES][NTIMES]; /* median per call; 0: not measured */
    char why[256];
} dcp_result_t;

int bench_launch_lse_merge(const void *o, const float *stats, int entries, int cp, int head_dim,
                           int lanes, void *out, float *out_lse, void *stream);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint32_t hash3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t h = a * 0x9e3779b1u ^ b * 0x85ebca6bu ^ c * 0xc2b2ae35u;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element (e, dest, d) of source rank `src`'s partial_o: k/64 with |k| < 128, exact in bf16,
 * so its bits are those of the float's upper half. */
static uint16_t o_value(int src, int e, int dest, int d)
{
    float f =
        (float)((int)(hash3((uint32_t)src, (uint32_t)(e * 64 + dest), (uint32_t)d) % 255) - 127) /
        64.f;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* Lane l of (e, dest) on source `src`: lane 0 an LSE in [-4, 4), -inf for every third
 * source of some entries (no KV there); other lanes arbitrary. */
static float stat_value(int src, int e, int dest, int l)
{
    uint32_t h = hash3((uint32_t)src + 1000u, (uint32_t)(e * 64 + dest), (uint32_t)l);
    if (l == 0 && (e + src) % 3 == 0 && e % 2 == 1)
        return -INFINITY;
    return (float)(h % 64) / 8.f - 4.f;
}

/* The merged output and LSE of entry e on rank `rank`, in double. */
static void merge_reference(int rank, int cp, int e, int head_dim, double *out, double *lse)
{
    double m = -INFINITY, total = 0;
    for (int p = 0; p < cp; p++)
        m = fmax(m, stat_value(p, e, rank, 0));
    for (int d = 0; d < head_dim; d++)
        out[d] = 0;
    for (int p = 0; p < cp && m > -INFINITY; p++) {
        double l = stat_value(p, e, rank, 0);
        if (l == -INFINITY)
            continue;
        double w = exp(l - m);
        total += w;
        for (int d = 0; d < head_dim; d++)
            out[d] += w * bf16_to_float(o_value(p, e, rank, d));
    }
    for (int d = 0; d < head_dim && total > 0; d++)
        out[d] /= total;
    *lse = total > 0 ? m + log(total) : -INFINITY;
}

/* What every rank needs for one head_dim: device buffers sized for MAX_ENTRIES. */
typedef struct bufs {
    int rank, cp, head_dim;
    size_t o_bytes, s_bytes; /* of [MAX_ENTRIES, cp, ...] */
    void *in_o, *out_o, *out, *nccl_send_o, *nccl_recv_o;
    float *in_s, *out_s, *out_lse, *nccl_send_s, *nccl_recv_s;
} bufs_t;

/* Fills the inputs for `entries`: [e, dest, :] for libmnnvl, [dest][e][:] for NCCL. */
static void upload(const bufs_t *b, int entries, uint16_t *ho, float *hs)
{
    const int cp = b->cp, D = b->head_dim, r = b->rank;
    for (int layout = 0; layout < 2; layout++) {
        for (int e = 0; e < entries; e++)
            for (int p = 0; p < cp; p++) {
                size_t row = layout == 0 ? (size_t)e * cp + p : (size_t)p * entries + e;
                for (int d = 0; d < D; d++)
                    ho[row * D + d] = o_value(r, e, p, d);
                for (int l = 0; l < LANES; l++)
                    hs[row * LANES + l] = stat_value(r, e, p, l);
            }
        size_t n = (size_t)entries * cp;
        cudaMemcpy(layout == 0 ? b->in_o : b->nccl_send_o, ho, n * D * 2, cudaMemcpyHostToDevice);
        cudaMemcpy(layout == 0 ? b->in_s : b->nccl_send_s, hs, n * LANES * 4,
                   cudaMemcpyHostToDevice);
    }
}

/* The transpose's outputs against the reference, bit for bit: out_o[e, p, :] is source p's
 * [e, rank, :]. `source_major`: the NCCL layout [p][e][:]. */
static int check_transpose(const bufs_t *b, int entries, const void *o, const float *s,
                           int source_major, uint16_t *ho, float *hs, char *why, size_t len)
{
    const int cp = b->cp, D = b->head_dim;
    size_t n = (size_t)entries * cp;
    cudaMemcpy(ho, o, n * D * 2, cudaMemcpyDeviceToHost);
    cudaMemcpy(hs, s, n * LANES * 4, cudaMemcpyDeviceToHost);
    for (int e = 0; e < entries; e++)
        for (int p = 0; p < cp; p++) {
            size_t row = source_major ? (size_t)p * entries + e : (size_t)e * cp + p;
            for (int d = 0; d < D; d++)
                if (ho[row * D + d] != o_value(p, e, b->rank, d)) {
                    snprintf(why, len, "O[%d, %d, %d] is 0x%04x, want 0x%04x", e, p, d,
                             ho[row * D + d], o_value(p, e, b->rank, d));
                    return -1;
                }
            for (int l = 0; l < LANES; l++) {
                float want = stat_value(p, e, b->rank, l);
                if (memcmp(&hs[row * LANES + l], &want, 4) != 0) {
                    snprintf(why, len, "stats[%d, %d, %d] is %g, want %g", e, p, l,
                             hs[row * LANES + l], want);
                    return -1;
                }
            }
        }
    return 0;
}

/* The merge's outputs against the double-precision reference (bf16 rounding tolerance). */
static int check_merge(const bufs_t *b, int entries, uint16_t *ho, float *hs, double *ref,
                       char *why, size_t len)
{
    const int D = b->head_dim;
    cudaMemcpy(ho, b->out, (size_t)entries * D * 2, cudaMemcpyDeviceToHost);
    cudaMemcpy(hs, b->out_lse, (size_t)entries * 4, cudaMemcpyDeviceToHost);
    for (int e = 0; e < entries; e++) {
        double lse;
        merge_reference(b->rank, b->cp, e, D, ref, &lse);
        int same_inf = isinf(lse) && isinf(hs[e]) && (lse < 0) == (hs[e] < 0);
        if (!same_inf && !(fabs(hs[e] - lse) <= 1e-4 + 1e-5 * fabs(lse))) {
            snprintf(why, len, "out_lse[%d] is %g, want %g", e, hs[e], lse);
            return -1;
        }
        for (int d = 0; d < D; d++) {
            double got = bf16_to_float(ho[(size_t)e * D + d]);
            if (!(fabs(got - ref[d]) <= 1e-2 + 8e-3 * fabs(ref[d]))) {
                snprintf(why, len, "out[%d, %d] is %g, want %g", e, d, got, ref[d]);
                return -1;
            }
        }
    }
    return 0;
}

/* The NCCL all-to-all of one case: E rows of O and of stats to and from every rank. */
static void nccl_a2a(const nccl_t *nccl, void *nc, const bufs_t *b, int entries, cudaStream_t s)
{
    const size_t o_row = (size_t)entries * b->head_dim * 2, s_row = (size_t)entries * LANES * 4;
    nccl->group_start();
    for (int p = 0; p < b->cp; p++) {
        nccl->send((char *)b->nccl_send_o + p * o_row, o_row, NCCL_UINT8, p, nc, s);
        nccl->recv((char *)b->nccl_recv_o + p * o_row, o_row, NCCL_UINT8, p, nc, s);
        nccl->send((char *)b->nccl_send_s + p * s_row, s_row, NCCL_UINT8, p, nc, s);
        nccl->recv((char *)b->nccl_recv_s + p * s_row, s_row, NCCL_UINT8, p, nc, s);
    }
    nccl->group_end();
}

typedef struct call {
    int kind, entries;
    const bufs_t *b;
    mnnvl_dcp_a2a_t dcp;
    const nccl_t *nccl;
    void *nc;
} call_t;

static int issue(const call_t *c, cudaStream_t s)
{
    const bufs_t *b = c->b;
    switch (c->kind) {
    case T_A2A: return mnnvl_dcp_a2a(c->dcp, b->in_o, b->in_s, c->entries, b->out_o, b->out_s, s);
    case T_REDUCE:
        return mnnvl_dcp_a2a_lse_reduce(c->dcp, b->in_o, b->in_s, c->entries, b->out, b->out_lse,
                                        s);
    default:
        nccl_a2a(c->nccl, c->nc, b, c->entries, s);
        if (c->kind == T_NCCL_MERGE)
            return bench_launch_lse_merge(b->nccl_recv_o, b->nccl_recv_s, c->entries, b->cp,
                                          b->head_dim, LANES, b->out, b->out_lse, s);
        return 0;
    }
}

/* Median microseconds per call of CALLS captured calls, or a negative value on failure. */
static double time_calls(mnnvl_comm_t comm, const call_t *c, cudaStream_t s, cudaEvent_t ev[2])
{
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    int failed = 0;
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    cudaEventRecordWithFlags(ev[0], s, cudaEventRecordExternal);
    for (int i = 0; i < CALLS; i++)
        failed |= issue(c, s) != 0;
    cudaEventRecordWithFlags(ev[1], s, cudaEventRecordExternal);
    if (cudaStreamEndCapture(s, &graph) != cudaSuccess)
        return -1;
    if (failed || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
        cudaGraphDestroy(graph);
        return -1;
    }
    double t[REPS];
    for (int rep = -2; rep < REPS; rep++) {
        mnnvl_comm_device_barrier(comm, s);
        cudaGraphLaunch(exec, s);
        if (cudaStreamSynchronize(s) != cudaSuccess)
            failed = 1;
        float ms = 0;
        if (rep >= 0 && cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess)
            failed = 1;
        if (rep >= 0)
            t[rep] = ms * 1000.0 / CALLS;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    qsort(t, REPS, sizeof(double), cmp_double);
    return failed ? -1 : t[REPS / 2];
}

static int alloc_bufs(bufs_t *b)
{
    const size_t rows = (size_t)MAX_ENTRIES * b->cp;
    b->o_bytes = rows * b->head_dim * 2;
    b->s_bytes = rows * LANES * 4;
    int bad = 0;
    bad |= cudaMalloc(&b->in_o, b->o_bytes) | cudaMalloc(&b->out_o, b->o_bytes);
    bad |= cudaMalloc(&b->nccl_send_o, b->o_bytes) | cudaMalloc(&b->nccl_recv_o, b->o_bytes);
    bad |= cudaMalloc((void **)&b->in_s, b->s_bytes) | cudaMalloc((void **)&b->out_s, b->s_bytes);
    bad |= cudaMalloc((void **)&b->nccl_send_s, b->s_bytes);
    bad |= cudaMalloc((void **)&b->nccl_recv_s, b->s_bytes);
    bad |= cudaMalloc(&b->out, (size_t)MAX_ENTRIES * b->head_dim * 2);
    bad |= cudaMalloc((void **)&b->out_lse, (size_t)MAX_ENTRIES * 4);
    return bad ? -1 : 0;
}

static void free_bufs(bufs_t *b)
{
    void *all[] = {b->in_o,  b->out_o,       b->nccl_send_o, b->nccl_recv_o, b->in_s,
                   b->out_s, b->nccl_send_s, b->nccl_recv_s, b->out,         b->out_lse};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        cudaFree(all[i]);
}

/* Whether every rank passed its check: a rank that found a wrong result stops, and so must
 * its peers, instead of waiting for it in the next collective. */
static int all_ok(mnnvl_comm_t comm, int mine)
{
    int all[BENCH_MAX_RANKS];
    const int size = mnnvl_comm_size(comm);
    if (mnnvl_comm_allgather(comm, &mine, all, sizeof(int)) != MNNVL_SUCCESS)
        return 0;
    for (int r = 0; r < size; r++)
        if (!all[r])
            return 0;
    return 1;
}

/* One head_dim on one rank: every case checked, then timed. */
static int run_dim(mnnvl_comm_t comm, bufs_t *b, int di, const nccl_t *nccl, void *nc,
                   cudaStream_t s, cudaEvent_t ev[2], dcp_result_t *res)
{
    mnnvl_dcp_a2a_params_t p;
    mnnvl_dcp_a2a_params_init(&p);
    p.cp_size = b->cp;
    p.max_entries = MAX_ENTRIES;
    p.head_dim = b->head_dim;
    p.dtype = MNNVL_DTYPE_BF16;
    p.stats_lanes = LANES;
    mnnvl_dcp_a2a_t dcp;
    if (mnnvl_dcp_a2a_create(comm, &p, &dcp) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "dcp_a2a_create: %s", mnnvl_last_error());
        return 1;
    }
    uint16_t *ho = malloc(b->o_bytes);
    float *hs = malloc(b->s_bytes > (size_t)MAX_ENTRIES * 4 ? b->s_bytes : MAX_ENTRIES * 4);
    double *ref = malloc(sizeof(double) * (size_t)b->head_dim);
    int rc = ho && hs && ref ? 0 : 1;
    for (int c = 0; c < NCASES && rc == 0; c++) {
        const int E = entry_cases[c];
        char why[200] = "";
        upload(b, E, ho, hs);
        for (int kind = 0; kind < NTIMES && rc == 0; kind++) {
            if (kind >= T_NCCL_A2A && !nc)
                continue;
            call_t call = {kind, E, b, dcp, nccl, nc};
            if (issue(&call, s) != 0 || cudaStreamSynchronize(s) != cudaSuccess) {
                snprintf(res->why, sizeof(res->why), "D %d entries %d kind %d: %s", b->head_dim, E,
                         kind, mnnvl_last_error());
                rc = 1;
                break;
            }
            int bad = kind == T_A2A
                          ? check_transpose(b, E, b->out_o, b->out_s, 0, ho, hs, why, sizeof(why))
                      : kind == T_NCCL_A2A ? check_transpose(b, E, b->nccl_recv_o, b->nccl_recv_s,
                                                             1, ho, hs, why, sizeof(why))
                                           : check_merge(b, E, ho, hs, ref, why, sizeof(why));
            if (!all_ok(comm, !bad) && !bad) {
                snprintf(res->why, sizeof(res->why), "a peer's check failed (D %d, %d entries)",
                         b->head_dim, E);
                rc = 1;
                break;
            }
            if (bad) {
                snprintf(res->why, sizeof(res->why), "%s, D %d, %d entries: wrong result: %s",
                         kind == T_A2A        ? "dcp_a2a"
                         : kind == T_REDUCE   ? "lse_reduce"
                         : kind == T_NCCL_A2A ? "NCCL a2a"
                                              : "NCCL+merge",
                         b->head_dim, E, why);
                rc = 1;
                break;
            }
            mnnvl_comm_barrier(comm);
            double us = time_calls(comm, &call, s, ev);
            if (us < 0) {
                snprintf(res->why, sizeof(res->why), "timing D %d entries %d kind %d failed: %s",
                         b->head_dim, E, kind, mnnvl_last_error());
                rc = 1;
                break;
            }
            res->us[di][c][kind] = us;
        }
        if (b->rank == 0)
            fprintf(stderr, "\rmnnvl-bench dcp: cp %d, D %d, %d/%d entry counts", b->cp,
                    b->head_dim, c + 1, NCASES);
    }
    if (b->rank == 0)
        fprintf(stderr, "\n");
    free(ho);
    free(hs);
    free(ref);
    mnnvl_dcp_a2a_destroy(dcp);
    return rc;
}

typedef struct dcp_job {
    int gpus, use_nccl;
    dcp_result_t *results; /* one per rank, shared with the parent */
} dcp_job_t;

static int rank_main(int rank, int size, const char *root, const dcp_job_t *job, dcp_result_t *res)
{
    const int device = rank % job->gpus;
    mnnvl_config_t cfg;
    mnnvl_config_create(&cfg);
    mnnvl_config_set(cfg, "root", root);
    mnnvl_config_set(cfg, "root_mode", "external");
    mnnvl_config_set(cfg, "timeout_ms", "60000");
    mnnvl_comm_t comm;
    if (mnnvl_comm_create(cfg, rank, size, device, &comm) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "comm_create: %s", mnnvl_last_error());
        mnnvl_config_destroy(cfg);
        return 1;
    }
    mnnvl_config_destroy(cfg);
    cudaSetDevice(device);
    nccl_t nccl;
    void *nc = NULL;
    char why[256];
    if (job->use_nccl && bench_nccl_load(&nccl, why, sizeof(why)) == 0) {
        nccl_id_t id;
        if (rank == 0)
            nccl.get_unique_id(&id);
        mnnvl_comm_broadcast(comm, &id, sizeof(id), 0);
        if (nccl.init_rank(&nc, size, id, rank) != 0) {
            snprintf(res->why, sizeof(res->why), "ncclCommInitRank failed");
            return 1;
        }
    }
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaEvent_t ev[2];
    cudaEventCreate(&ev[0]);
    cudaEventCreate(&ev[1]);
    int rc = 0;
    for (int di = 0; di < NDIMS && rc == 0; di++) {
        bufs_t b = {.rank = rank, .cp = size, .head_dim = head_dims[di]};
        if (alloc_bufs(&b) != 0) {
            snprintf(res->why, sizeof(res->why), "cudaMalloc failed");
            rc = 1;
        } else {
            rc = run_dim(comm, &b, di, &nccl, nc, s, ev, res);
        }
        free_bufs(&b);
    }
    mnnvl_status_t async = MNNVL_SUCCESS;
    mnnvl_comm_get_async_error(comm, &async);
    if (rc == 0 && async != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "async error: %s", mnnvl_last_error());
        rc = 1;
    }
    if (nc)
        nccl.destroy(nc);
    if (rc == 0)
        mnnvl_comm_barrier(comm);
    mnnvl_comm_destroy(comm);
    return rc;
}

static int dcp_rank(int rank, int size, const char *root, void *arg)
{
    dcp_job_t *job = arg;
    int rc = rank_main(rank, size, root, job, &job->results[rank]);
    if (rc)
        fprintf(stderr, "rank %d of %d: %s\n", rank, size, job->results[rank].why);
    return rc;
}

static const char *const time_names[NTIMES] = {"a2a_us", "lse_reduce_us", "nccl_a2a_us",
                                               "nccl_a2a_merge_us"};

/* The slowest rank's median of each case, printed and written as JSON. */
static void report(const dcp_result_t *res, int n, int gpus, FILE *json, int first,
                   double slowest[NDIMS][NCASES][NTIMES])
{
    for (int di = 0; di < NDIMS; di++) {
        const int D = head_dims[di];
        printf("\nDCP all-to-all, cp %d (%d rank(s) per GPU), D %d, bf16, %d stats lanes; "
               "median us per call, slowest rank\n",
               n, (n + gpus - 1) / gpus, D, LANES);
        printf("%8s %10s | %9s %9s %8s | %10s %11s %8s\n", "entries", "KB/rank", "a2a", "NCCL a2a",
               "speedup", "lse_reduce", "NCCL+merge", "speedup");
        fprintf(json, "%s{\"cp\": %d, \"ranks_per_gpu\": %d, \"head_dim\": %d, ",
                first && di == 0 ? "" : ",\n", n, (n + gpus - 1) / gpus, D);
        if (n > gpus)
            fprintf(json,
                    "\"warning\": \"%d ranks share each GPU: the timings are "
                    "meaningless (kernels of different processes time-slice one GPU)\", ",
                    (n + gpus - 1) / gpus);
        fprintf(json, "\"cases\": [");
        for (int c = 0; c < NCASES; c++) {
            double *t = slowest[di][c];
            for (int k = 0; k < NTIMES; k++) {
                t[k] = 0;
                for (int r = 0; r < n; r++)
                    t[k] = res[r].us[di][c][k] > t[k] ? res[r].us[di][c][k] : t[k];
            }
            /* bytes each rank sends (its own row included): E rows of O and stats per rank */
            double kb = (double)entry_cases[c] * n * ((double)D * 2 + LANES * 4) / 1e3;
            printf("%8d %10.1f | %9.2f %9.2f %7.2fx | %10.2f %11.2f %7.2fx\n", entry_cases[c], kb,
                   t[T_A2A], t[T_NCCL_A2A], t[T_A2A] > 0 ? t[T_NCCL_A2A] / t[T_A2A] : 0,
                   t[T_REDUCE], t[T_NCCL_MERGE],
                   t[T_REDUCE] > 0 ? t[T_NCCL_MERGE] / t[T_REDUCE] : 0);
            fprintf(json, "%s{\"entries\": %d, \"bytes_per_rank\": %.0f", c ? ", " : "",
                    entry_cases[c], kb * 1e3);
            for (int k = 0; k < NTIMES; k++)
                fprintf(json, ", \"%s\": %.3f", time_names[k], t[k]);
            fprintf(json, "}");
        }
        fprintf(json, "]}");
    }
}

int bench_dcp(int argc, char **argv)
{
    const char *json_path = "dcp.json", *svg_path = "dcp.svg";
    int worlds[3], nworlds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--world") == 0 && i + 1 < argc && nworlds < 3)
            worlds[nworlds++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
            svg_path = argv[++i];
        else {
            printf("usage: mnnvl-bench dcp [--world CP]... [--json FILE] [--svg FILE]\n"
                   "  CP 2 .. 64, up to three; default: every visible GPU (at least 2);\n"
                   "  D 128 and 512, entries 1 .. %d; dcp.json, dcp.svg\n",
                   MAX_ENTRIES);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    char why[256] = "";
    int gpus = tool_gpu_count(why, sizeof(why));
    if (gpus < 1) {
        printf("mnnvl-bench dcp: skipped: needs a GPU, none visible (%s); nothing was checked "
               "or timed\n",
               why);
        return 0;
    }
    if (nworlds == 0)
        worlds[nworlds++] = gpus < 2 ? 2 : gpus;
    nccl_t probe;
    int use_nccl = bench_nccl_load(&probe, why, sizeof(why)) == 0;
    if (!use_nccl)
        printf("NCCL: not loaded (%s); checking and timing libmnnvl alone\n", why);
    FILE *json = fopen(json_path, "w");
    if (!json)
        return perror(json_path), 1;
    fprintf(json,
            "{\"benchmark\": \"dcp\", \"dtype\": \"bf16\", \"stats_lanes\": %d, "
            "\"calls_per_graph\": %d, \"replays\": %d, \"fused_baseline\": "
            "\"NCCL all-to-all + merge kernel\", \"results\": [",
            LANES, CALLS, REPS);
    double x[NCASES], series[12][NCASES];
    const char *names[12];
    char labels[12][48];
    int nseries = 0, failed = 0, wrote = 0;
    for (int w = 0; w < nworlds; w++) {
        const int n = worlds[w];
        if (n < 2 || n > MNNVL_DCP_MAX_RANKS || n > BENCH_MAX_RANKS) {
            printf("mnnvl-bench dcp: skipping cp %d (2 .. %d)\n", n, MNNVL_DCP_MAX_RANKS);
            continue;
        }
        if (n > gpus)
            fprintf(stderr,
                    "\n*** WARNING: cp %d on %d GPU(s): %d ranks share each GPU. The results are "
                    "checked, but the TIMINGS ARE MEANINGLESS (kernels of different processes "
                    "time-slice one GPU). ***\n\n",
                    n, gpus, (n + gpus - 1) / gpus);
        /* NCCL refuses a communicator whose ranks share a GPU (ncclCommInitRank fails, seen
         * on one H200): libmnnvl is then checked and timed alone. */
        const int nccl_here = use_nccl && n <= gpus;
        if (use_nccl && !nccl_here)
            printf("NCCL: not run at cp %d (it refuses ranks that share a GPU)\n", n);
        dcp_job_t job = {gpus, nccl_here, bench_shared_alloc(sizeof(dcp_result_t) * (size_t)n)};
        dcp_result_t *res = job.results;
        if (!res || bench_run_ranks(n, dcp_rank, &job) != 0) {
            fprintf(stderr, "mnnvl-bench dcp: cp %d failed\n", n);
            failed = 1;
            bench_shared_free(res, sizeof(dcp_result_t) * (size_t)n);
            continue;
        }
        double slowest[NDIMS][NCASES][NTIMES];
        report(res, n, gpus, json, !wrote, slowest);
        wrote = 1;
        /* The plot: D 128, the common head dim, every timing of this cp. */
        for (int k = 0; k < NTIMES && nseries < 12; k++) {
            if (slowest[0][0][k] <= 0)
                continue;
            for (int c = 0; c < NCASES; c++) {
                x[c] = entry_cases[c];
                series[nseries][c] = slowest[0][c][k];
            }
            static const char *const what[NTIMES] = {"libmnnvl a2a", "libmnnvl lse_reduce",
                                                     "NCCL a2a", "NCCL a2a + merge"};
            snprintf(labels[nseries], sizeof(labels[nseries]), "%s, cp %d", what[k], n);
            names[nseries] = labels[nseries];
            nseries++;
        }
        bench_shared_free(res, sizeof(dcp_result_t) * (size_t)n);
    }
    fprintf(json, "]}\n");
    fclose(json);
    const double *ys[12];
    for (int i = 0; i < nseries; i++)
        ys[i] = series[i];
    if (nseries &&
        bench_svg_write(svg_path, "DCP all-to-all, D 128, bf16 (CUDA graphs)", "entries per rank",
                        "microseconds per call", nseries, names, x, ys, NCASES) == 0)
        printf("wrote %s and %s\n", json_path, svg_path);
    return failed;
}

#else

int bench_dcp(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("mnnvl-bench dcp: skipped: libmnnvl was built without CUDA; nothing was checked or "
           "timed\n");
    return 0;
}

#endif
