/* Shared by the GPU tests: one process per rank, rank r on device r % (visible GPUs), bootstrapped
 * over TCP on loopback. */
#ifndef MNNVL_GPU_RANKS_H
#define MNNVL_GPU_RANKS_H

#include <cuda_runtime.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

typedef struct gpu_job {
    char root[64];
    int timeout_ms;
    int param; /* test-specific */
    int gpus;  /* visible GPUs; rank r uses device r % gpus */
} gpu_job_t;

/* The device of `rank`: rank % job->gpus, so ranks share GPUs when there are fewer. */
static inline int gpu_device(const gpu_job_t *job, int rank)
{
    return rank % (job->gpus > 0 ? job->gpus : 1);
}

/* The timeout_ms of job's communicators: job's, scaled by mt_time_scale. */
static inline int gpu_timeout_ms(const gpu_job_t *job)
{
    return job->timeout_ms * mt_time_scale();
}

/* How long a rank that stops calling sleeps: past the communicators' timeout, so that the
 * others time out while it still lives. A shorter sleep would end the rank first, and they
 * would see its death (PEER_LOST from the liveness watcher) instead of the TIMEOUT under
 * test. */
static inline long gpu_past_timeout_ms(const gpu_job_t *job)
{
    return (long)gpu_timeout_ms(job) + 1500;
}

/* Sleeps ms milliseconds, also across signals (usleep's unsigned microseconds overflow past
 * about 71 minutes, and it may refuse a second or more). */
static inline void gpu_sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, ms % 1000 * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

/* The configuration of job's communicators: tcp on job's root, the GPU tests' job key,
 * gpu_timeout_ms. */
static inline mnnvl_config_t gpu_config(const gpu_job_t *job)
{
    return mt_config(job->root, "gpu-test-key-0123456789abcdef0123456789", gpu_timeout_ms(job));
}

/* Creates rank's communicator on gpu_device(job, rank), or prints why not and returns NULL. */
static inline mnnvl_comm_t gpu_comm(const gpu_job_t *job, int rank, int size)
{
    int device = gpu_device(job, rank);
    /* CUDA's start (seconds when many processes share a GPU) happens before the bootstrap's
     * clock runs, so a short timeout_ms measures the behaviour under test, not the start. */
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(NULL) != cudaSuccess) {
        fprintf(stderr, "rank %d: CUDA did not start on device %d\n", rank, device);
        return NULL;
    }
    mnnvl_config_t cfg = gpu_config(job);
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, device, &comm);
    mnnvl_config_destroy(cfg);
    if (mt_fail(st, rank, "comm_create"))
        return NULL;
    if (cudaSetDevice(device) != cudaSuccess) {
        fprintf(stderr, "rank %d: cudaSetDevice failed\n", rank);
        return NULL;
    }
    return comm;
}

/* Prints "rank R: CALL failed: error" and returns 1 when e is not cudaSuccess, else 0. */
static inline int gpu_cuda_fail(cudaError_t e, int rank, const char *call)
{
    if (e == cudaSuccess)
        return 0;
    fprintf(stderr, "rank %d: %s failed: %s\n", rank, call, cudaGetErrorString(e));
    return 1;
}

#define CUDA_OK(rank, call)                     \
    do {                                        \
        if (gpu_cuda_fail((call), rank, #call)) \
            return 1;                           \
    } while (0)

/* gpu_comm, and in *s a non-blocking stream for the test's calls (it does not wait for the
 * legacy stream, so the bodies synchronise the device after their uploads). */
static inline mnnvl_comm_t gpu_comm_stream(const gpu_job_t *job, int rank, int size,
                                           cudaStream_t *s)
{
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm || gpu_cuda_fail(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking), rank,
                               "cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)"))
        return NULL;
    return comm;
}

/* The status the communicator's kernels recorded (MNNVL_SUCCESS: none). */
static inline mnnvl_status_t gpu_async_error(mnnvl_comm_t comm)
{
    mnnvl_status_t async = MNNVL_SUCCESS;
    mnnvl_comm_get_async_error(comm, &async);
    return async;
}

/* 0 when no kernel of comm recorded an error; else prints it and returns 1. */
static inline int gpu_no_async_error(mnnvl_comm_t comm, int rank)
{
    mnnvl_status_t async = gpu_async_error(comm);
    if (async == MNNVL_SUCCESS)
        return 0;
    fprintf(stderr, "rank %d: async error %s: %s\n", rank, mnnvl_status_string(async),
            mnnvl_last_error());
    return 1;
}

/* The end of a body begun by gpu_comm_stream: gpu_no_async_error, then the stream and the
 * communicator are destroyed. */
static inline int gpu_comm_stream_end(mnnvl_comm_t comm, int rank, cudaStream_t s)
{
    int bad = gpu_no_async_error(comm, rank);
    cudaStreamDestroy(s);
    mnnvl_comm_destroy(comm);
    return bad;
}

/* For the tests whose last rank stops calling: after a host barrier, the last rank sleeps
 * gpu_past_timeout_ms (the others' kernels give up meanwhile) and returns 1; the others
 * return 0 at once. */
static inline int gpu_last_rank_stops(mnnvl_comm_t comm, const gpu_job_t *job, int rank, int size)
{
    mnnvl_comm_barrier(comm);
    if (rank != size - 1)
        return 0;
    gpu_sleep_ms(gpu_past_timeout_ms(job));
    return 1;
}

/* Ends the capture on s into *graph and instantiates it into *exec. */
static inline int gpu_capture_end(int rank, cudaStream_t s, cudaGraph_t *graph,
                                  cudaGraphExec_t *exec)
{
    CUDA_OK(rank, cudaStreamEndCapture(s, graph));
    CUDA_OK(rank, cudaGraphInstantiate(exec, *graph, 0));
    return 0;
}

/* Destroys gpu_capture_end's instance, then its graph. */
static inline void gpu_graph_destroy(cudaGraph_t graph, cudaGraphExec_t exec)
{
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
}

/* Whether a rank's exit code from gpu_run_ranks says it died by SIGKILL. Under a launcher
 * (compute-sanitizer) the launcher exits with the victim's signal number as its status
 * instead of dying of it. */
static inline int gpu_killed(int code)
{
    return code == 128 + SIGKILL || (mt_launcher() && code == SIGKILL);
}

/* Starts `size` ranks of fn on the visible GPUs, rank r's exit code into codes[r], killing
 * them after timeout_s seconds. Returns -1 when the test must skip (no GPU), else how many
 * ranks failed. */
static inline int gpu_run_ranks(gpu_job_t *job, int size, mt_rank_fn fn, int timeout_s, int *codes)
{
    job->gpus = mt_gpus_for_ranks(size);
    if (job->gpus == 0)
        return -1;
    mt_loopback_root(job->root, sizeof(job->root));
    return mt_run_ranks(size, fn, job, timeout_s, codes);
}

/* Runs `fn` as `size` ranks on the visible GPUs (one is enough) unless the test must skip;
 * asserts every rank succeeded. */
#define RUN_ON_GPUS(size, fn, job)                                                          \
    do {                                                                                    \
        int codes_[16];                                                                     \
        int failed_ = gpu_run_ranks((job), (size), fn, 600, codes_);                        \
        if (failed_ < 0)                                                                    \
            return;                                                                         \
        for (int r_ = 0; r_ < (size); r_++)                                                 \
            cr_expect_eq(codes_[r_], 0, "rank %d exited with %d", r_, codes_[r_]);          \
        cr_assert_eq(failed_, 0, "%d of %d ranks failed (see their stderr above)", failed_, \
                     (int)(size));                                                          \
    } while (0)

/* The test suite::name, running `body` as `ranks` ranks on the visible GPUs with the given
 * timeout_ms (scaled by mt_time_scale). */
#define GPU_TEST_ONLY(suite, name, ranks, body, timeout) \
    Test(suite, name)                                    \
    {                                                    \
        gpu_job_t job = {.timeout_ms = (timeout)};       \
        RUN_ON_GPUS(ranks, body, &job);                  \
    }

/* GPU_TEST_ONLY, and body registered for exec'd ranks (MNNVL_RANK_LAUNCHER). */
#define GPU_TEST(suite, name, ranks, body, timeout) \
    MT_RANK_FN(body, gpu_job_t)                     \
    GPU_TEST_ONLY(suite, name, ranks, body, timeout)

/* Defines the tests suite::name_2_ranks and suite::name_4_ranks, running `body` as 2 and 4
 * ranks on the visible GPUs with the given timeout_ms (scaled by mt_time_scale), and
 * registers body for exec'd ranks (MNNVL_RANK_LAUNCHER). */
#define GPU_TESTS_2_AND_4(suite, name, body, timeout)      \
    MT_RANK_FN(body, gpu_job_t)                            \
    GPU_TEST_ONLY(suite, name##_2_ranks, 2, body, timeout) \
    GPU_TEST_ONLY(suite, name##_4_ranks, 4, body, timeout)

/* A test body that starts on gpu_comm_stream's communicator and stream, and owns them (most
 * bodies end with gpu_comm_stream_end). */
typedef int (*gpu_stream_body_fn)(mnnvl_comm_t comm, cudaStream_t s, int rank, int size,
                                  const gpu_job_t *job);

/* Runs body as rank `rank` of `size` on gpu_comm_stream's pair; 1 when that failed. */
static inline int gpu_run_stream_body(gpu_stream_body_fn body, int rank, int size, void *arg)
{
    cudaStream_t s;
    mnnvl_comm_t comm = gpu_comm_stream(arg, rank, size, &s);
    if (!comm)
        return 1;
    return body(comm, s, rank, size, arg);
}

/* GPU_TESTS_2_AND_4 of a gpu_stream_body_fn. */
#define GPU_STREAM_TESTS_2_AND_4(suite, name, body, timeout) \
    static int body##_rank(int rank, int size, void *arg)    \
    {                                                        \
        return gpu_run_stream_body(body, rank, size, arg);   \
    }                                                        \
    GPU_TESTS_2_AND_4(suite, name, body##_rank, timeout)

#endif
