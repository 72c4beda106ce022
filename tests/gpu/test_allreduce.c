/* All-reduce across real GPUs, one process each, against a float64 host reference. Every
 * rank can compute every rank's input (a hash of seed, rank and index), so each checks the
 * full sum itself; the ranks also compare hashes of their outputs (bit-identical). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "gpu_host.h"
#include "gpu_ranks.h"
#include "hash.h"

MT_SUITE(allreduce, 300)

/* ---- host-side element handling ---------------------------------------------------- */

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);       /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static double elem_get(mnnvl_dtype_t dt, const void *buf, size_t i)
{
    if (dt == MNNVL_DTYPE_FP32)
        return ((const float *)buf)[i];
    uint16_t b = ((const uint16_t *)buf)[i];
    if (dt == MNNVL_DTYPE_FP16) {
        _Float16 h;
        memcpy(&h, &b, 2);
        return (double)h;
    }
    return bf16_to_f32(b);
}

static void elem_set(mnnvl_dtype_t dt, void *buf, size_t i, float v)
{
    if (dt == MNNVL_DTYPE_FP32) {
        ((float *)buf)[i] = v;
    } else if (dt == MNNVL_DTYPE_FP16) {
        _Float16 h = (_Float16)v;
        memcpy((uint16_t *)buf + i, &h, 2);
    } else {
        ((uint16_t *)buf)[i] = f32_to_bf16(v);
    }
}

/* Deterministic, never-zero-heavy inputs in [-2, 2): a hash of (seed, rank, index). */
static float input_value(uint64_t seed, int rank, size_t i)
{
    return hash_to_pm2(mix(seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)rank << 40) ^ i));
}

static void fill_input(mnnvl_dtype_t dt, uint64_t seed, int rank, size_t count, void *buf)
{
    for (size_t i = 0; i < count; i++)
        elem_set(dt, buf, i, input_value(seed, rank, i));
}

/* Checks out[] against the float64 sum of every rank's (rounded) input; prints the first
 * bad element. Tolerance: the final rounding to the dtype plus fp32 accumulation. */
static int check_sum(mnnvl_dtype_t dt, const void *out, size_t count, uint64_t seed, int size,
                     int rank, const char *what)
{
    const double ulp = dt == MNNVL_DTYPE_FP32 ? 0x1p-23 : dt == MNNVL_DTYPE_FP16 ? 0x1p-10 : 0x1p-7;
    char one[16];
    for (size_t i = 0; i < count; i++) {
        double ref = 0, mag = 0;
        for (int r = 0; r < size; r++) {
            elem_set(dt, one, 0, input_value(seed, r, i));
            double x = elem_get(dt, one, 0);
            ref += x;
            mag += fabs(x);
        }
        double got = elem_get(dt, out, i);
        if (!(fabs(got - ref) <= ulp * fabs(ref) + 1e-6 * mag)) {
            fprintf(stderr, "rank %d: %s: element %zu of %zu is %.9g, want %.9g\n", rank, what, i,
                    count, got, ref);
            return 1;
        }
    }
    return 0;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    return mnnvl_hash_bytes(MNNVL_HASH_SEED, p, n);
}

/* Every rank must hold the same bytes. */
static int check_identical(mnnvl_comm_t comm, int rank, const void *out, size_t bytes,
                           const char *what)
{
    uint64_t mine = hash_bytes(out, bytes), all[16];
    if (mt_fail(mnnvl_comm_allgather(comm, &mine, all, sizeof(mine)), rank, "allgather"))
        return 1;
    for (int r = 0; r < mnnvl_comm_size(comm); r++) {
        if (all[r] != mine) {
            fprintf(stderr, "rank %d: %s: output differs from rank %d's\n", rank, what, r);
            return 1;
        }
    }
    return 0;
}

static mnnvl_allreduce_t make_allreduce(mnnvl_comm_t comm, mnnvl_dtype_t dt, size_t max_count,
                                        mnnvl_allreduce_strategy_t strategy, int rank)
{
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    p.dtype = dt;
    p.max_count = max_count;
    p.strategy = strategy;
    mnnvl_allreduce_t ar = NULL;
    if (mt_fail(mnnvl_allreduce_create(comm, &p, &ar), rank, "allreduce_create"))
        return NULL;
    return ar;
}

/* One checked call: fresh inputs, poisoned output, reference, identical across ranks. */
static int checked_call(mnnvl_comm_t comm, mnnvl_allreduce_t ar, mnnvl_dtype_t dt, size_t count,
                        uint64_t seed, int in_place, cudaStream_t s, const char *what)
{
    int rank = mnnvl_comm_rank(comm), size = mnnvl_comm_size(comm);
    size_t bytes = count * mnnvl_dtype_size(dt);
    void *host = malloc(bytes + 16), *in = NULL, *out = NULL;
    fill_input(dt, seed, rank, count, host);
    CUDA_OK(rank, cudaMalloc(&in, bytes + 16));
    CUDA_OK(rank, in_place ? cudaSuccess : cudaMalloc(&out, bytes + 16));
    if (in_place)
        out = in;
    CUDA_OK(rank, cudaMemcpy(in, host, bytes, cudaMemcpyHostToDevice));
    if (!in_place)
        CUDA_OK(rank, cudaMemset(out, 0xff, bytes)); /* poison: NaN everywhere */
    /* The copies and the memset ran on the legacy stream, which `s` (non-blocking) does not
     * wait for. */
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_allreduce(ar, in, out, count, s), rank, what))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    memset(host, 0, bytes);
    CUDA_OK(rank, cudaMemcpy(host, out, bytes, cudaMemcpyDeviceToHost));
    int bad = check_sum(dt, host, count, seed, size, rank, what) ||
              check_identical(comm, rank, host, bytes, what);
    /* Run after run: the same inputs again give the same bits. */
    if (!bad && !in_place) {
        uint64_t first = hash_bytes(host, bytes);
        CUDA_OK(rank, cudaMemset(out, 0xff, bytes));
        CUDA_OK(rank, cudaDeviceSynchronize());
        if (mt_fail(mnnvl_allreduce(ar, in, out, count, s), rank, what))
            return 1;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        CUDA_OK(rank, cudaMemcpy(host, out, bytes, cudaMemcpyDeviceToHost));
        if (hash_bytes(host, bytes) != first) {
            fprintf(stderr, "rank %d: %s: a second run gave other bits\n", rank, what);
            bad = 1;
        }
    }
    cudaFree(in);
    if (!in_place)
        cudaFree(out);
    free(host);
    return bad;
}

/* ---- the tests ---------------------------------------------------------------------- */

/* Every dtype and strategy, counts 1 .. larger than the workspace, in and out of place. */
static int sizes_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    const size_t max_count = 1u << 20;
    const size_t counts[] = {1, 7, 1000, 4096, (1u << 20) + 3, (5u << 20) + 11};
    const mnnvl_dtype_t dtypes[] = {MNNVL_DTYPE_BF16, MNNVL_DTYPE_FP16, MNNVL_DTYPE_FP32};
    const mnnvl_allreduce_strategy_t strategies[] = {MNNVL_ALLREDUCE_AUTO, MNNVL_ALLREDUCE_ONESHOT,
                                                     MNNVL_ALLREDUCE_TWOSHOT};
    uint64_t seed = 1;
    for (int d = 0; d < 3; d++) {
        for (int st = 0; st < 3; st++) {
            mnnvl_allreduce_t ar = make_allreduce(comm, dtypes[d], max_count, strategies[st], rank);
            if (!ar)
                return 1;
            for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
                char what[96];
                snprintf(what, sizeof(what), "dtype %d strategy %d count %zu", dtypes[d],
                         strategies[st], counts[c]);
                if (checked_call(comm, ar, dtypes[d], counts[c], seed++, (int)(c % 2), s, what))
                    return 1;
            }
            mnnvl_allreduce_destroy(ar);
        }
    }
    return gpu_comm_stream_end(comm, rank, s);
}

GPU_STREAM_TESTS_2_AND_4(allreduce, every_dtype_strategy_and_size, sizes_body, 30000)

/* -0.0, +inf and NaN inputs: -0 must not be taken for "empty" (no hang), inf and NaN pass
 * through the sum. */
static int special_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    for (int strategy = MNNVL_ALLREDUCE_ONESHOT; strategy <= MNNVL_ALLREDUCE_TWOSHOT; strategy++) {
        mnnvl_allreduce_t ar = make_allreduce(comm, MNNVL_DTYPE_BF16, 4096, strategy, rank);
        if (!ar)
            return 1;
        const size_t n = 4096;
        uint16_t *host = calloc(n, 2);
        for (size_t i = 0; i < n; i++)
            host[i] = 0x8000;                  /* -0.0 everywhere */
        host[1] = rank == 1 ? 0x7f80 : 0x3f80; /* +inf on rank 1, 1.0 elsewhere */
        host[2] = rank == 0 ? 0x7fc0 : 0x3f80; /* NaN on rank 0 */
        host[3] = 0x3f80;                      /* 1.0 everywhere */
        void *buf;
        CUDA_OK(rank, cudaMalloc(&buf, n * 2));
        CUDA_OK(rank, cudaMemcpy(buf, host, n * 2, cudaMemcpyHostToDevice));
        CUDA_OK(rank, cudaDeviceSynchronize()); /* `s` does not wait for the legacy stream */
        if (mt_fail(mnnvl_allreduce(ar, buf, buf, n, s), rank, "allreduce of -0/inf/NaN"))
            return 1;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        CUDA_OK(rank, cudaMemcpy(host, buf, n * 2, cudaMemcpyDeviceToHost));
        double zero = elem_get(MNNVL_DTYPE_BF16, host, 0);
        double inf = elem_get(MNNVL_DTYPE_BF16, host, 1);
        double nan = elem_get(MNNVL_DTYPE_BF16, host, 2);
        double sum = elem_get(MNNVL_DTYPE_BF16, host, 3);
        if (zero != 0.0 || !isinf(inf) || inf < 0 || !isnan(nan) || sum != (double)size) {
            fprintf(stderr, "rank %d strategy %d: got %g %g %g %g, want 0 inf nan %d\n", rank,
                    strategy, zero, inf, nan, sum, size);
            return 1;
        }
        cudaFree(buf);
        free(host);
        mnnvl_allreduce_destroy(ar);
    }
    int bad = gpu_no_async_error(comm, rank);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(allreduce, negative_zero_inf_and_nan, special_body, 20000)

/* 1000 back-to-back calls alternating a one-shot and a two-shot size, with the inputs
 * changing from call to call (a rotation bug would surface as stale data or a hang). */
#define ROUNDS 1000
#define INPUT_SETS 4
static int rotation_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size,
                         const gpu_job_t *job)
{
    const mnnvl_dtype_t dt = MNNVL_DTYPE_BF16;
    const size_t sizes[2] = {1000, 600000}; /* 2 KB one-shot, 1.2 MB two-shot under AUTO */
    mnnvl_allreduce_t ar = make_allreduce(comm, dt, 1u << 20, MNNVL_ALLREDUCE_AUTO, rank);
    if (!ar)
        return 1;
    void *in[2][INPUT_SETS], *out[2][INPUT_SETS];
    void *host = malloc(sizes[1] * 2);
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < INPUT_SETS; j++) {
            CUDA_OK(rank, cudaMalloc(&in[k][j], sizes[k] * 2));
            CUDA_OK(rank, cudaMalloc(&out[k][j], sizes[k] * 2));
            fill_input(dt, 100 + 10 * k + j, rank, sizes[k], host);
            CUDA_OK(rank, cudaMemcpy(in[k][j], host, sizes[k] * 2, cudaMemcpyHostToDevice));
        }
    }
    CUDA_OK(rank, cudaDeviceSynchronize()); /* `s` does not wait for the legacy stream */
    for (int i = 0; i < ROUNDS; i++) {
        int k = i % 2, j = (i / 2) % INPUT_SETS;
        if (mt_fail(mnnvl_allreduce(ar, in[k][j], out[k][j], sizes[k], s), rank, "allreduce"))
            return 1;
        if ((i + 1) % 200 == 0) { /* check the last call of each size now and then */
            CUDA_OK(rank, cudaStreamSynchronize(s));
            for (int kk = 0; kk < 2; kk++) {
                int last = i - (k == kk ? 0 : 1), jj = (last / 2) % INPUT_SETS;
                CUDA_OK(rank, cudaMemcpy(host, out[kk][jj], sizes[kk] * 2, cudaMemcpyDeviceToHost));
                if (check_sum(dt, host, sizes[kk], 100 + 10 * kk + jj, size, rank, "rotation"))
                    return 1;
                CUDA_OK(rank, cudaMemset(out[kk][jj], 0xff, sizes[kk] * 2));
            }
            CUDA_OK(rank, cudaDeviceSynchronize());
        }
    }
    int bad = gpu_no_async_error(comm, rank);
    mnnvl_allreduce_destroy(ar);
    mnnvl_comm_destroy(comm);
    free(host);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(allreduce, thousand_calls_alternating_sizes, rotation_body, 30000)

/* Ten calls captured into a graph and replayed 100 times; the inputs change between some
 * replays, so stale Lamport data would be caught. */
static int graph_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    const mnnvl_dtype_t dt = MNNVL_DTYPE_BF16;
    const size_t counts[10] = {8, 4096, 100000, 300000, 3, 65536, 1u << 20, 17, 2048, 500000};
    mnnvl_allreduce_t ar = make_allreduce(comm, dt, 1u << 20, MNNVL_ALLREDUCE_AUTO, rank);
    if (!ar)
        return 1;
    void *in[10], *out[10], *host = malloc((1u << 20) * 2);
    for (int c = 0; c < 10; c++) {
        CUDA_OK(rank, cudaMalloc(&in[c], counts[c] * 2));
        CUDA_OK(rank, cudaMalloc(&out[c], counts[c] * 2));
    }
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int c = 0; c < 10; c++)
        if (mt_fail(mnnvl_allreduce(ar, in[c], out[c], counts[c], s), rank, "captured allreduce"))
            return 1;
    if (gpu_capture_end(rank, s, &graph, &exec))
        return 1;
    for (int replay = 0; replay < 100; replay++) {
        int check = replay % 25 == 24;
        if (replay % 25 == 0) { /* new inputs for the next stretch of replays */
            CUDA_OK(rank, cudaStreamSynchronize(s));
            for (int c = 0; c < 10; c++) {
                fill_input(dt, 1000 + replay * 10 + c, rank, counts[c], host);
                CUDA_OK(rank, cudaMemcpy(in[c], host, counts[c] * 2, cudaMemcpyHostToDevice));
            }
            CUDA_OK(rank, cudaDeviceSynchronize()); /* before the graph runs on `s` */
        }
        CUDA_OK(rank, cudaGraphLaunch(exec, s));
        if (!check)
            continue;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        for (int c = 0; c < 10; c++) {
            CUDA_OK(rank, cudaMemcpy(host, out[c], counts[c] * 2, cudaMemcpyDeviceToHost));
            if (check_sum(dt, host, counts[c], 1000 + (replay - 24) * 10 + c, size, rank,
                          "graph replay"))
                return 1;
        }
    }
    int bad = gpu_no_async_error(comm, rank);
    gpu_graph_destroy(graph, exec);
    mnnvl_allreduce_destroy(ar);
    mnnvl_comm_destroy(comm);
    free(host);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(allreduce, ten_calls_in_a_graph_replayed_100_times, graph_body, 30000)

/* A communicator of the same ranks beside gpu_comm's, named `name`, on the first one's root
 * (rank 0's: root_mode external); `opt`, when not NULL, is a key set to "1" first. */
static mnnvl_comm_t another_comm(const gpu_job_t *job, int rank, int size, const char *opt,
                                 const char *name, const char *what)
{
    mnnvl_config_t cfg = gpu_config(job);
    if (opt)
        mnnvl_config_set(cfg, opt, "1");
    mnnvl_config_set(cfg, "comm_name", name);
    mnnvl_config_set(cfg, "root_mode", "external");
    mnnvl_comm_t comm = NULL;
    if (mt_fail(mnnvl_comm_create(cfg, rank, size, gpu_device(job, rank), &comm), rank, what))
        return NULL;
    mnnvl_config_destroy(cfg);
    return comm;
}

/* Two handles on two communicators, used alternately; plus caching and argument checks. */
static int two_comms_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    mnnvl_comm_t a = gpu_comm(job, rank, size);
    if (!a)
        return 1;
    mnnvl_comm_t b = another_comm(job, rank, size, NULL, "second", "second comm_create");
    if (!b)
        return 1;
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    mnnvl_allreduce_t ra =
        make_allreduce(a, MNNVL_DTYPE_FP16, 1u << 16, MNNVL_ALLREDUCE_AUTO, rank);
    mnnvl_allreduce_t rb =
        make_allreduce(b, MNNVL_DTYPE_FP16, 1u << 16, MNNVL_ALLREDUCE_AUTO, rank);
    mnnvl_allreduce_t again =
        make_allreduce(a, MNNVL_DTYPE_FP16, 1u << 16, MNNVL_ALLREDUCE_AUTO, rank);
    if (!ra || !rb || again != ra) {
        fprintf(stderr,
                "rank %d: creating the same all-reduce twice did not return the cached "
                "handle\n",
                rank);
        return 1;
    }
    mnnvl_allreduce_destroy(again);
    for (int i = 0; i < 20; i++)
        if (checked_call(i % 2 ? b : a, i % 2 ? rb : ra, MNNVL_DTYPE_FP16, 5000 + 100 * i, 77 + i,
                         0, s, "alternating communicators"))
            return 1;
    /* Argument checks, on the host, before anything is enqueued. */
    char *dev;
    CUDA_OK(rank, cudaMalloc((void **)&dev, 4096));
    int bad = 0;
    bad |= mnnvl_allreduce(ra, dev + 1, dev + 2, 10, s) != MNNVL_ERR_INVALID_ARGUMENT;
    bad |= mnnvl_allreduce(ra, NULL, dev, 10, s) != MNNVL_ERR_INVALID_ARGUMENT;
    bad |= mnnvl_allreduce_residual_rmsnorm(ra, dev, dev, dev, 1e-6f, 1, 7, dev + 64, dev + 128,
                                            s) != MNNVL_ERR_INVALID_ARGUMENT; /* hidden 7 */
    bad |= mnnvl_allreduce_residual_rmsnorm(ra, dev, dev, dev, 1e-6f, 1, 8, dev, dev + 128, s) !=
           MNNVL_ERR_INVALID_ARGUMENT; /* in aliases residual_out */
    bad |= mnnvl_allreduce(ra, dev, dev, 0, s) != MNNVL_SUCCESS;
    if (bad)
        fprintf(stderr, "rank %d: an argument check did not give the expected status\n", rank);
    cudaFree(dev);
    bad |= gpu_no_async_error(a, rank) | gpu_no_async_error(b, rank);
    mnnvl_allreduce_destroy(ra);
    mnnvl_allreduce_destroy(rb);
    mnnvl_comm_destroy(b);
    mnnvl_comm_destroy(a);
    return bad;
}

GPU_TEST(allreduce, two_communicators_alternately_and_argument_checks, 2, two_comms_body, 20000)

/* Caller-provided buffers: refused without the opt-in or with the wrong count; with both,
 * a table of buffers from another allocation works. */
static int external_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    p.max_count = 4096;
    size_t need = mnnvl_allreduce_workspace_size(&p, size);
    mnnvl_mem_t mem;
    if (mt_fail(mnnvl_mem_alloc(comm, need, &mem), rank, "mem_alloc"))
        return 1;
    void *bufs[16];
    for (int r = 0; r < size; r++)
        bufs[r] = mnnvl_mem_ptr(mem, r);
    p.external_buffers = bufs;
    p.external_buffer_count = size;
    p.external_buffer_bytes = need;
    mnnvl_allreduce_t ar = NULL;
    if (mnnvl_allreduce_create(comm, &p, &ar) != MNNVL_ERR_INVALID_USAGE) {
        fprintf(stderr, "rank %d: external buffers accepted without the opt-in\n", rank);
        return 1;
    }
    mnnvl_comm_destroy(comm);
    /* rank 0 keeps the first communicator's root alive through `mem` */
    comm = another_comm(job, rank, size, "external_buffers", "ext", "comm_create");
    if (!comm)
        return 1;
    p.external_buffer_count = size - 1;
    if (mnnvl_allreduce_create(comm, &p, &ar) != MNNVL_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "rank %d: a short buffer table was accepted\n", rank);
        return 1;
    }
    p.external_buffer_count = size;
    p.external_buffer_bytes = need - 1;
    if (mnnvl_allreduce_create(comm, &p, &ar) != MNNVL_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "rank %d: too small buffers were accepted\n", rank);
        return 1;
    }
    p.external_buffer_bytes = need;
    if (mt_fail(mnnvl_allreduce_create(comm, &p, &ar), rank, "allreduce_create external"))
        return 1;
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    for (int i = 0; i < 5; i++)
        if (checked_call(comm, ar, MNNVL_DTYPE_BF16, 4000 + i, 300 + i, i % 2, s, "external"))
            return 1;
    int bad = gpu_no_async_error(comm, rank);
    mnnvl_allreduce_destroy(ar);
    mnnvl_comm_barrier(comm);
    mnnvl_comm_destroy(comm);
    mnnvl_mem_release(mem);
    return bad;
}

GPU_TEST(allreduce, external_buffers_are_an_explicit_opt_in, 2, external_body, 20000)

/* Fused all-reduce + residual + RMSNorm against a float64 reference. */
static int fused_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    const mnnvl_dtype_t dt = MNNVL_DTYPE_BF16;
    const size_t hidden = 7168, token_counts[] = {1, 8, 32, 128};
    const float eps = 1e-6f;
    for (int wb = 0; wb < 2; wb++) {
        for (int strategy = MNNVL_ALLREDUCE_ONESHOT; strategy <= MNNVL_ALLREDUCE_TWOSHOT;
             strategy++) {
            mnnvl_allreduce_params_t p;
            mnnvl_allreduce_params_init(&p);
            p.max_count = 128 * hidden;
            p.strategy = strategy;
            p.rmsnorm_weight_bias = wb;
            mnnvl_allreduce_t ar;
            if (mt_fail(mnnvl_allreduce_create(comm, &p, &ar), rank, "allreduce_create"))
                return 1;
            for (size_t t = 0; t < 4; t++) {
                size_t tokens = token_counts[t], n = tokens * hidden;
                uint64_t seed = 5000 + 100 * wb + 10 * strategy + t;
                uint16_t *h_in = malloc(n * 2), *h_res = malloc(n * 2),
                         *h_gamma = malloc(hidden * 2);
                uint16_t *h_rout = malloc(n * 2), *h_norm = malloc(n * 2);
                fill_input(dt, seed, rank, n, h_in);
                fill_input(dt, seed, 99, n, h_res); /* the same on every rank */
                fill_input(dt, seed, 98, hidden, h_gamma);
                void *in, *res, *gamma, *rout, *norm;
                CUDA_OK(rank, cudaMalloc(&in, n * 2));
                CUDA_OK(rank, cudaMalloc(&res, n * 2));
                CUDA_OK(rank, cudaMalloc(&gamma, hidden * 2));
                CUDA_OK(rank, cudaMalloc(&rout, n * 2));
                CUDA_OK(rank, cudaMalloc(&norm, n * 2));
                CUDA_OK(rank, cudaMemcpy(in, h_in, n * 2, cudaMemcpyHostToDevice));
                CUDA_OK(rank, cudaMemcpy(res, h_res, n * 2, cudaMemcpyHostToDevice));
                CUDA_OK(rank, cudaMemcpy(gamma, h_gamma, hidden * 2, cudaMemcpyHostToDevice));
                CUDA_OK(rank, cudaMemset(rout, 0xff, n * 2));
                CUDA_OK(rank, cudaMemset(norm, 0xff, n * 2));
                CUDA_OK(rank, cudaDeviceSynchronize()); /* `s` does not wait for them */
                if (mt_fail(mnnvl_allreduce_residual_rmsnorm(ar, in, res, gamma, eps, tokens,
                                                             hidden, rout, norm, s),
                            rank, "allreduce_residual_rmsnorm"))
                    return 1;
                CUDA_OK(rank, cudaStreamSynchronize(s));
                CUDA_OK(rank, cudaMemcpy(h_rout, rout, n * 2, cudaMemcpyDeviceToHost));
                CUDA_OK(rank, cudaMemcpy(h_norm, norm, n * 2, cudaMemcpyDeviceToHost));
                char one[4];
                for (size_t row = 0; row < tokens; row++) {
                    double *y = malloc(hidden * sizeof(double)), ss = 0;
                    for (size_t c = 0; c < hidden; c++) {
                        size_t i = row * hidden + c;
                        double sum = 0;
                        for (int r = 0; r < size; r++) {
                            elem_set(dt, one, 0, input_value(seed, r, i));
                            sum += elem_get(dt, one, 0);
                        }
                        elem_set(dt, one, 0, (float)sum); /* the all-reduce result, rounded */
                        y[c] = elem_get(dt, one, 0) + elem_get(dt, h_res, i);
                        ss += y[c] * y[c];
                    }
                    double scale = 1.0 / sqrt(ss / hidden + eps);
                    for (size_t c = 0; c < hidden; c++) {
                        size_t i = row * hidden + c;
                        double g = elem_get(dt, h_gamma, c) + wb;
                        double want_norm = y[c] * scale * g;
                        double got_res = elem_get(dt, h_rout, i),
                               got_norm = elem_get(dt, h_norm, i);
                        if (fabs(got_res - y[c]) > 0x1p-7 * fabs(y[c]) + 1e-5 ||
                            fabs(got_norm - want_norm) > 0x1p-6 * fabs(want_norm) + 1e-2) {
                            fprintf(stderr,
                                    "rank %d wb %d strategy %d tokens %zu: [%zu][%zu] "
                                    "residual %g (want %g) norm %g (want %g)\n",
                                    rank, wb, strategy, tokens, row, c, got_res, y[c], got_norm,
                                    want_norm);
                            return 1;
                        }
                    }
                    free(y);
                }
                if (check_identical(comm, rank, h_norm, n * 2, "fused norm_out"))
                    return 1;
                cudaFree(in), cudaFree(res), cudaFree(gamma), cudaFree(rout), cudaFree(norm);
                free(h_in), free(h_res), free(h_gamma), free(h_rout), free(h_norm);
            }
            mnnvl_allreduce_destroy(ar);
        }
    }
    int bad = gpu_no_async_error(comm, rank);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(allreduce, fused_residual_rmsnorm, fused_body, 30000)

/* The last rank stops calling: the others' kernels end with TIMEOUT, no trap, the process
 * stays usable. */
static int stop_body(int rank, int size, void *arg)
{
    gpu_job_t *job = arg;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    mnnvl_allreduce_t ar =
        make_allreduce(comm, MNNVL_DTYPE_BF16, 1u << 16, MNNVL_ALLREDUCE_AUTO, rank);
    if (!ar)
        return 1;
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    void *buf;
    CUDA_OK(rank, cudaMalloc(&buf, 1u << 17));
    CUDA_OK(rank, cudaMemset(buf, 0, 1u << 17));
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_allreduce(ar, buf, buf, 1u << 16, s), rank, "first allreduce"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (gpu_last_rank_stops(comm, job, rank, size))
        return 0; /* exits without destroying: a crashed rank */
    mnnvl_allreduce(ar, buf, buf, 1u << 16, s);
    cudaError_t sync = cudaStreamSynchronize(s);
    mnnvl_status_t async = gpu_async_error(comm);
    if (sync != cudaSuccess || async != MNNVL_ERR_TIMEOUT) {
        fprintf(stderr, "rank %d: sync %s, async %s (%s)\n", rank, cudaGetErrorString(sync),
                mnnvl_status_string(async), mnnvl_last_error());
        return 1;
    }
    int v = 7, back = 0;
    CUDA_OK(rank, cudaMemcpy(buf, &v, 4, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemcpy(&back, buf, 4, cudaMemcpyDeviceToHost));
    if (back != 7 || mnnvl_allreduce(ar, buf, buf, 8, s) != MNNVL_ERR_ABORTED)
        return fprintf(stderr, "rank %d: not usable / not ABORTED after the timeout\n", rank), 1;
    mnnvl_allreduce_destroy(ar);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_TESTS_2_AND_4(allreduce, a_rank_that_stops_calling_gives_timeout, stop_body, 5000)
