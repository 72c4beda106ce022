/* Shared by the GPU tests: one process per rank, rank r on device r % (visible GPUs), bootstrapped
 * over TCP on loopback. */
#ifndef MNNVL_GPU_RANKS_H
#define MNNVL_GPU_RANKS_H

#include <cuda_runtime.h>
#include <stdio.h>

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
    mnnvl_config_t cfg = mt_config(job->root, "gpu-test-key-0123456789abcdef0123456789",
                                   job->timeout_ms * mt_time_scale());
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

#define CUDA_OK(rank, call)                                                                   \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "rank %d: %s failed: %s\n", rank, #call, cudaGetErrorString(e_)); \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

/* Runs `fn` as `size` ranks on the visible GPUs (one is enough) unless the test must skip;
 * asserts every rank succeeded. */
#define RUN_ON_GPUS(size, fn, job)                                                          \
    do {                                                                                    \
        (job)->gpus = mt_gpus_for_ranks(size);                                              \
        if ((job)->gpus == 0)                                                               \
            return;                                                                         \
        mt_loopback_root((job)->root, sizeof((job)->root));                                 \
        int codes_[16];                                                                     \
        int failed_ = mt_run_ranks(size, fn, job, 600, codes_);                             \
        for (int r_ = 0; r_ < (size); r_++)                                                 \
            cr_expect_eq(codes_[r_], 0, "rank %d exited with %d", r_, codes_[r_]);          \
        cr_assert_eq(failed_, 0, "%d of %d ranks failed (see their stderr above)", failed_, \
                     (int)(size));                                                          \
    } while (0)

/* Defines the tests suite::name_2_ranks and suite::name_4_ranks, running `body` as 2 and 4
 * ranks on the visible GPUs with the given timeout_ms (scaled by mt_time_scale), and
 * registers body for exec'd ranks (MNNVL_RANK_LAUNCHER). */
#define GPU_TESTS_2_AND_4(suite, name, body, timeout) \
    MT_RANK_FN(body, gpu_job_t)                       \
    Test(suite, name##_2_ranks)                       \
    {                                                 \
        gpu_job_t job = {.timeout_ms = (timeout)};    \
        RUN_ON_GPUS(2, body, &job);                   \
    }                                                 \
    Test(suite, name##_4_ranks)                       \
    {                                                 \
        gpu_job_t job = {.timeout_ms = (timeout)};    \
        RUN_ON_GPUS(4, body, &job);                   \
    }

#endif
