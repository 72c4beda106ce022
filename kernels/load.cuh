/* Loading kernels before their first launch.
 *
 * Under CUDA's lazy loading (the default since CUDA 12.2) a kernel is loaded at its first
 * launch, and that load may wait until every kernel running in the context has finished.
 * Ranks that are threads of one process share the context, so one thread's first launch of
 * a kernel could wait for a peer thread's collective kernel, which waits for this very
 * thread's part, until the device-side TIMEOUT ends it. So each kernel file names every
 * kernel it may launch in one mnnvl_load_*_kernels() (kernels/launch.h), and lib/ calls them
 * all when a communicator is created, before any of its collective kernels can run. */
#ifndef MNNVL_KERNELS_LOAD_CUH
#define MNNVL_KERNELS_LOAD_CUH

#include <cuda_runtime.h>

/* Loads each kernel (cudaFuncGetAttributes loads what it describes). Returns 0 or the first
 * cudaError_t, e.g. cudaErrorNoKernelImageForDevice. */
template <typename... K> static int mnnvl_load(K *...kernels)
{
    cudaFuncAttributes attr;
    int err = 0;
    ((err = err ? err : (int)cudaFuncGetAttributes(&attr, kernels)), ...);
    return err;
}

#endif
