/* The device side of mnnvl_comm_create: one round carries every rank's status with its
 * probe, so a rank that fails locally fails every rank at once (no wait for the timeout),
 * and the handle type every rank chooses from the gathered probes is the same. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gpu_ranks.h"

MT_SUITE(comm_setup, 120)

#define SETUP_KEY "comm-setup-test-job-key-of-32-chars-or-more"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* The last rank asks for a device that does not exist. Every rank must fail comm_create with
 * that rank's INVALID_ARGUMENT, well within timeout_ms, and the others' sentences must name
 * the failing rank. */
static int bad_device_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    const int bad_rank = size - 1;
    const int device = rank == bad_rank ? 4096 : gpu_device(job, rank);
    mnnvl_config_t cfg = mt_config(job->root, SETUP_KEY, gpu_timeout_ms(job));
    mnnvl_comm_t comm = (mnnvl_comm_t)&comm; /* must be reset to NULL */
    double start = now_s();
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, device, &comm);
    double took = now_s() - start;
    mnnvl_config_destroy(cfg);
    int bad = 0;
    if (st != MNNVL_ERR_INVALID_ARGUMENT || comm != NULL) {
        fprintf(stderr, "rank %d: comm_create gave %s (comm %p), want INVALID_ARGUMENT: %s\n", rank,
                mnnvl_status_string(st), (void *)comm, mnnvl_last_error());
        bad = 1;
    }
    char want[64];
    if (rank == bad_rank)
        snprintf(want, sizeof(want), "asked for device 4096");
    else
        snprintf(want, sizeof(want), "rank %d failed", bad_rank);
    if (!strstr(mnnvl_last_error(), want)) {
        fprintf(stderr, "rank %d: sentence \"%s\" lacks \"%s\"\n", rank, mnnvl_last_error(), want);
        bad = 1;
    }
    /* Far below timeout_ms: the failure travelled in the setup round, nobody timed out. */
    if (took > gpu_timeout_ms(job) / 2000.0) {
        fprintf(stderr, "rank %d: comm_create took %.1f s of a %d ms timeout\n", rank, took,
                gpu_timeout_ms(job));
        bad = 1;
    }
    return bad;
}

GPU_TESTS_2_AND_4(comm_setup, a_rank_with_a_bad_device_fails_every_rank_at_once, bad_device_body,
                  40000)

/* Every rank asks for `handle_type` (job->param: 0 auto, 1 fabric, 2 posix-fd). Exit code 10:
 * created, and the handle type agreed (allgathered, all equal) and usable (a symmetric
 * allocation and a device barrier work); 20: UNSUPPORTED (fabric without IMEX); anything
 * else is a failure. The test wants every rank to end alike. */
static int handle_type_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    static const char *const types[] = {"auto", "fabric", "posix-fd"};
    mnnvl_config_t cfg = mt_config(job->root, SETUP_KEY, gpu_timeout_ms(job));
    if (mnnvl_config_set(cfg, "handle_type", types[job->param]) != MNNVL_SUCCESS)
        return 1;
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, gpu_device(job, rank), &comm);
    mnnvl_config_destroy(cfg);
    if (st == MNNVL_ERR_UNSUPPORTED && comm == NULL)
        return 20;
    if (mt_fail(st, rank, "comm_create"))
        return 1;
    if (cudaSetDevice(gpu_device(job, rank)) != cudaSuccess)
        return 1;
    char mine[16] = {0}, all[16 * 16] = {0};
    snprintf(mine, sizeof(mine), "%s", mnnvl_comm_handle_type(comm));
    int bad = mt_fail(mnnvl_comm_allgather(comm, mine, all, sizeof(mine)), rank, "allgather");
    for (int r = 0; !bad && r < size; r++)
        if (strcmp(all + 16 * r, mine) != 0 || strcmp(mine, "none") == 0) {
            fprintf(stderr, "rank %d: handle type %s, rank %d's %s\n", rank, mine, r, all + 16 * r);
            bad = 1;
        }
    if (!bad && job->param > 0 && strcmp(mine, types[job->param]) != 0) {
        fprintf(stderr, "rank %d: asked for %s, got %s\n", rank, types[job->param], mine);
        bad = 1;
    }
    mnnvl_mem_t mem = NULL;
    if (!bad)
        bad = mt_fail(mnnvl_mem_alloc(comm, 1 << 20, &mem), rank, "mem_alloc");
    if (!bad)
        bad = mt_fail(mnnvl_comm_device_barrier(comm, NULL), rank, "device_barrier");
    if (!bad && cudaDeviceSynchronize() != cudaSuccess)
        bad = 1;
    mnnvl_status_t async = MNNVL_SUCCESS;
    if (!bad &&
        (mnnvl_comm_get_async_error(comm, &async) != MNNVL_SUCCESS || async != MNNVL_SUCCESS))
        bad = 1;
    mnnvl_comm_barrier(comm);
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(comm);
    return bad ? 1 : 10;
}

MT_RANK_FN(handle_type_body, gpu_job_t)

static void run_handle_type(int size, int type, int may_be_unsupported)
{
    gpu_job_t job = {.timeout_ms = 40000, .param = type};
    int codes[16];
    if (gpu_run_ranks(&job, size, handle_type_body, 600, codes) < 0)
        return;
    for (int r = 0; r < size; r++) {
        cr_expect(codes[r] == 10 || (may_be_unsupported && codes[r] == 20),
                  "rank %d exited with %d (10: created, 20: UNSUPPORTED)", r, codes[r]);
        cr_expect_eq(codes[r], codes[0], "rank %d ended with %d, rank 0 with %d", r, codes[r],
                     codes[0]);
    }
}

Test(comm_setup, auto_handle_type_is_agreed_and_usable_4_ranks)
{
    run_handle_type(4, 0, 0);
}

Test(comm_setup, posix_fd_handle_type_is_agreed_and_usable_2_ranks)
{
    run_handle_type(2, 2, 0);
}

/* FABRIC needs an IMEX channel: with it every rank uses fabric, without it every rank gets
 * UNSUPPORTED; never a mix. */
Test(comm_setup, fabric_handle_type_is_all_or_nothing_2_ranks)
{
    run_handle_type(2, 1, 1);
}
