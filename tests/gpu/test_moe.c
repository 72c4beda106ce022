/* MoE all-to-all across real GPUs, one process each. Every rank can compute every rank's
 * inputs (hashes of seed, rank, token), so each checks what it received against a host
 * reference of the routing, runs a host "expert" on the received rows, and checks combine's
 * result bit for bit against the same arithmetic done on the host. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_host.h"
#include "gpu_ranks.h"
#include "hash.h"

MT_SUITE(moe, 300)

#define HIDDEN 256

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* One test scenario: what every rank would pass. */
typedef struct scenario {
    int size;
    int num_experts;
    int top_k;
    int max_tokens;
    uint64_t seed;
    int zero_rank; /* this rank has no tokens (-1: none, -2: every rank) */
    int zero_copy; /* write the expert output straight into the combine buffer */
} scenario_t;

static int tokens_of(const scenario_t *sc, int rank)
{
    if (sc->zero_rank == -2 || sc->zero_rank == rank)
        return 0;
    return 1 + (int)(mix(sc->seed * 31 + (uint64_t)rank) % (uint64_t)(sc->max_tokens - 8));
}

static int runtime_r(const scenario_t *sc)
{
    int r = 0;
    for (int s = 0; s < sc->size; s++)
        r = tokens_of(sc, s) > r ? tokens_of(sc, s) : r;
    return r;
}

/* Expert k of token t on rank s; about one in twelve is "no expert" (-1 or >= E). */
static int32_t expert_of(const scenario_t *sc, int s, int t, int k)
{
    uint64_t h = mix(sc->seed ^ ((uint64_t)s << 48) ^ ((uint64_t)t << 16) ^ (uint64_t)k);
    if (h % 12 == 0)
        return h % 24 == 0 ? -1 : sc->num_experts + (int32_t)(h % 5);
    return (int32_t)((h >> 8) % (uint64_t)sc->num_experts);
}

static float weight_of(const scenario_t *sc, int s, int t, int k)
{
    return (float)(mix(sc->seed * 7 + ((uint64_t)s << 40) + ((uint64_t)t << 8) + (uint64_t)k) %
                   1000) /
           1000.0f;
}

static uint16_t hidden_of(const scenario_t *sc, int s, int t, int h)
{
    uint64_t x = mix(sc->seed * 13 + ((uint64_t)s << 44) + ((uint64_t)t << 20) + (uint64_t)h);
    return f32_to_bf16(hash_to_pm2(x));
}

static int owner_of(const scenario_t *sc, int e)
{
    int base = sc->num_experts / sc->size, extra = sc->num_experts % sc->size;
    int split = extra * (base + 1);
    return e < split ? e / (base + 1) : extra + (e - split) / base;
}

static int valid_expert(const scenario_t *sc, int e)
{
    return e >= 0 && e < sc->num_experts;
}

/* Whether token t of source s goes to rank d. */
static int goes_to(const scenario_t *sc, int s, int t, int d)
{
    for (int k = 0; k < sc->top_k; k++) {
        int e = expert_of(sc, s, t, k);
        if (valid_expert(sc, e) && owner_of(sc, e) == d)
            return 1;
    }
    return 0;
}

/* The payloads: the hidden row (bf16), the ids (int32 x top_k), the weights (fp32 x top_k)
 * and a 36-byte "scale" row of bytes. */
enum { P_HIDDEN, P_IDS, P_WEIGHTS, P_SCALE, NPAYLOADS };

static size_t payload_bytes(const scenario_t *sc, int i)
{
    switch (i) {
    case P_HIDDEN: return HIDDEN * 2;
    case P_IDS:
    case P_WEIGHTS: return (size_t)sc->top_k * 4;
    default: return 36;
    }
}

static void payload_row(const scenario_t *sc, int i, int s, int t, void *row)
{
    for (int x = 0; x < (int)(payload_bytes(sc, i) / (i == P_HIDDEN ? 2 : 4)); x++) {
        if (i == P_HIDDEN)
            ((uint16_t *)row)[x] = hidden_of(sc, s, t, x);
        else if (i == P_IDS)
            ((int32_t *)row)[x] = expert_of(sc, s, t, x);
        else if (i == P_WEIGHTS)
            ((float *)row)[x] = weight_of(sc, s, t, x);
        else
            ((uint32_t *)row)[x] =
                (uint32_t)mix(sc->seed + ((uint64_t)s << 32) + (uint64_t)t * 9 + (uint64_t)x);
    }
}

/* This rank's partial for token t of source s: the weighted sum over its own experts of a
 * toy expert f_e(x) = x*(e+1)/E + 0.5, in fp32 in top-k order, rounded to bf16. */
static void partial(const scenario_t *sc, int rank, int s, int t, uint16_t *row)
{
    for (int h = 0; h < HIDDEN; h++) {
        float acc = 0.f, x = bf16_to_f32(hidden_of(sc, s, t, h));
        for (int k = 0; k < sc->top_k; k++) {
            int e = expert_of(sc, s, t, k);
            if (valid_expert(sc, e) && owner_of(sc, e) == rank)
                acc +=
                    weight_of(sc, s, t, k) * (x * (float)(e + 1) / (float)sc->num_experts + 0.5f);
        }
        row[h] = f32_to_bf16(acc);
    }
}

static mnnvl_moe_a2a_params_t params_of(const scenario_t *sc)
{
    mnnvl_moe_a2a_params_t p;
    mnnvl_moe_a2a_params_init(&p);
    p.ep_size = sc->size;
    p.num_experts = sc->num_experts;
    p.top_k = sc->top_k;
    p.max_tokens_per_rank = sc->max_tokens;
    p.num_payloads = NPAYLOADS;
    for (int i = 0; i < NPAYLOADS; i++)
        p.payload_bytes[i] = payload_bytes(sc, i);
    p.hidden = HIDDEN;
    p.combine_dtype = MNNVL_DTYPE_BF16;
    return p;
}

/* Uploads this rank's inputs; returns the device arrays. */
static int upload(const scenario_t *sc, int rank, int32_t **ids, void *payload[NPAYLOADS])
{
    int T = tokens_of(sc, rank);
    size_t n = T ? (size_t)T : 1;
    int32_t *h_ids = malloc(n * sc->top_k * 4);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < sc->top_k; k++)
            h_ids[t * sc->top_k + k] = expert_of(sc, rank, t, k);
    CUDA_OK(rank, cudaMalloc((void **)ids, n * sc->top_k * 4));
    CUDA_OK(rank, cudaMemcpy(*ids, h_ids, (size_t)T * sc->top_k * 4, cudaMemcpyHostToDevice));
    free(h_ids);
    for (int i = 0; i < NPAYLOADS; i++) {
        size_t b = payload_bytes(sc, i);
        char *h = malloc(n * b);
        for (int t = 0; t < T; t++)
            payload_row(sc, i, rank, t, h + (size_t)t * b);
        CUDA_OK(rank, cudaMalloc(&payload[i], n * b));
        CUDA_OK(rank, cudaMemcpy(payload[i], h, (size_t)T * b, cudaMemcpyHostToDevice));
        free(h);
    }
    CUDA_OK(rank, cudaDeviceSynchronize());
    return 0;
}

/* Dispatch, check every received row and count, sanitize, run the host expert, combine,
 * check the result bit for bit. Returns a hash of the output (for the repeat check). */
static int round_trip(mnnvl_comm_t comm, mnnvl_moe_a2a_t a2a, const scenario_t *sc, cudaStream_t s,
                      uint64_t *out_hash)
{
    const int rank = mnnvl_comm_rank(comm), n = sc->size, T = tokens_of(sc, rank);
    const int R = runtime_r(sc);
    int32_t *ids;
    void *payload[NPAYLOADS];
    if (upload(sc, rank, &ids, payload))
        return 1;
    if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids, (const void *const *)payload, T, R, s), rank,
                "dispatch"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    int32_t counts[64];
    CUDA_OK(rank, cudaMemcpy(counts, mnnvl_moe_a2a_recv_counts(a2a), (size_t)n * 4,
                             cudaMemcpyDeviceToHost));
    /* Routing reference: source s's tokens to this rank, in token order, slot by slot. */
    int *token_at = calloc((size_t)n * (R ? R : 1), sizeof(int));
    for (int src = 0; src < n; src++) {
        int c = 0;
        for (int t = 0; t < tokens_of(sc, src); t++)
            if (goes_to(sc, src, t, rank))
                token_at[src * R + c++] = t;
        if (counts[src] != c) {
            fprintf(stderr, "rank %d: %d tokens from rank %d, want %d\n", rank, counts[src], src,
                    c);
            return 1;
        }
    }
    for (int i = 0; i < NPAYLOADS && R > 0; i++) {
        size_t b = payload_bytes(sc, i);
        char *got = malloc((size_t)n * R * b), *want = malloc(b);
        CUDA_OK(rank, cudaMemcpy(got, mnnvl_moe_a2a_recv_buffer(a2a, i), (size_t)n * R * b,
                                 cudaMemcpyDeviceToHost));
        for (int src = 0; src < n; src++) {
            for (int j = 0; j < counts[src]; j++) {
                payload_row(sc, i, src, token_at[src * R + j], want);
                if (memcmp(got + ((size_t)src * R + j) * b, want, b) != 0) {
                    fprintf(stderr, "rank %d: payload %d slot [%d][%d] is not token %d's row\n",
                            rank, i, src, j, token_at[src * R + j]);
                    return 1;
                }
            }
        }
        free(got);
        free(want);
    }
    /* Sanitize: ids past a source's count, and ids of other ranks' experts, become -1. */
    if (mt_fail(mnnvl_moe_a2a_sanitize(a2a, P_IDS, s), rank, "sanitize"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (R > 0) {
        int32_t *sid = malloc((size_t)n * R * sc->top_k * 4);
        CUDA_OK(rank, cudaMemcpy(sid, mnnvl_moe_a2a_recv_buffer(a2a, P_IDS),
                                 (size_t)n * R * sc->top_k * 4, cudaMemcpyDeviceToHost));
        for (int src = 0; src < n; src++) {
            for (int j = 0; j < R; j++) {
                for (int k = 0; k < sc->top_k; k++) {
                    int32_t got = sid[((size_t)src * R + j) * sc->top_k + k], want = -1;
                    if (j < counts[src]) {
                        int e = expert_of(sc, src, token_at[src * R + j], k);
                        want = valid_expert(sc, e) && owner_of(sc, e) == rank ? e : -1;
                    }
                    if (got != want) {
                        fprintf(stderr, "rank %d: sanitized id [%d][%d][%d] is %d, want %d\n", rank,
                                src, j, k, got, want);
                        return 1;
                    }
                }
            }
        }
        free(sid);
    }
    /* The host expert writes this rank's partial for every valid slot. */
    size_t rows = (size_t)n * (R ? R : 1);
    uint16_t *expert = calloc(rows * HIDDEN, 2);
    for (int src = 0; src < n; src++)
        for (int j = 0; j < counts[src]; j++)
            partial(sc, rank, src, token_at[src * R + j], expert + ((size_t)src * R + j) * HIDDEN);
    void *staged = NULL, *out = NULL;
    CUDA_OK(rank, cudaMalloc(&out, (T ? T : 1) * HIDDEN * 2));
    CUDA_OK(rank, cudaMemset(out, 0xff, (T ? T : 1) * HIDDEN * 2));
    if (sc->zero_copy) {
        CUDA_OK(rank, cudaMemcpy(mnnvl_moe_a2a_combine_buffer(a2a), expert,
                                 (size_t)n * R * HIDDEN * 2, cudaMemcpyHostToDevice));
    } else {
        CUDA_OK(rank, cudaMalloc(&staged, rows * HIDDEN * 2));
        CUDA_OK(rank, cudaMemcpy(staged, expert, rows * HIDDEN * 2, cudaMemcpyHostToDevice));
    }
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_moe_a2a_combine(a2a, staged, out, s), rank, "combine"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    uint16_t *got = malloc((T ? T : 1) * HIDDEN * 2), *part = malloc(HIDDEN * 2);
    CUDA_OK(rank, cudaMemcpy(got, out, (size_t)T * HIDDEN * 2, cudaMemcpyDeviceToHost));
    /* Combine's arithmetic on the host: ranks in ascending order, fp32, then bf16. */
    for (int t = 0; t < T; t++) {
        float acc[HIDDEN] = {0};
        double exact[HIDDEN] = {0}, mag[HIDDEN] = {0};
        for (int d = 0; d < n; d++) {
            if (!goes_to(sc, rank, t, d))
                continue;
            partial(sc, d, rank, t, part);
            for (int h = 0; h < HIDDEN; h++) {
                acc[h] += bf16_to_f32(part[h]);
                mag[h] += fabs(bf16_to_f32(part[h]));
            }
            /* The float64 reference: each expert's exact contribution, no rounding. */
            for (int k = 0; k < sc->top_k; k++) {
                int e = expert_of(sc, rank, t, k);
                if (!valid_expert(sc, e) || owner_of(sc, e) != d)
                    continue;
                for (int h = 0; h < HIDDEN; h++)
                    exact[h] += (double)weight_of(sc, rank, t, k) *
                                ((double)bf16_to_f32(hidden_of(sc, rank, t, h)) * (e + 1) /
                                     sc->num_experts +
                                 0.5);
            }
        }
        for (int h = 0; h < HIDDEN; h++) {
            double g = bf16_to_f32(got[t * HIDDEN + h]);
            /* Two bf16 roundings (each partial, the result) plus fp32 sums, relative to the
             * magnitude of what was summed (contributions may cancel). */
            if (fabs(g - exact[h]) > 0x1p-6 * (mag[h] + fabs(exact[h])) + 1e-3) {
                fprintf(stderr, "rank %d: out[%d][%d] = %g, float64 reference %g\n", rank, t, h, g,
                        exact[h]);
                return 1;
            }
            if (got[t * HIDDEN + h] != f32_to_bf16(acc[h])) {
                fprintf(stderr, "rank %d: out[%d][%d] = %g, want %g\n", rank, t, h,
                        bf16_to_f32(got[t * HIDDEN + h]), bf16_to_f32(f32_to_bf16(acc[h])));
                return 1;
            }
        }
    }
    uint64_t hsh = MNNVL_HASH_SEED;
    for (size_t i = 0; i < (size_t)T * HIDDEN; i++)
        hsh = mnnvl_hash_word(hsh, got[i]);
    *out_hash = hsh;
    free(got), free(part), free(expert), free(token_at);
    cudaFree(out), cudaFree(staged), cudaFree(ids);
    for (int i = 0; i < NPAYLOADS; i++)
        cudaFree(payload[i]);
    return 0;
}

/* The scenarios of one GPU count: top_k 1, 3, 8, 22; uneven experts; zero tokens on one rank
 * and on every rank; zero-copy and staged combine; each round trip done twice. */
static int scenarios_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size,
                          const gpu_job_t *job)
{
    const scenario_t list[] = {
        {size, 16, 8, 64, 1, -1, 1},  {size, 10, 3, 64, 2, -1, 0}, {size, 64, 1, 40, 3, -1, 1},
        {size, 64, 22, 40, 4, -1, 0}, {size, 32, 8, 64, 5, 1, 1},  {size, 32, 8, 64, 6, -2, 0},
        {size, size, 2, 16, 7, 0, 0},
    };
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        mnnvl_moe_a2a_params_t p = params_of(&list[i]);
        mnnvl_moe_a2a_t a2a;
        if (mt_fail(mnnvl_moe_a2a_create(comm, &p, &a2a), rank, "moe_a2a_create"))
            return 1;
        uint64_t first = 0, second = 1;
        if (round_trip(comm, a2a, &list[i], s, &first) ||
            round_trip(comm, a2a, &list[i], s, &second))
            return fprintf(stderr, "rank %d: scenario %zu failed\n", rank, i), 1;
        if (first != second)
            return fprintf(stderr, "rank %d: scenario %zu differs between runs\n", rank, i), 1;
        mnnvl_moe_a2a_destroy(a2a);
    }
    if (gpu_no_async_error(comm, rank))
        return 1;
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_STREAM_TESTS_2_AND_4(moe, round_trips, scenarios_body, 30000)

/* Wrong usage and wrong sizes: INVALID_ARGUMENT / INVALID_USAGE on the host, MISMATCH on the
 * device when the ranks disagree on R. */
static int errors_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    scenario_t sc = {size, 16, 4, 64, 9, -1, 0};
    mnnvl_moe_a2a_params_t p = params_of(&sc);
    mnnvl_moe_a2a_t a2a = NULL;
    p.ep_size = size + 1;
    if (mnnvl_moe_a2a_create(comm, &p, &a2a) != MNNVL_ERR_INVALID_ARGUMENT ||
        !strstr(mnnvl_last_error(), "does not match the communicator")) {
        fprintf(stderr, "rank %d: ep_size != comm size: %s\n", rank, mnnvl_last_error());
        return 1;
    }
    p.ep_size = size;
    if (mt_fail(mnnvl_moe_a2a_create(comm, &p, &a2a), rank, "create"))
        return 1;
    void *out;
    CUDA_OK(rank, cudaMalloc(&out, 64 * HIDDEN * 2));
    if (mnnvl_moe_a2a_combine(a2a, NULL, out, s) != MNNVL_ERR_INVALID_USAGE)
        return fprintf(stderr, "rank %d: combine before dispatch accepted\n", rank), 1;
    int32_t *ids;
    void *payload[NPAYLOADS];
    if (upload(&sc, rank, &ids, payload))
        return 1;
    int T = tokens_of(&sc, rank), R = runtime_r(&sc);
    if (mnnvl_moe_a2a_dispatch(a2a, ids, (const void *const *)payload, T, T - 1, s) !=
            MNNVL_ERR_INVALID_ARGUMENT ||
        mnnvl_moe_a2a_dispatch(a2a, ids, (const void *const *)payload, T, 65, s) !=
            MNNVL_ERR_INVALID_ARGUMENT)
        return fprintf(stderr, "rank %d: tokens > R or R > max accepted\n", rank), 1;
    /* Rank 1 disagrees on R. */
    if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids, (const void *const *)payload, T,
                                       rank == 1 ? R + 1 : R, s),
                rank, "dispatch"))
        return 1;
    if (mnnvl_moe_a2a_dispatch(a2a, ids, (const void *const *)payload, T, R, s) !=
        MNNVL_ERR_INVALID_USAGE)
        return fprintf(stderr, "rank %d: a second dispatch without combine accepted\n", rank), 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    mnnvl_status_t async = gpu_async_error(comm);
    if (async != MNNVL_ERR_MISMATCH) {
        fprintf(stderr, "rank %d: R mismatch gave async %s (%s), want MISMATCH\n", rank,
                mnnvl_status_string(async), mnnvl_last_error());
        return 1;
    }
    if (mnnvl_moe_a2a_combine(a2a, NULL, out, s) != MNNVL_ERR_ABORTED)
        return fprintf(stderr, "rank %d: combine after MISMATCH was not ABORTED\n", rank), 1;
    mnnvl_moe_a2a_destroy(a2a);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_STREAM_TESTS_2_AND_4(moe, wrong_sizes_and_usage, errors_body, 20000)

/* 1000 dispatch/combine rounds with varying token counts, then a captured graph replayed 100
 * times. The expert output is 1.0 everywhere, so a token's result is the number of ranks it
 * went to (exact in bf16). */
#define TABLES 8
#define R_FIXED 64
static int rounds_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    scenario_t sc = {size, 32, 4, R_FIXED, 0, -1, 0};
    mnnvl_moe_a2a_params_t p = params_of(&sc);
    mnnvl_moe_a2a_t a2a;
    if (mt_fail(mnnvl_moe_a2a_create(comm, &p, &a2a), rank, "create"))
        return 1;
    int32_t *ids[TABLES];
    void *payload[NPAYLOADS], *ones, *out;
    int32_t *h = malloc(R_FIXED * sc.top_k * 4);
    for (int i = 0; i < TABLES; i++) {
        sc.seed = 100 + (uint64_t)i;
        for (int t = 0; t < R_FIXED; t++)
            for (int k = 0; k < sc.top_k; k++)
                h[t * sc.top_k + k] = expert_of(&sc, rank, t, k);
        CUDA_OK(rank, cudaMalloc((void **)&ids[i], R_FIXED * sc.top_k * 4));
        CUDA_OK(rank, cudaMemcpy(ids[i], h, R_FIXED * sc.top_k * 4, cudaMemcpyHostToDevice));
    }
    for (int i = 0; i < NPAYLOADS; i++) {
        CUDA_OK(rank, cudaMalloc(&payload[i], R_FIXED * payload_bytes(&sc, i)));
        CUDA_OK(rank, cudaMemset(payload[i], 0x11, R_FIXED * payload_bytes(&sc, i)));
    }
    size_t rows = (size_t)size * R_FIXED;
    uint16_t *h_ones = malloc(rows * HIDDEN * 2);
    for (size_t i = 0; i < rows * HIDDEN; i++)
        h_ones[i] = 0x3f80; /* 1.0 */
    CUDA_OK(rank, cudaMalloc(&ones, rows * HIDDEN * 2));
    CUDA_OK(rank, cudaMemcpy(ones, h_ones, rows * HIDDEN * 2, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMalloc(&out, R_FIXED * HIDDEN * 2));
    CUDA_OK(rank, cudaDeviceSynchronize());
    uint16_t *got = malloc(R_FIXED * HIDDEN * 2);
    for (int round = 0; round < 1000; round++) {
        int table = round % TABLES;
        int T = (int)(mix((uint64_t)round * 977 + (uint64_t)rank) % (R_FIXED + 1));
        if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids[table], (const void *const *)payload, T,
                                           R_FIXED, s),
                    rank, "dispatch") ||
            mt_fail(mnnvl_moe_a2a_combine(a2a, ones, out, s), rank, "combine"))
            return 1;
        if (round % 100 != 99)
            continue;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        CUDA_OK(rank, cudaMemcpy(got, out, (size_t)T * HIDDEN * 2, cudaMemcpyDeviceToHost));
        sc.seed = 100 + (uint64_t)table;
        for (int t = 0; t < T; t++) {
            int want = 0;
            for (int d = 0; d < size; d++)
                want += goes_to(&sc, rank, t, d);
            for (int x = 0; x < HIDDEN; x++)
                if (bf16_to_f32(got[t * HIDDEN + x]) != (float)want)
                    return fprintf(stderr, "rank %d round %d: out[%d][%d] = %g, want %d\n", rank,
                                   round, t, x, bf16_to_f32(got[t * HIDDEN + x]), want),
                           1;
        }
    }
    /* The graph: one dispatch and one combine of 48 tokens, replayed 100 times with the
     * expert table changed between stretches of replays. */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    const int T = 48;
    CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids[0], (const void *const *)payload, T, R_FIXED, s),
                rank, "captured dispatch") ||
        mt_fail(mnnvl_moe_a2a_combine(a2a, ones, out, s), rank, "captured combine"))
        return 1;
    if (gpu_capture_end(rank, s, &graph, &exec))
        return 1;
    for (int replay = 0; replay < 100; replay++) {
        if (replay % 25 == 0) {
            CUDA_OK(rank, cudaStreamSynchronize(s));
            CUDA_OK(rank, cudaMemcpy(ids[0], ids[1 + replay / 25], R_FIXED * sc.top_k * 4,
                                     cudaMemcpyDeviceToDevice));
            CUDA_OK(rank, cudaDeviceSynchronize());
        }
        CUDA_OK(rank, cudaGraphLaunch(exec, s));
        if (replay % 25 != 24)
            continue;
        CUDA_OK(rank, cudaStreamSynchronize(s));
        CUDA_OK(rank, cudaMemcpy(got, out, (size_t)T * HIDDEN * 2, cudaMemcpyDeviceToHost));
        sc.seed = 100 + 1 + (uint64_t)(replay / 25);
        for (int t = 0; t < T; t++) {
            int want = 0;
            for (int d = 0; d < size; d++)
                want += goes_to(&sc, rank, t, d);
            if (bf16_to_f32(got[t * HIDDEN]) != (float)want)
                return fprintf(stderr, "rank %d replay %d: out[%d] = %g, want %d\n", rank, replay,
                               t, bf16_to_f32(got[t * HIDDEN]), want),
                       1;
        }
    }
    if (gpu_no_async_error(comm, rank))
        return 1;
    gpu_graph_destroy(graph, exec);
    mnnvl_moe_a2a_destroy(a2a);
    mnnvl_comm_destroy(comm);
    free(h), free(h_ones), free(got);
    return 0;
}

GPU_STREAM_TESTS_2_AND_4(moe, thousand_rounds_and_a_graph, rounds_body, 30000)
