/* DCP all-to-all across real ranks, one process each, through libmnnvl's own symmetric
 * memory. Every rank can compute every rank's inputs (hashes of the table seed, the rank,
 * the entry, the destination and the index), so each checks the transpose bit for bit and
 * the LSE merge against a float64 reference computed on the host. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_host.h"
#include "gpu_ranks.h"
#include "hash.h"

MT_SUITE(dcp, 300)

typedef struct shape {
    mnnvl_dtype_t dtype;
    int d;  /* head_dim */
    int s;  /* stats_lanes */
    int cp; /* ranks */
    int max_entries;
    mnnvl_lse_base_t base;
} shape_t;

static mnnvl_dcp_a2a_params_t params_of(const shape_t *sh)
{
    mnnvl_dcp_a2a_params_t p;
    mnnvl_dcp_a2a_params_init(&p);
    p.cp_size = sh->cp;
    p.max_entries = sh->max_entries;
    p.head_dim = sh->d;
    p.dtype = sh->dtype;
    p.stats_lanes = sh->s;
    p.lse_base = sh->base;
    return p;
}

static double decode(mnnvl_dtype_t t, uint16_t b)
{
    if (t == MNNVL_DTYPE_BF16)
        return bf16_to_f32(b);
    int e = b >> 10 & 31, m = b & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return b >> 15 ? -v : v;
}

/* Stats lane s of row [e, r] on rank p. Lane 0 is the LSE: in [-10, 10), -inf for about one
 * source in five (no KV there), and -inf from every source for the entries e % 11 == 3. */
static float stat_of(uint64_t seed, int p, int e, int r, int s)
{
    uint64_t h = mix(seed * 0x51ed27ull ^ (uint64_t)p << 56 ^ (uint64_t)e << 24 ^
                     (uint64_t)r << 16 ^ (uint64_t)s);
    if (s == 0 && (e % 11 == 3 || h % 5 == 0))
        return -INFINITY;
    return (float)((double)(h >> 11) * 0x1p-53 * 20.0 - 10.0);
}

/* Element i of partial_o row [e, r] on rank p: a normal number of magnitude [0.25, 4), or
 * NaN where the source is empty (LSE -inf), which the merge must never let through. */
static uint16_t o_of(const shape_t *sh, uint64_t seed, int p, int e, int r, int i)
{
    int bf16 = sh->dtype == MNNVL_DTYPE_BF16;
    if (stat_of(seed, p, e, r, 0) == -INFINITY)
        return bf16 ? 0x7fc0 : 0x7e00;
    uint64_t h = mix(seed * 0x9e3779b1ull ^ (uint64_t)p << 56 ^ (uint64_t)e << 32 ^
                     (uint64_t)r << 24 ^ (uint64_t)i);
    uint16_t sign = (uint16_t)((h & 1) << 15);
    if (bf16)
        return sign | (uint16_t)((125 + (h >> 1) % 4) << 7) | (uint16_t)(h >> 8 & 0x7f);
    return sign | (uint16_t)((13 + (h >> 1) % 4) << 10) | (uint16_t)(h >> 8 & 0x3ff);
}

/* Device buffers of one rank for up to max_entries entries. */
typedef struct bufs {
    uint16_t *in_o;
    float *in_stats;
    uint16_t *out_o;
    float *out_stats;
    uint16_t *out; /* merged [entries, d] */
    float *out_lse;
} bufs_t;

static size_t o_elems(const shape_t *sh, int n)
{
    return (size_t)n * sh->cp * sh->d;
}

static size_t stat_elems(const shape_t *sh, int n)
{
    return (size_t)n * sh->cp * sh->s;
}

static int bufs_alloc(const shape_t *sh, int rank, bufs_t *b)
{
    int n = sh->max_entries;
    CUDA_OK(rank, cudaMalloc((void **)&b->in_o, o_elems(sh, n) * 2));
    CUDA_OK(rank, cudaMalloc((void **)&b->in_stats, stat_elems(sh, n) * 4));
    CUDA_OK(rank, cudaMalloc((void **)&b->out_o, o_elems(sh, n) * 2));
    CUDA_OK(rank, cudaMalloc((void **)&b->out_stats, stat_elems(sh, n) * 4));
    CUDA_OK(rank, cudaMalloc((void **)&b->out, (size_t)n * sh->d * 2));
    CUDA_OK(rank, cudaMalloc((void **)&b->out_lse, (size_t)n * 4));
    return 0;
}

static void bufs_free(bufs_t *b)
{
    cudaFree(b->in_o), cudaFree(b->in_stats), cudaFree(b->out_o);
    cudaFree(b->out_stats), cudaFree(b->out), cudaFree(b->out_lse);
}

/* Every output byte 0xff: rows a call must not touch keep it. */
static int poison_outputs(const shape_t *sh, int rank, bufs_t *b)
{
    int n = sh->max_entries;
    CUDA_OK(rank, cudaMemset(b->out_o, 0xff, o_elems(sh, n) * 2));
    CUDA_OK(rank, cudaMemset(b->out_stats, 0xff, stat_elems(sh, n) * 4));
    CUDA_OK(rank, cudaMemset(b->out, 0xff, (size_t)n * sh->d * 2));
    CUDA_OK(rank, cudaMemset(b->out_lse, 0xff, (size_t)n * 4));
    return 0;
}

/* One call of n entries on poisoned outputs, the transpose or (with `merge`) the LSE merge,
 * and the wait for it; 1 when any of it failed. */
static int poisoned_call(mnnvl_dcp_a2a_t d, const shape_t *sh, int rank, bufs_t *b, int merge,
                         int n, cudaStream_t s, const char *ctx)
{
    if (poison_outputs(sh, rank, b))
        return 1;
    CUDA_OK(rank, cudaDeviceSynchronize());
    mnnvl_status_t st =
        merge ? mnnvl_dcp_a2a_lse_reduce(d, b->in_o, b->in_stats, n, b->out, b->out_lse, s)
              : mnnvl_dcp_a2a(d, b->in_o, b->in_stats, n, b->out_o, b->out_stats, s);
    if (mt_fail(st, rank, ctx))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    return 0;
}

/* This rank's inputs of table `seed` for all max_entries entries into in_o / in_stats. */
static int fill_inputs(const shape_t *sh, uint64_t seed, int rank, uint16_t *in_o, float *in_stats)
{
    int n = sh->max_entries;
    uint16_t *o = malloc(o_elems(sh, n) * 2);
    float *st = malloc(stat_elems(sh, n) * 4);
    for (int e = 0; e < n; e++)
        for (int r = 0; r < sh->cp; r++) {
            for (int i = 0; i < sh->d; i++)
                o[((size_t)e * sh->cp + r) * sh->d + i] = o_of(sh, seed, rank, e, r, i);
            for (int s = 0; s < sh->s; s++)
                st[((size_t)e * sh->cp + r) * sh->s + s] = stat_of(seed, rank, e, r, s);
        }
    CUDA_OK(rank, cudaMemcpy(in_o, o, o_elems(sh, n) * 2, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemcpy(in_stats, st, stat_elems(sh, n) * 4, cudaMemcpyHostToDevice));
    free(o), free(st);
    return 0;
}

/* A handle of shape sh on comm and buffers for it, in_o and in_stats holding this rank's
 * inputs of table `seed`; 1 when any of it failed. */
static int a2a_open(mnnvl_comm_t comm, int rank, const shape_t *sh, uint64_t seed,
                    mnnvl_dcp_a2a_t *d, bufs_t *b)
{
    mnnvl_dcp_a2a_params_t p = params_of(sh);
    return mt_fail(mnnvl_dcp_a2a_create(comm, &p, d), rank, "dcp_a2a_create") ||
           bufs_alloc(sh, rank, b) || fill_inputs(sh, seed, rank, b->in_o, b->in_stats);
}

/* Frees the buffers, then the handle. */
static void a2a_close(mnnvl_dcp_a2a_t d, bufs_t *b)
{
    bufs_free(b);
    mnnvl_dcp_a2a_destroy(d);
}

/* The transpose of n entries of table `seed`, bit for bit; with `tail`, rows from n up to
 * max_entries must still hold the 0xff poison (bytes are moved exactly). */
static int check_transpose(const shape_t *sh, uint64_t seed, int rank, int n, int tail,
                           const bufs_t *b, const char *ctx)
{
    int rows = tail ? sh->max_entries : n;
    uint16_t *o = malloc(o_elems(sh, rows) * 2 + 2);
    uint32_t *st = malloc(stat_elems(sh, rows) * 4 + 4);
    CUDA_OK(rank, cudaMemcpy(o, b->out_o, o_elems(sh, rows) * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(st, b->out_stats, stat_elems(sh, rows) * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int e = 0; e < rows && !bad; e++)
        for (int p = 0; p < sh->cp && !bad; p++) {
            size_t row = (size_t)e * sh->cp + p;
            for (int i = 0; i < sh->d && !bad; i++) {
                uint16_t want = e < n ? o_of(sh, seed, p, e, rank, i) : 0xffff;
                if (o[row * sh->d + i] != want)
                    bad = fprintf(stderr, "rank %d %s: out_o[%d][%d][%d] = %#x, want %#x (n %d)\n",
                                  rank, ctx, e, p, i, o[row * sh->d + i], want, n);
            }
            for (int s = 0; s < sh->s && !bad; s++) {
                float f = stat_of(seed, p, e, rank, s);
                uint32_t want = 0xffffffffu;
                if (e < n)
                    memcpy(&want, &f, 4);
                if (st[row * sh->s + s] != want)
                    bad = fprintf(stderr, "rank %d %s: out_stats[%d][%d][%d] = %#x, want %#x\n",
                                  rank, ctx, e, p, s, st[row * sh->s + s], want);
            }
        }
    free(o), free(st);
    return bad != 0;
}

/* The merge of n entries of table `seed` against float64 (within the 16-bit rounding of the
 * output), zeros and -inf exactly for entries without a source; *hash gets the bits. */
static int check_merge(const shape_t *sh, uint64_t seed, int rank, int n, const bufs_t *b,
                       const char *ctx, uint64_t *hash)
{
    uint16_t *o = malloc((size_t)(n ? n : 1) * sh->d * 2);
    float *lse = malloc((size_t)(n ? n : 1) * 4);
    CUDA_OK(rank, cudaMemcpy(o, b->out, (size_t)n * sh->d * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(lse, b->out_lse, (size_t)n * 4, cudaMemcpyDeviceToHost));
    const double eps = sh->dtype == MNNVL_DTYPE_BF16 ? 0x1p-8 : 0x1p-11;
    const int base2 = sh->base == MNNVL_LSE_BASE_2;
    int bad = 0;
    uint64_t h = MNNVL_HASH_SEED;
    for (int e = 0; e < n && !bad; e++) {
        double top = -INFINITY, w[MNNVL_DCP_MAX_RANKS], total = 0;
        for (int p = 0; p < sh->cp; p++)
            top = fmax(top, stat_of(seed, p, e, rank, 0));
        for (int p = 0; p < sh->cp; p++) {
            double l = stat_of(seed, p, e, rank, 0);
            w[p] = l == -INFINITY ? 0 : base2 ? exp2(l - top) : exp(l - top);
            total += w[p];
        }
        if (top == -INFINITY) {
            for (int i = 0; i < sh->d && !bad; i++)
                if (o[(size_t)e * sh->d + i] != 0)
                    bad = fprintf(stderr, "rank %d %s: empty entry %d: out[%d] = %#x, want 0\n",
                                  rank, ctx, e, i, o[(size_t)e * sh->d + i]);
            if (!(isinf(lse[e]) && lse[e] < 0))
                bad = fprintf(stderr, "rank %d %s: empty entry %d: lse %g, want -inf\n", rank, ctx,
                              e, lse[e]);
            continue;
        }
        double want_lse = top + (base2 ? log2(total) : log(total));
        if (!(fabs(lse[e] - want_lse) <= 1e-5 * (1 + fabs(want_lse))))
            bad = fprintf(stderr, "rank %d %s: lse[%d] = %.9g, float64 %.9g\n", rank, ctx, e,
                          lse[e], want_lse);
        for (int i = 0; i < sh->d && !bad; i++) {
            double ref = 0;
            for (int p = 0; p < sh->cp; p++)
                if (w[p] != 0)
                    ref += w[p] * decode(sh->dtype, o_of(sh, seed, p, e, rank, i));
            ref /= total;
            double got = decode(sh->dtype, o[(size_t)e * sh->d + i]);
            if (!(fabs(got - ref) <= eps * fabs(ref) + 1e-5))
                bad = fprintf(stderr, "rank %d %s: out[%d][%d] = %.9g, float64 %.9g\n", rank, ctx,
                              e, i, got, ref);
        }
    }
    for (size_t i = 0; i < (size_t)n * sh->d; i++)
        h = mnnvl_hash_word(h, o[i]);
    for (int e = 0; e < n; e++) {
        uint32_t u;
        memcpy(&u, &lse[e], 4);
        h = mnnvl_hash_word(h, u);
    }
    *hash = h;
    free(o), free(lse);
    return bad != 0;
}

/* ---- the tests ---------------------------------------------------------------------- */

/* The transpose for bf16 and fp16, D 64/128/512, S 2/4, entries 0, 1, 16, 128 and the
 * handle's maximum (200); each call on poisoned outputs, so untouched rows are checked too. */
static int transpose_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size,
                          const gpu_job_t *job)
{
    const mnnvl_dtype_t types[] = {MNNVL_DTYPE_BF16, MNNVL_DTYPE_FP16};
    const int dims[] = {64, 128, 512}, lanes[] = {2, 4}, counts[] = {0, 1, 16, 128, 200};
    for (int t = 0; t < 2; t++)
        for (int di = 0; di < 3; di++)
            for (int li = 0; li < 2; li++) {
                shape_t sh = {types[t], dims[di], lanes[li], size, 200, MNNVL_LSE_BASE_E};
                uint64_t seed = 1000 + (uint64_t)(t * 100 + di * 10 + li);
                mnnvl_dcp_a2a_t d;
                bufs_t b;
                if (a2a_open(comm, rank, &sh, seed, &d, &b))
                    return 1;
                for (int ci = 0; ci < 5; ci++) {
                    char ctx[96];
                    snprintf(ctx, sizeof(ctx), "%s D %d S %d entries %d", t ? "fp16" : "bf16", sh.d,
                             sh.s, counts[ci]);
                    if (poisoned_call(d, &sh, rank, &b, 0, counts[ci], s, ctx) ||
                        check_transpose(&sh, seed, rank, counts[ci], 1, &b, ctx))
                        return 1;
                }
                a2a_close(d, &b);
            }
    return gpu_comm_stream_end(comm, rank, s);
}

GPU_STREAM_TESTS_2_AND_4(dcp, transpose_is_bit_exact, transpose_body, 30000)

/* The merge against float64, both dtypes and LSE bases, D 64 and 512, including -inf sources
 * (whose O is NaN) and entries without any source; two runs give identical bits; creating
 * the same parameters again returns the cached handle. */
static int merge_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    const shape_t shapes[] = {
        {MNNVL_DTYPE_BF16, 64, 2, size, 150, MNNVL_LSE_BASE_E},
        {MNNVL_DTYPE_FP16, 512, 4, size, 150, MNNVL_LSE_BASE_E},
        {MNNVL_DTYPE_BF16, 512, 1, size, 150, MNNVL_LSE_BASE_2},
        {MNNVL_DTYPE_FP16, 128, 2, size, 150, MNNVL_LSE_BASE_2},
    };
    const int counts[] = {0, 1, 16, 128, 150};
    for (int k = 0; k < 4; k++) {
        const shape_t *sh = &shapes[k];
        mnnvl_dcp_a2a_params_t p = params_of(sh);
        mnnvl_dcp_a2a_t d, again;
        bufs_t b;
        if (mt_fail(mnnvl_dcp_a2a_create(comm, &p, &d), rank, "dcp_a2a_create") ||
            mt_fail(mnnvl_dcp_a2a_create(comm, &p, &again), rank, "dcp_a2a_create again"))
            return 1;
        if (again != d)
            return fprintf(stderr, "rank %d: equal parameters gave a new handle\n", rank), 1;
        mnnvl_dcp_a2a_destroy(again);
        if (bufs_alloc(sh, rank, &b) || fill_inputs(sh, 77 + (uint64_t)k, rank, b.in_o, b.in_stats))
            return 1;
        for (int ci = 0; ci < 5; ci++) {
            char ctx[96];
            snprintf(ctx, sizeof(ctx), "merge shape %d entries %d", k, counts[ci]);
            uint64_t first = 0, second = 1;
            for (int run = 0; run < 2; run++) {
                if (poisoned_call(d, sh, rank, &b, 1, counts[ci], s, ctx) ||
                    check_merge(sh, 77 + (uint64_t)k, rank, counts[ci], &b, ctx,
                                run ? &second : &first))
                    return 1;
            }
            if (first != second)
                return fprintf(stderr, "rank %d %s: two runs differ\n", rank, ctx), 1;
        }
        /* out_lse is optional. */
        if (mt_fail(mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 16, b.out, NULL, s), rank,
                    "lse_reduce without out_lse"))
            return 1;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        a2a_close(d, &b);
    }
    return gpu_comm_stream_end(comm, rank, s);
}

GPU_STREAM_TESTS_2_AND_4(dcp, lse_reduce_matches_float64, merge_body, 30000)

/* 1000 calls in a row, transposes and merges alternating, entry counts and input tables
 * changing every call (the same on every rank), checked every 100 calls; then one transpose
 * and one merge captured in a graph, replayed 100 times with new inputs copied in between
 * stretches of 25 replays. */
#define TABLES 4
static int rounds_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    shape_t sh = {MNNVL_DTYPE_BF16, 128, 2, size, 64, MNNVL_LSE_BASE_E};
    mnnvl_dcp_a2a_params_t p = params_of(&sh);
    mnnvl_dcp_a2a_t d;
    if (mt_fail(mnnvl_dcp_a2a_create(comm, &p, &d), rank, "dcp_a2a_create"))
        return 1;
    bufs_t b, table[TABLES];
    if (bufs_alloc(&sh, rank, &b))
        return 1;
    for (int i = 0; i < TABLES; i++)
        if (bufs_alloc(&sh, rank, &table[i]) ||
            fill_inputs(&sh, 500 + (uint64_t)i, rank, table[i].in_o, table[i].in_stats))
            return 1;
    CUDA_OK(rank, cudaDeviceSynchronize());
    for (int call = 0; call < 1000; call++) {
        const int t = call % TABLES, n = (int)(mix(4242 + (uint64_t)call) % 65);
        const bufs_t *in = &table[t];
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "call %d (table %d, %d entries)", call, t, n);
        mnnvl_status_t st =
            call % 2 ? mnnvl_dcp_a2a_lse_reduce(d, in->in_o, in->in_stats, n, b.out, b.out_lse, s)
                     : mnnvl_dcp_a2a(d, in->in_o, in->in_stats, n, b.out_o, b.out_stats, s);
        if (mt_fail(st, rank, ctx))
            return 1;
        if (call % 100 < 98)
            continue;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        uint64_t hash;
        if (call % 2 ? check_merge(&sh, 500 + (uint64_t)t, rank, n, &b, ctx, &hash)
                     : check_transpose(&sh, 500 + (uint64_t)t, rank, n, 0, &b, ctx))
            return 1;
    }
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    const int n = 48;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    if (mt_fail(mnnvl_dcp_a2a(d, b.in_o, b.in_stats, n, b.out_o, b.out_stats, s), rank,
                "captured dcp_a2a") ||
        mt_fail(mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, n, b.out, b.out_lse, s), rank,
                "captured lse_reduce"))
        return 1;
    if (gpu_capture_end(rank, s, &graph, &exec))
        return 1;
    for (int replay = 0; replay < 100; replay++) {
        const int t = replay / 25;
        if (replay % 25 == 0) {
            CUDA_OK(rank, cudaStreamSynchronize(s));
            CUDA_OK(rank, cudaMemcpy(b.in_o, table[t].in_o, o_elems(&sh, sh.max_entries) * 2,
                                     cudaMemcpyDeviceToDevice));
            CUDA_OK(rank,
                    cudaMemcpy(b.in_stats, table[t].in_stats, stat_elems(&sh, sh.max_entries) * 4,
                               cudaMemcpyDeviceToDevice));
            CUDA_OK(rank, cudaDeviceSynchronize());
        }
        CUDA_OK(rank, cudaGraphLaunch(exec, s));
        if (replay % 25 != 24)
            continue;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        char ctx[64];
        uint64_t hash;
        snprintf(ctx, sizeof(ctx), "replay %d (table %d)", replay, t);
        if (check_transpose(&sh, 500 + (uint64_t)t, rank, n, 0, &b, ctx) ||
            check_merge(&sh, 500 + (uint64_t)t, rank, n, &b, ctx, &hash))
            return 1;
    }
    int bad = gpu_no_async_error(comm, rank);
    gpu_graph_destroy(graph, exec);
    for (int i = 0; i < TABLES; i++)
        bufs_free(&table[i]);
    a2a_close(d, &b);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(dcp, thousand_calls_and_a_graph, rounds_body, 30000)

/* cp_size 1: both calls are the identity (the merge of one source returns it unchanged, and
 * an entry whose only source is empty gives zeros and -inf). */
static int identity_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm)
        return 1;
    shape_t sh = {MNNVL_DTYPE_FP16, 128, 4, 1, 40, MNNVL_LSE_BASE_E};
    mnnvl_dcp_a2a_t d;
    bufs_t b;
    if (a2a_open(comm, rank, &sh, 9, &d, &b) || poison_outputs(&sh, rank, &b))
        return 1;
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 33, b.out_o, b.out_stats, NULL), rank,
                "dcp_a2a") ||
        mt_fail(mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 33, b.out, b.out_lse, NULL), rank,
                "lse_reduce"))
        return 1;
    CUDA_OK(rank, cudaDeviceSynchronize());
    uint64_t hash;
    if (check_transpose(&sh, 9, rank, 33, 1, &b, "cp 1") ||
        check_merge(&sh, 9, rank, 33, &b, "cp 1", &hash))
        return 1;
    /* Identity to the bit: the input rows themselves. */
    size_t bytes = o_elems(&sh, 33) * 2;
    uint16_t *in = malloc(bytes), *out = malloc(bytes), *merged = malloc(bytes);
    float *lse_in = malloc(stat_elems(&sh, 33) * 4), *lse_out = malloc(33 * 4);
    CUDA_OK(rank, cudaMemcpy(in, b.in_o, bytes, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(out, b.out_o, bytes, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(merged, b.out, bytes, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(lse_in, b.in_stats, stat_elems(&sh, 33) * 4, cudaMemcpyDeviceToHost));
    CUDA_OK(rank, cudaMemcpy(lse_out, b.out_lse, 33 * 4, cudaMemcpyDeviceToHost));
    if (memcmp(in, out, bytes) != 0)
        return fprintf(stderr, "cp 1: the transpose is not the identity\n"), 1;
    for (int e = 0; e < 33; e++) {
        float l = lse_in[e * sh.s];
        int empty = l == -INFINITY;
        for (int i = 0; i < sh.d; i++)
            if (merged[e * sh.d + i] != (empty ? 0 : in[e * sh.d + i]))
                return fprintf(stderr, "cp 1: merged[%d][%d] = %#x, input %#x\n", e, i,
                               merged[e * sh.d + i], in[e * sh.d + i]),
                       1;
        if (memcmp(&lse_out[e], &l, 4) != 0)
            return fprintf(stderr, "cp 1: lse[%d] = %g, input %g\n", e, lse_out[e], l), 1;
    }
    free(in), free(out), free(merged), free(lse_in), free(lse_out);
    int bad = gpu_no_async_error(comm, rank);
    a2a_close(d, &b);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_TEST(dcp, cp_1_is_the_identity, 1, identity_body, 30000)

/* Expects `st` to be `want` with `needle` in the sentence. */
static int expect(int rank, mnnvl_status_t st, mnnvl_status_t want, const char *needle,
                  const char *what)
{
    if (st == want && (!needle || strstr(mnnvl_last_error(), needle)))
        return 0;
    fprintf(stderr, "rank %d: %s gave %s (%s), want %s with '%s'\n", rank, what,
            mnnvl_status_string(st), mnnvl_last_error(), mnnvl_status_string(want),
            needle ? needle : "");
    return 1;
}

/* Every host-side refusal, each with its sentence: create during a capture (on every rank),
 * cp_size differing from the communicator (on every rank, also when only rank 0 is wrong),
 * parameters differing between ranks (MISMATCH on every rank), D
 * and S the kernel cannot take, entries above max_entries or negative, NULL, misaligned and
 * overlapping buffers. None launches anything, so the ranks stay in step: a call with 0
 * entries and NULL buffers, then a real one, still work. */
static int errors_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm)
        return 1;
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreate(&s)); /* blocking: its capture is visible to create */
    shape_t sh = {MNNVL_DTYPE_BF16, 128, 2, size, 32, MNNVL_LSE_BASE_E};
    mnnvl_dcp_a2a_params_t p = params_of(&sh), q;
    mnnvl_dcp_a2a_t d = NULL;
    int bad = 0;
    if (rank == 0)
        CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    mnnvl_status_t st = mnnvl_dcp_a2a_create(comm, &p, &d);
    if (rank == 0) {
        cudaGraph_t graph = NULL;
        cudaStreamEndCapture(s, &graph); /* fails: create's capture query invalidated it */
        if (graph)
            cudaGraphDestroy(graph);
        (void)cudaGetLastError(); /* so that no later launch reports this error */
    }
    bad |= expect(rank, st, MNNVL_ERR_GRAPH_CAPTURE, NULL, "create during rank 0's capture");
    q = p, q.cp_size = size + 1;
    bad |= expect(rank, mnnvl_dcp_a2a_create(comm, &q, &d), MNNVL_ERR_INVALID_ARGUMENT,
                  "MNNVL_GROUP_CP", "cp_size = size + 1");
    q = p, q.cp_size = rank == 0 ? size + 1 : size;
    bad |= expect(rank, mnnvl_dcp_a2a_create(comm, &q, &d), MNNVL_ERR_INVALID_ARGUMENT,
                  "mnnvl_comm_split", "cp_size wrong on rank 0 only");
    /* Same workspace size (2 or 4 lanes both pad to 16 bytes), different rows. */
    q = p, q.stats_lanes = rank == 1 ? 4 : 2;
    bad |= expect(rank, mnnvl_dcp_a2a_create(comm, &q, &d), MNNVL_ERR_MISMATCH,
                  "rank 1's parameters", "stats_lanes 4 on rank 1 only");
    q = p, q.head_dim = 100;
    bad |= expect(rank, mnnvl_dcp_a2a_create(comm, &q, &d), MNNVL_ERR_INVALID_ARGUMENT,
                  "head_dim 100", "head_dim 100");
    q = p, q.stats_lanes = 9;
    bad |= expect(rank, mnnvl_dcp_a2a_create(comm, &q, &d), MNNVL_ERR_INVALID_ARGUMENT,
                  "stats_lanes 9", "stats_lanes 9");
    if (bad || d != NULL)
        return 1;
    bufs_t b;
    if (a2a_open(comm, rank, &sh, 3, &d, &b))
        return 1;
    const char *c_o = (const char *)b.in_o, *c_st = (const char *)b.in_stats;
    bad |= expect(rank, mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 33, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "entries 33 exceed the max_entries 32",
                  "entries > max_entries");
    bad |= expect(rank, mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 4096, b.out, b.out_lse, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "prefill", "a prefill batch on lse_reduce");
    bad |= expect(rank, mnnvl_dcp_a2a(d, b.in_o, b.in_stats, -1, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "entries -1 is negative", "entries -1");
    bad |= expect(rank, mnnvl_dcp_a2a(d, NULL, b.in_stats, 4, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "partial_o is NULL with 4 entries", "NULL partial_o");
    bad |= expect(rank, mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 4, b.out_o, NULL, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "out_stats is NULL", "NULL out_stats");
    bad |= expect(rank, mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 4, NULL, b.out_lse, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "out is NULL", "NULL out");
    bad |= expect(rank, mnnvl_dcp_a2a(d, c_o + 2, b.in_stats, 4, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "not 16-byte aligned", "partial_o + 2");
    bad |= expect(rank, mnnvl_dcp_a2a(d, b.in_o, c_st + 1, 4, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "not 4-byte aligned", "stats + 1");
    bad |=
        expect(rank, mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 4, (char *)b.out_o + 8, b.out_stats, s),
               MNNVL_ERR_INVALID_ARGUMENT, "out_o", "out_o + 8");
    bad |= expect(
        rank, mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 4, b.out, (char *)b.out_lse + 2, s),
        MNNVL_ERR_INVALID_ARGUMENT, "out_lse", "out_lse + 2");
    bad |= expect(rank, mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 4, b.in_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "overlaps", "out_o == partial_o");
    bad |= expect(rank, mnnvl_dcp_a2a(NULL, b.in_o, b.in_stats, 4, b.out_o, b.out_stats, s),
                  MNNVL_ERR_INVALID_ARGUMENT, "dcp is NULL", "NULL handle");
    if (bad)
        return 1;
    /* Still in step: 0 entries without buffers, then real calls. */
    if (mt_fail(mnnvl_dcp_a2a(d, NULL, NULL, 0, NULL, NULL, s), rank, "0 entries") ||
        mt_fail(mnnvl_dcp_a2a_lse_reduce(d, NULL, NULL, 0, NULL, NULL, s), rank, "0 entries") ||
        poison_outputs(&sh, rank, &b) ||
        mt_fail(mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 5, b.out_o, b.out_stats, s), rank,
                "after the refusals"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (check_transpose(&sh, 3, rank, 5, 1, &b, "after the refusals"))
        return 1;
    bad = gpu_no_async_error(comm, rank);
    a2a_close(d, &b);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_TESTS_2_AND_4(dcp, every_validation_error, errors_body, 30000)

/* Rank 1 passes one entry more than the others: every rank's kernel records MISMATCH
 * (nothing hangs), and later calls return ABORTED. */
static int mismatch_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size,
                         const gpu_job_t *job)
{
    shape_t sh = {MNNVL_DTYPE_BF16, 64, 2, size, 32, MNNVL_LSE_BASE_E};
    mnnvl_dcp_a2a_t d;
    bufs_t b;
    if (a2a_open(comm, rank, &sh, 5, &d, &b))
        return 1;
    if (mt_fail(mnnvl_dcp_a2a(d, b.in_o, b.in_stats, rank == 1 ? 17 : 16, b.out_o, b.out_stats, s),
                rank, "dcp_a2a"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    mnnvl_status_t async = gpu_async_error(comm);
    if (async != MNNVL_ERR_MISMATCH || !strstr(mnnvl_last_error(), "DCP all-to-all")) {
        fprintf(stderr, "rank %d: entry mismatch gave async %s (%s), want MISMATCH\n", rank,
                mnnvl_status_string(async), mnnvl_last_error());
        return 1;
    }
    if (mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 16, b.out_o, b.out_stats, s) != MNNVL_ERR_ABORTED)
        return fprintf(stderr, "rank %d: a call after MISMATCH was not ABORTED\n", rank), 1;
    a2a_close(d, &b);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_STREAM_TESTS_2_AND_4(dcp, entry_count_mismatch_on_every_rank, mismatch_body, 30000)

/* The last rank stops calling: the others' kernels end with TIMEOUT naming it, no trap, the
 * process stays usable (cudaMemcpy works) and later calls return ABORTED. */
static int stop_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    shape_t sh = {MNNVL_DTYPE_BF16, 128, 2, size, 16, MNNVL_LSE_BASE_E};
    mnnvl_dcp_a2a_t d;
    bufs_t b;
    if (a2a_open(comm, rank, &sh, 8, &d, &b))
        return 1;
    if (mt_fail(mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 16, b.out, b.out_lse, s), rank,
                "first lse_reduce"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (gpu_last_rank_stops(comm, job, rank, size))
        return 0; /* exits without destroying: a crashed rank */
    mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 16, b.out_o, b.out_stats, s);
    cudaError_t sync = cudaStreamSynchronize(s);
    mnnvl_status_t async = gpu_async_error(comm);
    char peer[32];
    snprintf(peer, sizeof(peer), "for peer %d", size - 1);
    if (sync != cudaSuccess || async != MNNVL_ERR_TIMEOUT || !strstr(mnnvl_last_error(), peer)) {
        fprintf(stderr, "rank %d: sync %s, async %s (%s), want TIMEOUT %s\n", rank,
                cudaGetErrorString(sync), mnnvl_status_string(async), mnnvl_last_error(), peer);
        return 1;
    }
    float v = 7.f, back = 0.f;
    CUDA_OK(rank, cudaMemcpy(b.out_lse, &v, 4, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemcpy(&back, b.out_lse, 4, cudaMemcpyDeviceToHost));
    if (back != 7.f ||
        mnnvl_dcp_a2a(d, b.in_o, b.in_stats, 16, b.out_o, b.out_stats, s) != MNNVL_ERR_ABORTED ||
        mnnvl_dcp_a2a_lse_reduce(d, b.in_o, b.in_stats, 16, b.out, b.out_lse, s) !=
            MNNVL_ERR_ABORTED)
        return fprintf(stderr, "rank %d: not usable / not ABORTED after the timeout\n", rank), 1;
    a2a_close(d, &b);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_STREAM_TESTS_2_AND_4(dcp, a_rank_that_stops_calling_gives_timeout, stop_body, 5000)
