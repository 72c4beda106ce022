/* Device-side barrier across the ranks of a communicator.
 *
 * Rank r arrives at epoch e by storing e (release, system scope) into flag r of every
 * peer's signal area, then waits until every flag of its own area reaches e (acquire). The
 * epoch lives in device memory and advances inside the kernel, so a captured graph replays
 * correctly; flags only grow, so nothing is ever reset. One thread per peer. */
#include "kernels/device_wait.cuh"
#include "kernels/load.cuh"

static __global__ void barrier_kernel(mnnvl_barrier_args_t a)
{
    __shared__ uint32_t epoch;
    if (threadIdx.x == 0)
        epoch = *a.epoch + 1;
    __syncthreads();
    const uint32_t e = epoch;
    for (int peer = threadIdx.x; peer < a.size; peer += blockDim.x) {
        uint32_t *flags = (uint32_t *)(a.signals + (size_t)peer * a.stride);
        mnnvl_store_release_sys(&flags[a.rank], e);
    }
    const uint32_t *mine = (const uint32_t *)(a.signals + (size_t)a.rank * a.stride);
    for (int peer = threadIdx.x; peer < a.size; peer += blockDim.x) {
        mnnvl_waiter_t w = mnnvl_wait_begin();
        /* Signed difference: correct across the 2^32 wrap of the epoch. */
        while ((int32_t)(mnnvl_load_acquire_sys(&mine[peer]) - e) < 0)
            if (mnnvl_wait_should_stop(&a.wait, &w, MNNVL_OP_DEVICE_BARRIER, peer))
                break;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        *a.epoch = e;
}

extern "C" int mnnvl_launch_barrier(const mnnvl_barrier_args_t *args, void *stream)
{
    int threads = args->size < 1024 ? ((args->size + 31) / 32) * 32 : 1024;
    barrier_kernel<<<1, threads, 0, (cudaStream_t)stream>>>(*args);
    return (int)cudaGetLastError();
}

extern "C" int mnnvl_load_barrier_kernels(void)
{
    return mnnvl_load(barrier_kernel);
}
