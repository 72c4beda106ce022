/* Ranks as threads of one process, one communicator each, sharing the visible GPUs (rank r
 * on device r % GPUs): the second way lib/mnnvl.h allows ranks to share a device.
 *
 * Threads of one process share a device's CUDA context, so a context-wide synchronisation by
 * one thread (cudaDeviceSynchronize, cudaFree, a copy on the legacy stream) waits for the
 * kernels the other threads enqueued, and a collective kernel of theirs waits for this
 * thread's launch. The bodies therefore use non-blocking streams and pinned host memory
 * (a copy from pageable memory goes through the context's staging buffer, which one thread
 * can hold while its copy waits for its collective kernel, keeping another thread from
 * uploading the input its own collective needs: 4 thread ranks timed out so on the H200),
 * allocate before the first collective kernel and free after the last one behind a host
 * barrier, as the header asks of callers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_ranks.h"

MT_SUITE(threads, 120)

enum { MAX_THREADS = 8, ROUNDS = 50, COUNT = 4096 };

typedef struct thread_rank {
    const gpu_job_t *job;
    int rank, size;
    pthread_t tid;
    int result;
} thread_rank_t;

/* Every rank's piece of symmetric memory holds its pattern; every rank reads all of them. */
static uint32_t pattern(int rank, size_t i)
{
    return (uint32_t)rank << 24 ^ (uint32_t)(i * 2654435761u);
}

static int check_peers(mnnvl_comm_t comm, mnnvl_mem_t mem, size_t words, uint32_t *host,
                       cudaStream_t s)
{
    int rank = mnnvl_comm_rank(comm), size = mnnvl_comm_size(comm);
    for (size_t i = 0; i < words; i++)
        host[i] = pattern(rank, i);
    CUDA_OK(rank,
            cudaMemcpyAsync(mnnvl_mem_ptr(mem, rank), host, words * 4, cudaMemcpyHostToDevice, s));
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "barrier after writing"))
        return 1;
    int bad = 0;
    for (int p = 0; p < size && !bad; p++) {
        CUDA_OK(rank,
                cudaMemcpyAsync(host, mnnvl_mem_ptr(mem, p), words * 4, cudaMemcpyDeviceToHost, s));
        CUDA_OK(rank, cudaStreamSynchronize(s));
        for (size_t i = 0; i < words && !bad; i++)
            if (host[i] != pattern(p, i)) {
                fprintf(stderr, "rank %d: peer %d word %zu is %08x, want %08x\n", rank, p, i,
                        host[i], pattern(p, i));
                bad = 1;
            }
    }
    return bad;
}

/* ROUNDS fp32 all-reduces and device barriers on a non-blocking stream, each checked
 * exactly: rank r contributes r + 1 + round, so every element is size*(size+1)/2 +
 * size*round (small integers: exact in fp32 whatever the order). */
static int allreduce_rounds(mnnvl_comm_t comm, mnnvl_allreduce_t ar, float *in, float *out,
                            float *host, cudaStream_t s)
{
    int rank = mnnvl_comm_rank(comm), size = mnnvl_comm_size(comm);
    int bad = 0;
    for (int round = 0; round < ROUNDS && !bad; round++) {
        for (int i = 0; i < COUNT; i++)
            host[i] = (float)(rank + 1 + round);
        CUDA_OK(rank, cudaMemcpyAsync(in, host, sizeof(float) * COUNT, cudaMemcpyHostToDevice, s));
        CUDA_OK(rank, cudaMemsetAsync(out, 0xff, sizeof(float) * COUNT, s));
        if (mt_fail(mnnvl_allreduce(ar, in, out, COUNT, s), rank, "allreduce") ||
            mt_fail(mnnvl_comm_device_barrier(comm, s), rank, "device_barrier"))
            bad = 1;
        CUDA_OK(rank, cudaMemcpyAsync(host, out, sizeof(float) * COUNT, cudaMemcpyDeviceToHost, s));
        CUDA_OK(rank, cudaStreamSynchronize(s));
        float want = (float)(size * (size + 1) / 2 + size * round);
        for (int i = 0; i < COUNT && !bad; i++)
            if (host[i] != want) {
                fprintf(stderr, "rank %d: round %d element %d is %g, want %g\n", rank, round, i,
                        host[i], want);
                bad = 1;
            }
    }
    /* Also after a wrong result: a kernel that gave up on a peer says so here (TIMEOUT). */
    mnnvl_status_t async = MNNVL_SUCCESS;
    if (mnnvl_comm_get_async_error(comm, &async) != MNNVL_SUCCESS || async != MNNVL_SUCCESS) {
        fprintf(stderr, "rank %d: async error %s: %s\n", rank, mnnvl_status_string(async),
                mnnvl_last_error());
        bad = 1;
    }
    return bad;
}

static int thread_body(int rank, int size, const gpu_job_t *job)
{
    cudaStream_t s;
    mnnvl_comm_t comm = gpu_comm_stream(job, rank, size, &s);
    if (!comm)
        return 1;
    const size_t words = (1u << 20) / 4;
    mnnvl_mem_t mem = NULL;
    mnnvl_allreduce_t ar = NULL;
    float *in = NULL, *out = NULL, *host_f = NULL;
    uint32_t *host_u = NULL;
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    p.dtype = MNNVL_DTYPE_FP32;
    p.max_count = COUNT;
    int bad = mt_fail(mnnvl_mem_alloc(comm, words * 4, &mem), rank, "mem_alloc") ||
              mt_fail(mnnvl_allreduce_create(comm, &p, &ar), rank, "allreduce_create");
    if (!bad) {
        CUDA_OK(rank, cudaMalloc((void **)&in, sizeof(float) * COUNT));
        CUDA_OK(rank, cudaMalloc((void **)&out, sizeof(float) * COUNT));
        CUDA_OK(rank, cudaMallocHost((void **)&host_f, sizeof(float) * COUNT));
        CUDA_OK(rank, cudaMallocHost((void **)&host_u, words * 4));
    }
    /* Every thread has allocated and finished its setup before any collective kernel. */
    bad = bad || mt_fail(mnnvl_comm_barrier(comm), rank, "barrier after setup");
    bad = bad || check_peers(comm, mem, words, host_u, s) ||
          allreduce_rounds(comm, ar, in, out, host_f, s);
    /* Nobody frees (cudaFree synchronises the context) while a peer's kernel still runs. */
    mnnvl_comm_barrier(comm);
    cudaFree(in);
    cudaFree(out);
    cudaFreeHost(host_f);
    cudaFreeHost(host_u);
    mnnvl_allreduce_destroy(ar);
    mnnvl_mem_release(mem);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

static void *thread_main(void *arg)
{
    thread_rank_t *t = arg;
    t->result = thread_body(t->rank, t->size, t->job);
    return NULL;
}

/* The process of one test: `size` threads, each one rank. Returns how many failed. */
static int run_threads(int size, const gpu_job_t *job)
{
    thread_rank_t t[MAX_THREADS];
    for (int r = 0; r < size; r++) {
        t[r] = (thread_rank_t){.job = job, .rank = r, .size = size, .result = 1};
        if (pthread_create(&t[r].tid, NULL, thread_main, &t[r]) != 0)
            return size - r;
    }
    int failed = 0;
    for (int r = 0; r < size; r++) {
        pthread_join(t[r].tid, NULL);
        failed += t[r].result != 0;
    }
    return failed;
}

/* One forked process (mt_run_ranks' rank 0) runs every thread: the Criterion worker itself
 * must not initialise CUDA (mt_gpu_count and the other tests fork after it). */
static int process_body(int rank, int size, void *arg)
{
    (void)rank;
    (void)size;
    const gpu_job_t *job = arg;
    return run_threads(job->param, job);
}

MT_RANK_FN(process_body, gpu_job_t)

static void run_test(int threads)
{
    gpu_job_t job = {.timeout_ms = 30000, .param = threads};
    job.gpus = mt_gpus_for_ranks(threads);
    if (job.gpus == 0)
        return;
    mt_loopback_root(job.root, sizeof(job.root));
    int code = -1;
    int failed = mt_run_ranks(1, process_body, &job, 300, &code);
    cr_assert_eq(failed, 0, "the process of %d thread ranks exited with %d (see stderr above)",
                 threads, code);
}

Test(threads, symmem_allreduce_and_device_barrier_2_ranks)
{
    run_test(2);
}
Test(threads, symmem_allreduce_and_device_barrier_4_ranks)
{
    run_test(4);
}
