/* Fault tolerance on real GPUs, ranks sharing them: one rank (the last: rank 0 hosts the tcp
 * root) dies by SIGKILL, or stops by SIGSTOP, in the middle of a loop, and the survivors
 * must go on.
 * - MoE (fault_tolerant): the survivors finish the round in which it died and 100 more, eager
 *   or replaying a graph captured before the death; every output equals the host reference
 *   over the ranks whose contributions the lost-token flags say arrived (and those flags are
 *   exactly the tokens routed to the victim from the death on).
 * - all-reduce and DCP (fault_tolerant): PEER_LOST on every survivor within about a second,
 *   naming the victim, no CUDA error (no trap), the output untouched, and later calls just as
 *   prompt.
 * - memory a dead process exported: the survivors read and write its mapped piece after it
 *   died, and report what the driver does.
 * The stopped victim is killed by rank 0 at the end (its pid comes from an allgather). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "gpu_ranks.h"

MT_SUITE(fault, 600)

#define HIDDEN 256
#define TOKENS 48
#define TOP_K 2
#define DEATH_ROUND 20
#define MORE_ROUNDS 100
#define PEER_TIMEOUT_MS 1000

enum { MODE_GRAPH = 1, MODE_STOP = 2 };

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x ^ (x >> 29);
}

static float bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16); /* exact for the small integers used here */
}

/* Expert k of token t of rank s: num_experts = 2 * size, so owner = expert / 2. */
static int32_t expert_of(int size, int s, int t, int k)
{
    int32_t e =
        (int32_t)(mix((uint64_t)s * 7919 + (uint64_t)t * 31 + (uint64_t)k) % (uint64_t)(2 * size));
    if (k == 1 &&
        e / 2 == (int)(mix((uint64_t)s * 7919 + (uint64_t)t * 31) % (uint64_t)(2 * size)) / 2)
        e = (e + 2) % (2 * size); /* mostly two different ranks */
    return e;
}

static int goes_to(int size, int s, int t, int d)
{
    for (int k = 0; k < TOP_K; k++)
        if (expert_of(size, s, t, k) / 2 == d)
            return 1;
    return 0;
}

/* Every rank's pid, so rank 0 can end a stopped victim. */
static int gather_pids(mnnvl_comm_t comm, int rank, int32_t *pids)
{
    int32_t mine = (int32_t)getpid();
    return mt_fail(mnnvl_comm_allgather(comm, &mine, pids, sizeof(mine)), rank, "pid allgather");
}

static void die(int mode)
{
    raise(mode & MODE_STOP ? SIGSTOP : SIGKILL);
}

/* Checks one round's output and lost flags on a survivor. `dead`: the victim is dead in
 * this round (from the death round on, in which it never combines): exactly the tokens
 * routed to it are flagged, and their sums leave it out. Earlier, nothing is flagged, also
 * in the round before, which the victim finished: a survivor may learn of the death while
 * its kernels of that round still run (liveness takes milliseconds; the survivors can trail
 * by a round), but what the victim sent had arrived, and a wait that sees the death looks at
 * the data once more before it gives up (kernels/fault.cuh). */
static int check_round(int rank, int size, int victim, int round, int dead, const uint16_t *out,
                       const uint8_t *lost)
{
    for (int t = 0; t < TOKENS; t++) {
        int to_victim = goes_to(size, rank, t, victim);
        if (lost[t] > 1 || (lost[t] && (!to_victim || !dead)) || (dead && to_victim && !lost[t]))
            return fprintf(stderr,
                           "rank %d round %d: token %d lost=%d, routed to the victim %d: %d\n",
                           rank, round, t, lost[t], victim, to_victim),
                   1;
        float want = 0.f;
        for (int d = 0; d < size; d++)
            if (goes_to(size, rank, t, d) && !(d == victim && lost[t]))
                want += (float)(1 << d);
        for (int h = 0; h < HIDDEN; h++)
            if (bf16_to_f32(out[t * HIDDEN + h]) != want)
                return fprintf(stderr, "rank %d round %d: out[%d][%d] = %g, want %g (lost %d)\n",
                               rank, round, t, h, bf16_to_f32(out[t * HIDDEN + h]), want, lost[t]),
                       1;
    }
    return 0;
}

/* The victim's expectation of its survivors' record: it, for the right reason. */
static int check_failed(mnnvl_comm_t comm, int rank, int victim, int mode)
{
    mnnvl_rank_failure_t list[4];
    int n = 0;
    if (mt_fail(mnnvl_comm_failed_ranks(comm, list, 4, &n), rank, "failed_ranks"))
        return 1;
    mnnvl_failure_reason_t want =
        mode & MODE_STOP ? MNNVL_FAILURE_PEER_TIMEOUT : MNNVL_FAILURE_CONNECTION;
    if (n != 1 || list[0].rank != victim || list[0].reason != want)
        return fprintf(stderr,
                       "rank %d: failed_ranks lists %d ranks (first %d, reason %d), want rank %d "
                       "reason %d\n",
                       rank, n, n ? list[0].rank : -1, n ? (int)list[0].reason : -1, victim,
                       (int)want),
               1;
    mnnvl_status_t async = gpu_async_error(comm);
    char name[32];
    snprintf(name, sizeof(name), "rank %d", victim);
    if (async != MNNVL_ERR_PEER_LOST || !strstr(mnnvl_last_error(), name))
        return fprintf(stderr, "rank %d: async error %s (%s), want PEER_LOST naming %s\n", rank,
                       mnnvl_status_string(async), mnnvl_last_error(), name),
               1;
    return 0;
}

static int moe_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    const int mode = job->param, victim = size - 1;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    int32_t pids[64];
    if (gather_pids(comm, rank, pids))
        return 1;
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    mnnvl_moe_a2a_params_t p;
    mnnvl_moe_a2a_params_init(&p);
    p.ep_size = size;
    p.num_experts = 2 * size;
    p.top_k = TOP_K;
    p.max_tokens_per_rank = TOKENS;
    p.num_payloads = 1;
    p.payload_bytes[0] = HIDDEN * 2;
    p.hidden = HIDDEN;
    p.combine_dtype = MNNVL_DTYPE_BF16;
    p.fault_tolerant = 1;
    p.peer_timeout_ms = PEER_TIMEOUT_MS * mt_time_scale();
    mnnvl_moe_a2a_t a2a;
    if (mt_fail(mnnvl_moe_a2a_create(comm, &p, &a2a), rank, "create"))
        return 1;
    if (!mnnvl_moe_a2a_lost_tokens(a2a))
        return fprintf(stderr, "rank %d: no lost-token flags on a fault-tolerant handle\n", rank),
               1;
    int32_t h_ids[TOKENS * TOP_K], *ids;
    for (int t = 0; t < TOKENS; t++)
        for (int k = 0; k < TOP_K; k++)
            h_ids[t * TOP_K + k] = expert_of(size, rank, t, k);
    CUDA_OK(rank, cudaMalloc((void **)&ids, sizeof(h_ids)));
    CUDA_OK(rank, cudaMemcpy(ids, h_ids, sizeof(h_ids), cudaMemcpyHostToDevice));
    void *payload, *expert, *out;
    CUDA_OK(rank, cudaMalloc(&payload, TOKENS * HIDDEN * 2));
    CUDA_OK(rank, cudaMemset(payload, 0, TOKENS * HIDDEN * 2));
    /* This rank's expert output is 2^rank everywhere: a token's sum names its ranks. */
    size_t rows = (size_t)size * TOKENS;
    uint16_t *h_expert = malloc(rows * HIDDEN * 2), *got = malloc(TOKENS * HIDDEN * 2);
    for (size_t i = 0; i < rows * HIDDEN; i++)
        h_expert[i] = f32_to_bf16((float)(1 << rank));
    CUDA_OK(rank, cudaMalloc(&expert, rows * HIDDEN * 2));
    CUDA_OK(rank, cudaMemcpy(expert, h_expert, rows * HIDDEN * 2, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMalloc(&out, TOKENS * HIDDEN * 2));
    CUDA_OK(rank, cudaDeviceSynchronize());
    const void *const payloads[1] = {payload};

    cudaGraphExec_t exec = NULL;
    if (mode & MODE_GRAPH) { /* captured before anything failed */
        cudaGraph_t graph;
        CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids, payloads, TOKENS, TOKENS, s), rank,
                    "captured dispatch") ||
            mt_fail(mnnvl_moe_a2a_combine(a2a, expert, out, s), rank, "captured combine"))
            return 1;
        if (gpu_capture_end(rank, s, &graph, &exec))
            return 1;
        cudaGraphDestroy(graph);
    }
    uint8_t lost[TOKENS];
    for (int round = 0; round <= DEATH_ROUND + MORE_ROUNDS; round++) {
        uint64_t t0 = mnnvl_now_ms();
        if (exec) {
            if (rank == victim && round == DEATH_ROUND)
                die(mode); /* between two replays */
            CUDA_OK(rank, cudaGraphLaunch(exec, s));
        } else {
            if (mt_fail(mnnvl_moe_a2a_dispatch(a2a, ids, payloads, TOKENS, TOKENS, s), rank,
                        "dispatch"))
                return 1;
            if (rank == victim && round == DEATH_ROUND) {
                CUDA_OK(rank, cudaStreamSynchronize(s));
                die(mode); /* dispatched, never combines */
            }
            if (mt_fail(mnnvl_moe_a2a_combine(a2a, expert, out, s), rank, "combine"))
                return 1;
        }
        CUDA_OK(rank, cudaStreamSynchronize(s));
        uint64_t took = mnnvl_now_ms() - t0;
        CUDA_OK(rank, cudaMemcpy(got, out, TOKENS * HIDDEN * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(rank,
                cudaMemcpy(lost, mnnvl_moe_a2a_lost_tokens(a2a), TOKENS, cudaMemcpyDeviceToHost));
        if (check_round(rank, size, victim, round, round >= DEATH_ROUND, got, lost))
            return 1;
        /* The death round: within the per-peer bound (SIGSTOP) or far less (SIGKILL). */
        if (round == DEATH_ROUND && took > (uint64_t)(3 * PEER_TIMEOUT_MS * mt_time_scale()))
            return fprintf(stderr, "rank %d: the death round took %llu ms\n", rank,
                           (unsigned long long)took),
                   1;
        if (round > DEATH_ROUND && took > (uint64_t)(PEER_TIMEOUT_MS * 9 / 10 * mt_time_scale()))
            return fprintf(stderr,
                           "rank %d round %d took %llu ms: the dead rank is waited for again\n",
                           rank, round, (unsigned long long)took),
                   1;
    }
    if (check_failed(comm, rank, victim, mode))
        return 1;
    if (rank == 0 && (mode & MODE_STOP))
        kill(pids[victim], SIGKILL);
    if (exec)
        cudaGraphExecDestroy(exec);
    mnnvl_moe_a2a_destroy(a2a);
    mnnvl_comm_destroy(comm);
    free(h_expert), free(got);
    return 0;
}

/* all-reduce (param bit 2: two-shot) or DCP (bit 3) with a killed rank. */
enum { OP_TWOSHOT = 4, OP_DCP = 8 };
#define AR_COUNT (64 * 1024)
#define DCP_ENTRIES 64
#define DCP_HEAD 128

/* Output word i's bits (memcpy: reading a float through a uint32_t pointer breaks aliasing). */
static uint32_t out_word(const float *out, size_t i)
{
    uint32_t w;
    memcpy(&w, &out[i], sizeof(w));
    return w;
}

static int collective_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    const int victim = size - 1, dcp = job->param & OP_DCP;
    cudaStream_t s;
    mnnvl_comm_t comm = gpu_comm_stream(job, rank, size, &s);
    if (!comm)
        return 1;
    mnnvl_allreduce_t ar = NULL;
    mnnvl_dcp_a2a_t d = NULL;
    size_t in_bytes, out_bytes;
    if (dcp) {
        mnnvl_dcp_a2a_params_t p;
        mnnvl_dcp_a2a_params_init(&p);
        p.cp_size = size;
        p.max_entries = DCP_ENTRIES;
        p.head_dim = DCP_HEAD;
        p.fault_tolerant = 1;
        p.peer_timeout_ms = PEER_TIMEOUT_MS * mt_time_scale();
        if (mt_fail(mnnvl_dcp_a2a_create(comm, &p, &d), rank, "dcp create"))
            return 1;
        in_bytes = out_bytes = (size_t)DCP_ENTRIES * size * DCP_HEAD * 2;
    } else {
        mnnvl_allreduce_params_t p;
        mnnvl_allreduce_params_init(&p);
        p.dtype = MNNVL_DTYPE_FP32;
        p.max_count = AR_COUNT;
        p.strategy = job->param & OP_TWOSHOT ? MNNVL_ALLREDUCE_TWOSHOT : MNNVL_ALLREDUCE_ONESHOT;
        p.fault_tolerant = 1;
        p.peer_timeout_ms = PEER_TIMEOUT_MS * mt_time_scale();
        if (mt_fail(mnnvl_allreduce_create(comm, &p, &ar), rank, "allreduce create"))
            return 1;
        in_bytes = out_bytes = AR_COUNT * 4;
    }
    float *h_in = malloc(in_bytes), *h_out = malloc(out_bytes);
    for (size_t i = 0; i < in_bytes / 4; i++)
        h_in[i] = (float)(rank + 1);
    void *in, *out, *stats, *out_stats;
    CUDA_OK(rank, cudaMalloc(&in, in_bytes));
    CUDA_OK(rank, cudaMalloc(&out, out_bytes));
    size_t stats_bytes = (size_t)DCP_ENTRIES * size * 2 * 4;
    CUDA_OK(rank, cudaMalloc(&stats, stats_bytes));
    CUDA_OK(rank, cudaMalloc(&out_stats, stats_bytes));
    CUDA_OK(rank, cudaMemcpy(in, h_in, in_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemset(stats, 0, stats_bytes));
    for (int call = 0; call < 8; call++) {
        if (rank == victim && call == 3)
            raise(SIGKILL);
        CUDA_OK(rank, cudaMemset(out, 0xff, out_bytes)); /* NaN: "not written" */
        CUDA_OK(rank, cudaDeviceSynchronize());
        uint64_t t0 = mnnvl_now_ms();
        mnnvl_status_t st = dcp ? mnnvl_dcp_a2a(d, in, stats, DCP_ENTRIES, out, out_stats, s)
                                : mnnvl_allreduce(ar, in, out, AR_COUNT, s);
        if (mt_fail(st, rank, "call (the host side lets fault-tolerant calls through)"))
            return 1;
        CUDA_OK(rank, cudaStreamSynchronize(s)); /* a trap would fail this */
        uint64_t took = mnnvl_now_ms() - t0;
        CUDA_OK(rank, cudaMemcpy(h_out, out, out_bytes, cudaMemcpyDeviceToHost));
        mnnvl_status_t async = gpu_async_error(comm);
        char name[32];
        snprintf(name, sizeof(name), "rank %d", victim);
        /* Call 2 is the victim's last: a survivor may already know of its death when that
         * call ends (PEER_LOST naming it, from the liveness watcher), but everything the
         * victim sent in it had arrived before it died, so the output is the whole sum. A
         * wait that saw the death before the victim's data (the survivor was off the GPU
         * in between) looks again before it gives up (kernels/fault.cuh). */
        int late = call == 2 && async == MNNVL_ERR_PEER_LOST && strstr(mnnvl_last_error(), name);
        if (call < 3 && (async == MNNVL_SUCCESS || late)) {
            /* DCP's values are test_dcp's business; the all-reduce sum is checked here. */
            const float want = (float)(size * (size + 1) / 2);
            size_t blank = 0, wrong = 0, first_bad = 0;
            for (size_t i = 0; !dcp && i < out_bytes / 4; i++) {
                if (h_out[i] == want)
                    continue;
                if (blank + wrong == 0)
                    first_bad = i;
                if (out_word(h_out, i) == 0xffffffffu)
                    blank++; /* the NaN pattern: not written */
                else
                    wrong++;
            }
            if (blank || wrong)
                return fprintf(stderr,
                               "rank %d call %d (status %s%s): %zu of %zu words not written, %zu "
                               "wrong, the first bad one out[%zu] = %g, want %g; %s\n",
                               rank, call, mnnvl_status_string(async), late ? ", late" : "", blank,
                               out_bytes / 4, wrong, first_bad, h_out[first_bad], want,
                               async ? mnnvl_last_error() : "no error"),
                       1;
            continue;
        }
        if (call < 3)
            return fprintf(stderr, "rank %d call %d: async %s\n", rank, call, mnnvl_last_error()),
                   1;
        if (async != MNNVL_ERR_PEER_LOST || !strstr(mnnvl_last_error(), name))
            return fprintf(stderr, "rank %d call %d: async %s (%s), want PEER_LOST naming %s\n",
                           rank, call, mnnvl_status_string(async), mnnvl_last_error(), name),
                   1;
        if (took > (uint64_t)(2 * PEER_TIMEOUT_MS * mt_time_scale()))
            return fprintf(stderr, "rank %d call %d: took %llu ms\n", rank, call,
                           (unsigned long long)took),
                   1;
        /* Nothing that looks like a result: every word still the NaN pattern. */
        for (size_t i = 0; i < out_bytes / 4; i++)
            if (out_word(h_out, i) != 0xffffffffu)
                return fprintf(
                           stderr,
                           "rank %d call %d: out word %zu was written (0x%08x) after the loss\n",
                           rank, call, i, out_word(h_out, i)),
                       1;
    }
    /* The process stays usable: a plain allocation and copy still work. */
    void *probe;
    CUDA_OK(rank, cudaMalloc(&probe, 4096));
    CUDA_OK(rank, cudaMemset(probe, 0, 4096));
    CUDA_OK(rank, cudaDeviceSynchronize());
    cudaFree(probe);
    if (d)
        mnnvl_dcp_a2a_destroy(d);
    if (ar)
        mnnvl_allreduce_destroy(ar);
    mnnvl_comm_destroy(comm);
    free(h_in), free(h_out);
    return 0;
}

/* The memory of a dead exporter: rank `victim` fills its piece of a symmetric allocation,
 * then dies; the survivors wait until the bootstrap told them, give the driver time to tear
 * the victim's context down, then copy its piece to the host, check the pattern, write it,
 * and run more work. Every CUDA status is printed ("dead-exporter: ..."), for the record. */
static int exporter_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    const int victim = size - 1;
    const size_t bytes = 2u << 20;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    mnnvl_mem_t mem;
    if (mt_fail(mnnvl_mem_alloc(comm, bytes, &mem), rank, "mem_alloc"))
        return 1;
    CUDA_OK(rank, cudaMemset(mnnvl_mem_ptr(mem, rank), 0x40 + rank, bytes));
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    if (rank == victim)
        raise(SIGKILL);
    int n = 0;
    uint64_t t0 = mnnvl_now_ms();
    while (n == 0 && mnnvl_now_ms() - t0 < 5000) {
        usleep(10 * 1000);
        mnnvl_comm_failed_ranks(comm, NULL, 0, &n);
    }
    if (n == 0)
        return fprintf(stderr, "rank %d: the victim's death was not reported\n", rank), 1;
    nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
    unsigned char *h = malloc(bytes);
    cudaError_t read = cudaMemcpy(h, mnnvl_mem_ptr(mem, victim), bytes, cudaMemcpyDeviceToHost);
    size_t intact = 0;
    for (size_t i = 0; read == cudaSuccess && i < bytes; i++)
        intact += h[i] == 0x40 + victim;
    cudaError_t write = cudaMemset(mnnvl_mem_ptr(mem, victim), 0x11, bytes);
    cudaError_t sync = cudaDeviceSynchronize();
    cudaError_t again = cudaMemcpy(h, mnnvl_mem_ptr(mem, rank), bytes, cudaMemcpyDeviceToHost);
    fprintf(stderr,
            "dead-exporter: rank %d read the dead rank %d's piece: %s (%zu of %zu bytes intact); "
            "write: %s; sync: %s; own piece afterwards: %s (%s)\n",
            rank, victim, cudaGetErrorString(read), intact, bytes, cudaGetErrorString(write),
            cudaGetErrorString(sync), cudaGetErrorString(again),
            again == cudaSuccess && h[0] == 0x40 + rank ? "intact" : "changed");
    free(h);
    int rc =
        read != cudaSuccess || write != cudaSuccess || sync != cudaSuccess || again != cudaSuccess;
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(comm);
    return rc;
}

MT_RANK_FN(moe_body, gpu_job_t)
MT_RANK_FN(collective_body, gpu_job_t)
MT_RANK_FN(exporter_body, gpu_job_t)

/* Runs `fn` as `size` ranks with `param`; the last rank must end by SIGKILL, the rest with 0. */
static void run_with_victim(int size, mt_rank_fn fn, int param)
{
    gpu_job_t job = {.timeout_ms = 30000, .param = param};
    int codes[16];
    if (gpu_run_ranks(&job, size, fn, 300, codes) < 0)
        return;
    for (int r = 0; r < size; r++) {
        if (r == size - 1)
            cr_expect(gpu_killed(codes[r]), "rank %d exited with %d, not by SIGKILL", r, codes[r]);
        else
            cr_expect_eq(codes[r], 0, "rank %d exited with %d", r, codes[r]);
    }
}

/* The test fault::name: run_with_victim(size, fn, param). */
#define VICTIM_TEST(name, size, fn, param) \
    Test(fault, name)                      \
    {                                      \
        run_with_victim(size, fn, param);  \
    }

VICTIM_TEST(moe_sigkill_eager_4_ranks, 4, moe_body, 0)
VICTIM_TEST(moe_sigkill_graph_4_ranks, 4, moe_body, MODE_GRAPH)
VICTIM_TEST(moe_sigstop_eager_4_ranks, 4, moe_body, MODE_STOP)
VICTIM_TEST(moe_sigstop_graph_4_ranks, 4, moe_body, MODE_GRAPH | MODE_STOP)
VICTIM_TEST(moe_sigkill_eager_3_ranks, 3, moe_body, 0)
VICTIM_TEST(allreduce_oneshot_sigkill_4_ranks, 4, collective_body, 0)
VICTIM_TEST(allreduce_twoshot_sigkill_4_ranks, 4, collective_body, OP_TWOSHOT)
VICTIM_TEST(dcp_sigkill_4_ranks, 4, collective_body, OP_DCP)
VICTIM_TEST(dead_exporter_memory_2_ranks, 2, exporter_body, 0)
VICTIM_TEST(dead_exporter_memory_4_ranks, 4, exporter_body, 0)
