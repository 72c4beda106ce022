/* mnnvl_comm_shrink on GPU communicators: after a rank is SIGKILLed, the survivors' shrunk
 * communicator gets the device setup a split child gets, so symmetric memory and the device
 * barrier work on it. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "gpu_ranks.h"

MT_SUITE(shrink, 120)

static int shrink_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm || mt_fail(mnnvl_comm_barrier(comm), rank, "first barrier"))
        return 1;
    int dead = size - 1;
    if (rank == dead)
        raise(SIGKILL);
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    if (st != MNNVL_ERR_PEER_LOST && st != MNNVL_ERR_TIMEOUT) {
        fprintf(stderr, "rank %d: the barrier after rank %d died returned %s\n", rank, dead,
                mnnvl_status_string(st));
        return 1;
    }
    mnnvl_comm_t child = NULL;
    if (mt_fail(mnnvl_comm_shrink(comm, &dead, 1, &child), rank, "comm_shrink"))
        return 1;
    if (mnnvl_comm_size(child) != dead || mnnvl_comm_rank(child) != rank ||
        mnnvl_comm_device(child) != mnnvl_comm_device(comm) ||
        strcmp(mnnvl_comm_handle_type(child), mnnvl_comm_handle_type(comm)) != 0) {
        fprintf(stderr,
                "rank %d: shrunk to rank %d of %d on device %d (%s), parent device %d "
                "(%s)\n",
                rank, mnnvl_comm_rank(child), mnnvl_comm_size(child), mnnvl_comm_device(child),
                mnnvl_comm_handle_type(child), mnnvl_comm_device(comm),
                mnnvl_comm_handle_type(comm));
        return 1;
    }
    /* Each survivor writes its rank into its own block; every block is read back through the
     * shrunk communicator's unified range. */
    mnnvl_mem_t mem = NULL;
    if (mt_fail(mnnvl_mem_alloc(child, 1 << 20, &mem), rank, "mem_alloc on the shrunk comm"))
        return 1;
    uint32_t mine = 0xabc00000u | (uint32_t)rank;
    CUDA_OK(rank,
            cudaMemcpy(mnnvl_mem_ptr(mem, rank), &mine, sizeof(mine), cudaMemcpyHostToDevice));
    cudaStream_t s;
    CUDA_OK(rank, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (mt_fail(mnnvl_comm_barrier(child), rank, "host barrier on the shrunk comm") ||
        mt_fail(mnnvl_comm_device_barrier(child, s), rank, "device barrier on the shrunk comm"))
        return 1;
    CUDA_OK(rank, cudaStreamSynchronize(s));
    for (int p = 0; p < dead; p++) {
        uint32_t got = 0;
        CUDA_OK(rank, cudaMemcpy(&got, mnnvl_mem_ptr(mem, p), sizeof(got), cudaMemcpyDeviceToHost));
        if (got != (0xabc00000u | (uint32_t)p)) {
            fprintf(stderr, "rank %d: block of child rank %d holds %#x\n", rank, p, got);
            return 1;
        }
    }
    mnnvl_status_t async = MNNVL_ERR_INTERNAL;
    if (mt_fail(mnnvl_comm_get_async_error(child, &async), rank, "get_async_error") ||
        async != MNNVL_SUCCESS)
        return 1;
    if (mt_fail(mnnvl_comm_barrier(child), rank, "last barrier"))
        return 1;
    cudaStreamDestroy(s);
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
    return 0;
}

MT_RANK_FN(shrink_body, gpu_job_t)

Test(shrink, survivors_of_a_killed_rank_allocate_and_barrier)
{
    gpu_job_t job = {.timeout_ms = 3000};
    int codes[4];
    if (gpu_run_ranks(&job, 4, shrink_body, 300, codes) < 0)
        return;
    for (int r = 0; r < 3; r++)
        cr_expect_eq(codes[r], 0, "rank %d exited with %d", r, codes[r]);
    cr_expect(gpu_killed(codes[3]), "rank 3 exited with %d, not by SIGKILL", codes[3]);
}
