/* The device-side barrier and the device-side safety net (timeout, abort, async error). */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "gpu_ranks.h"

MT_SUITE(device_barrier, 120)

static int check_no_async_error(mnnvl_comm_t comm, int rank)
{
    mnnvl_status_t async = MNNVL_ERR_INTERNAL;
    if (mt_fail(mnnvl_comm_get_async_error(comm, &async), rank, "get_async_error"))
        return 1;
    if (async != MNNVL_SUCCESS) {
        fprintf(stderr, "rank %d: async error %s: %s\n", rank, mnnvl_status_string(async),
                mnnvl_last_error());
        return 1;
    }
    return 0;
}

/* 1000 barriers back to back, then a skew check: the last rank arrives 300 ms late, so every
 * other rank's barrier must take about that long. */
static int many_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    for (int i = 0; i < 1000; i++)
        if (mt_fail(mnnvl_comm_device_barrier(comm, s), rank, "device_barrier"))
            return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (check_no_async_error(comm, rank))
        return 1;
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "host barrier"))
        return 1;
    if (rank == size - 1)
        usleep(300 * 1000);
    uint64_t t0 = mnnvl_now_ms();
    if (mt_fail(mnnvl_comm_device_barrier(comm, s), rank, "device_barrier"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    uint64_t waited = mnnvl_now_ms() - t0;
    if (rank != size - 1 && waited < 200) {
        fprintf(stderr,
                "rank %d: barrier returned after %llu ms although rank %d came 300 ms "
                "late\n",
                rank, (unsigned long long)waited, size - 1);
        return 1;
    }
    int bad = check_no_async_error(comm, rank);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(device_barrier, thousand_in_a_row, many_body, 20000)

/* Ten barriers captured once, replayed 100 times; the epoch advances on the device, so each
 * replay is a real barrier (checked with a late rank on the last replay). */
static int graph_body(mnnvl_comm_t comm, cudaStream_t s, int rank, int size, const gpu_job_t *job)
{
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(rank, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 10; i++)
        if (mt_fail(mnnvl_comm_device_barrier(comm, s), rank, "device_barrier in capture"))
            return 1;
    if (gpu_capture_end(rank, s, &graph, &exec))
        return 1;
    for (int i = 0; i < 100; i++)
        CUDA_OK(rank, cudaGraphLaunch(exec, s));
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (check_no_async_error(comm, rank) || mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    if (rank == 0)
        usleep(300 * 1000);
    uint64_t t0 = mnnvl_now_ms();
    CUDA_OK(rank, cudaGraphLaunch(exec, s));
    CUDA_OK(rank, cudaStreamSynchronize(s));
    if (rank != 0 && mnnvl_now_ms() - t0 < 200) {
        fprintf(stderr, "rank %d: replay did not wait for the late rank 0\n", rank);
        return 1;
    }
    int bad = check_no_async_error(comm, rank);
    gpu_graph_destroy(graph, exec);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_STREAM_TESTS_2_AND_4(device_barrier, captured_graph_replayed_100_times, graph_body, 20000)

/* After a host barrier, rank `idle` sleeps idle_ms and destroys its communicator without
 * joining the device barrier that the others enqueue on a new non-blocking stream *s, at time
 * *t0. Returns -1 on rank `idle`, 1 on a failure, 0 when the barrier is enqueued. */
static int barrier_without(mnnvl_comm_t comm, int rank, int idle, long idle_ms, cudaStream_t *s,
                           uint64_t *t0)
{
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "host barrier"))
        return 1;
    if (rank == idle) {
        gpu_sleep_ms(idle_ms);
        mnnvl_comm_destroy(comm);
        return -1;
    }
    CUDA_OK(rank, cudaStreamCreateWithFlags(s, cudaStreamNonBlocking));
    *t0 = mnnvl_now_ms();
    if (mt_fail(mnnvl_comm_device_barrier(comm, *s), rank, "device_barrier"))
        return 1;
    return 0;
}

/* The last rank never calls the barrier. The others' kernels give up after timeout_ms,
 * record TIMEOUT naming that peer, and the process stays usable: no trap, a later
 * cudaMemcpy works, and the communicator answers ABORTED from then on. */
static int skip_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    cudaStream_t s;
    uint64_t t0;
    int started = barrier_without(comm, rank, size - 1, gpu_past_timeout_ms(job), &s, &t0);
    if (started != 0)
        return started < 0 ? 0 : 1;
    cudaError_t sync = cudaStreamSynchronize(s);
    uint64_t took = mnnvl_now_ms() - t0;
    if (sync != cudaSuccess) {
        fprintf(stderr, "rank %d: the timed-out kernel broke the context: %s\n", rank,
                cudaGetErrorString(sync));
        return 1;
    }
    mnnvl_status_t async = gpu_async_error(comm);
    char expect_peer[32];
    snprintf(expect_peer, sizeof(expect_peer), "peer %d", size - 1);
    if (async != MNNVL_ERR_TIMEOUT || !strstr(mnnvl_last_error(), expect_peer)) {
        fprintf(stderr, "rank %d: async error %s (%s), want TIMEOUT naming %s\n", rank,
                mnnvl_status_string(async), mnnvl_last_error(), expect_peer);
        return 1;
    }
    /* The communicator's timeout as gpu_comm set it (scaled in sanitizer runs). */
    const uint64_t bound = (uint64_t)gpu_timeout_ms(job);
    if (took + 100 < bound || took > bound + 3000) {
        fprintf(stderr, "rank %d: kernel gave up after %llu ms with timeout_ms %llu\n", rank,
                (unsigned long long)took, (unsigned long long)bound);
        return 1;
    }
    int probe = 42, back = 0;
    void *dev = NULL;
    CUDA_OK(rank, cudaMalloc(&dev, 4));
    CUDA_OK(rank, cudaMemcpy(dev, &probe, 4, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemcpy(&back, dev, 4, cudaMemcpyDeviceToHost));
    cudaFree(dev);
    if (back != 42)
        return fprintf(stderr, "rank %d: memcpy after the timeout returned %d\n", rank, back), 1;
    if (mnnvl_comm_device_barrier(comm, s) != MNNVL_ERR_ABORTED) {
        fprintf(stderr, "rank %d: a call after the async error was not ABORTED\n", rank);
        return 1;
    }
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_TESTS_2_AND_4(device_barrier, missing_rank_times_out_without_trap, skip_body, 5000)

/* A host abort stops a kernel that waits for a peer, long before the timeout. */
static int abort_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm)
        return 1;
    cudaStream_t s;
    uint64_t t0;
    int started = barrier_without(comm, rank, 1, 2500, &s, &t0);
    if (started != 0)
        return started < 0 ? 0 : 1;
    usleep(200 * 1000);
    mnnvl_comm_abort(comm);
    CUDA_OK(rank, cudaStreamSynchronize(s));
    uint64_t took = mnnvl_now_ms() - t0;
    mnnvl_status_t async = gpu_async_error(comm);
    if (async != MNNVL_ERR_ABORTED || took > 1500) {
        fprintf(stderr, "rank %d: after abort: async %s, kernel ran %llu ms\n", rank,
                mnnvl_status_string(async), (unsigned long long)took);
        return 1;
    }
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_TEST(device_barrier, abort_stops_a_waiting_kernel, 2, abort_body, 20000)
