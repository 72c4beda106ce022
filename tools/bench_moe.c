/* mnnvl-bench moe: MoE dispatch and combine against NCCL all-to-all-v of exactly the same
 * (deduplicated) bytes, in the same run on the same GPUs. DeepSeek-V3-like shape: hidden
 * 7168, top_k 8 of 256 experts, a bf16 row plus int32 ids and fp32 weights dispatched, a bf16
 * row combined; uniform random routing.
 *
 * Each phase is captured with event-record nodes (cudaEventRecordExternal) around it in one
 * CUDA graph (dispatch, then combine;
 * NCCL's grouped sends/receives likewise), replayed after a device barrier, 20 times; the
 * median per phase of the slowest rank counts. The result is checked before timing. Remote
 * bytes per rank: for dispatch, the rows this rank sends to other ranks; for combine, the
 * rows it reads from them (a token's own-rank share moves no bytes over NVLink). */
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

#define HIDDEN 7168
#define TOP_K 8
#define EXPERTS 256
#define REPS 20
#define CASES 4
static const int token_cases[CASES] = {1, 128, 1024, 4096};
#define ROW_BYTES ((size_t)HIDDEN * 2)
#define DISPATCH_BYTES (ROW_BYTES + 2 * TOP_K * 4)

typedef struct moe_result {
    double dispatch_us[CASES], combine_us[CASES];
    double nccl_dispatch_us[CASES], nccl_combine_us[CASES];
    double dispatch_bytes[CASES], combine_bytes[CASES]; /* remote, this rank */
    char why[256];
} moe_result_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* TOP_K distinct experts per token, uniformly at random. */
static void route(int rank, int tokens, int32_t *ids)
{
    for (int t = 0; t < tokens; t++) {
        uint64_t h = mix((uint64_t)rank << 40 | (uint64_t)t);
        for (int k = 0; k < TOP_K; k++) {
            int e;
            for (;;) {
                h = mix(h + 0x9e3779b97f4a7c15ull);
                e = (int)(h % EXPERTS);
                int dup = 0;
                for (int j = 0; j < k; j++)
                    dup |= ids[t * TOP_K + j] == e;
                if (!dup)
                    break;
            }
            ids[t * TOP_K + k] = e;
        }
    }
}

/* Rows this rank sends to each rank (distinct ranks per token). */
static void row_counts(int size, int tokens, const int32_t *ids, int *to)
{
    const int per = EXPERTS / size;
    memset(to, 0, sizeof(int) * (size_t)size);
    for (int t = 0; t < tokens; t++) {
        unsigned long long ranks = 0;
        for (int k = 0; k < TOP_K; k++)
            ranks |= 1ull << (ids[t * TOP_K + k] / per);
        for (int d = 0; d < size; d++)
            to[d] += (int)(ranks >> d & 1ull);
    }
}

/* Median ms between consecutive events of `events` (n_events) over REPS replays. */
static void time_graph(mnnvl_comm_t comm, cudaGraphExec_t exec, cudaStream_t s, cudaEvent_t *ev,
                       double *phase_us, int phases)
{
    double t[4][REPS];
    for (int rep = -2; rep < REPS; rep++) {
        mnnvl_comm_device_barrier(comm, s);
        cudaGraphLaunch(exec, s);
        cudaStreamSynchronize(s);
        for (int p = 0; p < phases && rep >= 0; p++) {
            float ms = 0;
            cudaEventElapsedTime(&ms, ev[p], ev[p + 1]);
            t[p][rep] = ms * 1000.0;
        }
    }
    for (int p = 0; p < phases; p++) {
        qsort(t[p], REPS, sizeof(double), cmp_double);
        phase_us[p] = t[p][REPS / 2];
    }
}

static int rank_main(int rank, int size, const char *root, int use_nccl, moe_result_t *res)
{
    mnnvl_config_t cfg;
    mnnvl_config_create(&cfg);
    mnnvl_config_set(cfg, "root", root);
    mnnvl_config_set(cfg, "root_mode", "external");
    mnnvl_config_set(cfg, "timeout_ms", "30000");
    mnnvl_comm_t comm;
    if (mnnvl_comm_create(cfg, rank, size, rank, &comm) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "comm_create: %s", mnnvl_last_error());
        return 1;
    }
    mnnvl_config_destroy(cfg);
    cudaSetDevice(rank);
    const int max_tokens = token_cases[CASES - 1];
    mnnvl_moe_a2a_params_t p;
    mnnvl_moe_a2a_params_init(&p);
    p.ep_size = size;
    p.num_experts = EXPERTS;
    p.top_k = TOP_K;
    p.max_tokens_per_rank = max_tokens;
    p.num_payloads = 3;
    p.payload_bytes[0] = ROW_BYTES;
    p.payload_bytes[1] = p.payload_bytes[2] = TOP_K * 4;
    p.hidden = HIDDEN;
    p.combine_dtype = MNNVL_DTYPE_BF16;
    mnnvl_moe_a2a_t a2a;
    if (mnnvl_moe_a2a_create(comm, &p, &a2a) != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "moe_a2a_create: %s", mnnvl_last_error());
        return 1;
    }
    nccl_t nccl;
    void *nccl_comm = NULL;
    char why[256];
    if (use_nccl && bench_nccl_load(&nccl, why, sizeof(why)) == 0) {
        nccl_id_t id;
        if (rank == 0)
            nccl.get_unique_id(&id);
        mnnvl_comm_broadcast(comm, &id, sizeof(id), 0);
        if (nccl.init_rank(&nccl_comm, size, id, rank) != 0) {
            snprintf(res->why, sizeof(res->why), "ncclCommInitRank failed");
            return 1;
        }
    }
    int32_t *h_ids = malloc((size_t)max_tokens * TOP_K * 4), *d_ids;
    void *payload[3], *out, *send, *recv;
    size_t nccl_bytes = (size_t)max_tokens * size * DISPATCH_BYTES;
    cudaMalloc((void **)&d_ids, (size_t)max_tokens * TOP_K * 4);
    cudaMalloc(&payload[0], (size_t)max_tokens * ROW_BYTES);
    cudaMalloc(&payload[1], (size_t)max_tokens * TOP_K * 4);
    cudaMalloc(&payload[2], (size_t)max_tokens * TOP_K * 4);
    cudaMalloc(&out, (size_t)max_tokens * ROW_BYTES);
    cudaMalloc(&send, nccl_bytes);
    cudaMalloc(&recv, nccl_bytes);
    cudaMemset(payload[0], 0x3c, (size_t)max_tokens * ROW_BYTES);
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaEvent_t ev[3];
    for (int i = 0; i < 3; i++)
        cudaEventCreate(&ev[i]);
    int *to = calloc((size_t)size, sizeof(int)), *from = calloc((size_t)size * size, sizeof(int));
    uint16_t *h_out = malloc((size_t)max_tokens * ROW_BYTES);
    for (int c = 0; c < CASES; c++) {
        const int T = token_cases[c];
        route(rank, T, h_ids);
        cudaMemcpy(d_ids, h_ids, (size_t)T * TOP_K * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(payload[1], h_ids, (size_t)T * TOP_K * 4, cudaMemcpyHostToDevice);
        row_counts(size, T, h_ids, to);
        mnnvl_comm_allgather(comm, to, from, sizeof(int) * (size_t)size);
        res->dispatch_bytes[c] = res->combine_bytes[c] = 0;
        for (int d = 0; d < size; d++)
            if (d != rank) {
                res->dispatch_bytes[c] += (double)to[d] * DISPATCH_BYTES;
                res->combine_bytes[c] += (double)to[d] * ROW_BYTES;
            }
        /* Correctness: with 1.0 in every combine row, a token gets its number of ranks. */
        uint16_t *ones = malloc((size_t)size * T * ROW_BYTES);
        for (size_t i = 0; i < (size_t)size * T * HIDDEN; i++)
            ones[i] = 0x3f80;
        cudaDeviceSynchronize();
        mnnvl_moe_a2a_dispatch(a2a, d_ids, (const void *const *)payload, T, T, s);
        cudaStreamSynchronize(s);
        cudaMemcpy(mnnvl_moe_a2a_combine_buffer(a2a), ones, (size_t)size * T * ROW_BYTES,
                   cudaMemcpyHostToDevice);
        free(ones);
        cudaDeviceSynchronize();
        mnnvl_moe_a2a_combine(a2a, NULL, out, s);
        if (cudaStreamSynchronize(s) != cudaSuccess) {
            snprintf(res->why, sizeof(res->why), "CUDA error at %d tokens", T);
            return 1;
        }
        cudaMemcpy(h_out, out, (size_t)T * ROW_BYTES, cudaMemcpyDeviceToHost);
        for (int t = 0; t < T; t++) {
            unsigned long long ranks = 0;
            for (int k = 0; k < TOP_K; k++)
                ranks |= 1ull << (h_ids[t * TOP_K + k] / (EXPERTS / size));
            float want = (float)__builtin_popcountll(ranks);
            uint32_t u = (uint32_t)h_out[(size_t)t * HIDDEN + HIDDEN - 1] << 16;
            float got;
            memcpy(&got, &u, 4);
            if (got != want) {
                snprintf(res->why, sizeof(res->why), "token %d of %d: %g, want %g", t, T, got,
                         want);
                return 1;
            }
        }
        /* libmnnvl: [event, dispatch, event, combine (zero-copy), event] in one graph. */
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
        cudaEventRecordWithFlags(ev[0], s, cudaEventRecordExternal);
        mnnvl_moe_a2a_dispatch(a2a, d_ids, (const void *const *)payload, T, T, s);
        cudaEventRecordWithFlags(ev[1], s, cudaEventRecordExternal);
        mnnvl_moe_a2a_combine(a2a, NULL, out, s);
        cudaEventRecordWithFlags(ev[2], s, cudaEventRecordExternal);
        if (cudaStreamEndCapture(s, &graph) != cudaSuccess ||
            cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
            snprintf(res->why, sizeof(res->why), "graph capture failed: %s", mnnvl_last_error());
            return 1;
        }
        double us[2];
        time_graph(comm, exec, s, ev, us, 2);
        res->dispatch_us[c] = us[0];
        res->combine_us[c] = us[1];
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
        /* NCCL all-to-all-v of the same remote bytes: grouped sends and receives. */
        if (nccl_comm) {
            cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
            for (int phase = 0; phase < 2; phase++) {
                const size_t row = phase == 0 ? DISPATCH_BYTES : ROW_BYTES;
                cudaEventRecordWithFlags(ev[phase], s, cudaEventRecordExternal);
                nccl.group_start();
                size_t at_send = 0, at_recv = 0;
                for (int d = 0; d < size; d++) {
                    if (d == rank)
                        continue;
                    /* Dispatch sends what this rank routes to d; combine the reverse. */
                    size_t out_rows = phase == 0 ? (size_t)to[d] : (size_t)from[d * size + rank];
                    size_t in_rows = phase == 0 ? (size_t)from[d * size + rank] : (size_t)to[d];
                    nccl.send((char *)send + at_send, out_rows * row, NCCL_UINT8, d, nccl_comm, s);
                    nccl.recv((char *)recv + at_recv, in_rows * row, NCCL_UINT8, d, nccl_comm, s);
                    at_send += out_rows * row;
                    at_recv += in_rows * row;
                }
                nccl.group_end();
            }
            cudaEventRecordWithFlags(ev[2], s, cudaEventRecordExternal);
            if (cudaStreamEndCapture(s, &graph) != cudaSuccess ||
                cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
                snprintf(res->why, sizeof(res->why), "NCCL graph capture failed");
                return 1;
            }
            time_graph(comm, exec, s, ev, us, 2);
            res->nccl_dispatch_us[c] = us[0];
            res->nccl_combine_us[c] = us[1];
            cudaGraphExecDestroy(exec);
            cudaGraphDestroy(graph);
        }
        if (rank == 0)
            fprintf(stderr, "\rmnnvl-bench moe: EP %d, %d/%d token counts", size, c + 1, CASES);
    }
    if (rank == 0)
        fprintf(stderr, "\n");
    mnnvl_status_t async = MNNVL_SUCCESS;
    mnnvl_comm_get_async_error(comm, &async);
    if (async != MNNVL_SUCCESS) {
        snprintf(res->why, sizeof(res->why), "async error: %s", mnnvl_last_error());
        return 1;
    }
    if (nccl_comm)
        nccl.destroy(nccl_comm);
    mnnvl_moe_a2a_destroy(a2a);
    mnnvl_comm_barrier(comm);
    mnnvl_comm_destroy(comm);
    return 0;
}

typedef struct moe_job {
    int use_nccl;
    moe_result_t *results; /* one per rank, shared with the parent */
} moe_job_t;

static int moe_rank(int rank, int size, const char *root, void *arg)
{
    moe_job_t *job = arg;
    int rc = rank_main(rank, size, root, job->use_nccl, &job->results[rank]);
    if (rc)
        fprintf(stderr, "rank %d of %d: %s\n", rank, size, job->results[rank].why);
    return rc;
}

int bench_moe(int argc, char **argv)
{
    const char *json_path = "moe.json";
    int worlds[4], nworlds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--world") == 0 && i + 1 < argc && nworlds < 4)
            worlds[nworlds++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else {
            printf("usage: mnnvl-bench moe [--world N]... [--json FILE]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    char why[256] = "";
    int gpus = tool_gpu_count(why, sizeof(why));
    if (gpus < 2) {
        printf("mnnvl-bench moe: skipped: needs 2 GPUs, %d visible (%s)\n", gpus, why);
        return 0;
    }
    if (nworlds == 0)
        worlds[nworlds++] = gpus;
    nccl_t probe;
    int use_nccl = bench_nccl_load(&probe, why, sizeof(why)) == 0;
    if (!use_nccl)
        printf("NCCL: not loaded (%s); timing libmnnvl alone\n", why);
    FILE *json = fopen(json_path, "w");
    if (!json)
        return perror(json_path), 1;
    fprintf(json,
            "{\"benchmark\": \"moe\", \"hidden\": %d, \"top_k\": %d, \"experts\": %d, "
            "\"results\": [",
            HIDDEN, TOP_K, EXPERTS);
    int failed = 0;
    for (int w = 0; w < nworlds; w++) {
        const int n = worlds[w];
        if (n < 2 || n > gpus || EXPERTS % n != 0) {
            printf("mnnvl-bench moe: skipping EP %d\n", n);
            continue;
        }
        moe_job_t job = {.use_nccl = use_nccl,
                         .results = bench_shared_alloc(sizeof(moe_result_t) * (size_t)n)};
        moe_result_t *res = job.results;
        int bad = res ? bench_run_ranks(n, moe_rank, &job) : -1;
        if (bad) {
            failed = 1;
            continue;
        }
        mnnvl_moe_a2a_params_t p;
        mnnvl_moe_a2a_params_init(&p);
        p.ep_size = n, p.num_experts = EXPERTS, p.top_k = TOP_K;
        p.max_tokens_per_rank = token_cases[CASES - 1], p.num_payloads = 3;
        p.payload_bytes[0] = ROW_BYTES, p.payload_bytes[1] = p.payload_bytes[2] = TOP_K * 4;
        p.hidden = HIDDEN;
        printf("\nMoE all-to-all, EP %d, hidden %d, top_k %d of %d experts, bf16; workspace %.1f "
               "MiB per rank; slowest rank's median\n",
               n, HIDDEN, TOP_K, EXPERTS, mnnvl_moe_a2a_workspace_size(&p) / 1048576.0);
        printf("%7s | %9s %11s %9s %9s | %9s %11s %9s %9s | %8s\n", "tokens", "disp us",
               "remote MB", "GB/s", "NCCL us", "comb us", "remote MB", "GB/s", "NCCL us",
               "speedup");
        fprintf(json, "%s{\"ep\": %d, \"cases\": [", w ? ",\n" : "", n);
        for (int c = 0; c < CASES; c++) {
            double d_us = 0, c_us = 0, nd = 0, nc = 0, d_mb = 0, c_mb = 0;
            for (int r = 0; r < n; r++) {
                d_us = res[r].dispatch_us[c] > d_us ? res[r].dispatch_us[c] : d_us;
                c_us = res[r].combine_us[c] > c_us ? res[r].combine_us[c] : c_us;
                nd = res[r].nccl_dispatch_us[c] > nd ? res[r].nccl_dispatch_us[c] : nd;
                nc = res[r].nccl_combine_us[c] > nc ? res[r].nccl_combine_us[c] : nc;
                d_mb += res[r].dispatch_bytes[c] / n / 1e6;
                c_mb += res[r].combine_bytes[c] / n / 1e6;
            }
            double speedup = nd + nc > 0 ? (nd + nc) / (d_us + c_us) : 0;
            printf("%7d | %9.2f %11.2f %9.1f %9.2f | %9.2f %11.2f %9.1f %9.2f | %7.2fx\n",
                   token_cases[c], d_us, d_mb, d_mb * 1e3 / d_us, nd, c_us, c_mb, c_mb * 1e3 / c_us,
                   nc, speedup);
            fprintf(json,
                    "%s{\"tokens\": %d, \"dispatch_us\": %.3f, \"combine_us\": %.3f, "
                    "\"dispatch_remote_mb\": %.3f, \"combine_remote_mb\": %.3f, "
                    "\"nccl_dispatch_us\": %.3f, \"nccl_combine_us\": %.3f}",
                    c ? ", " : "", token_cases[c], d_us, c_us, d_mb, c_mb, nd, nc);
        }
        fprintf(json, "]}");
        bench_shared_free(res, sizeof(moe_result_t) * (size_t)n);
    }
    fprintf(json, "]}\n");
    fclose(json);
    return failed;
}

#else

int bench_moe(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("mnnvl-bench moe: skipped: libmnnvl was built without CUDA\n");
    return 0;
}

#endif
