/* The CUDA driver, reached through entry points: libmnnvl.so never links libcuda, so it
 * loads (and its CPU parts work) on hosts without a GPU driver. */
#ifndef MNNVL_CUDA_LOADER_H
#define MNNVL_CUDA_LOADER_H

#include <cuda.h>

#include "mnnvl.h"

/* X-macro of every driver function libmnnvl uses. The member names go through cuda.h's
 * version macros (cuMemHostGetDevicePointer -> ..._v2), and the loader looks each one up by
 * that expanded name, so every pointer has exactly the ABI of the prototype it was declared
 * with. (cuGetProcAddress with the toolkit's version would not: it returns the newest ABI,
 * e.g. CUDA 13's cuCtxSynchronize(CUcontext), while cuda.h still declares the old one.) */
#define MNNVL_CU_FUNCTIONS(X)         \
    X(cuInit)                         \
    X(cuDriverGetVersion)             \
    X(cuGetErrorName)                 \
    X(cuGetErrorString)               \
    X(cuDeviceGet)                    \
    X(cuDeviceGetCount)               \
    X(cuDeviceGetName)                \
    X(cuDeviceGetAttribute)           \
    X(cuDeviceCanAccessPeer)          \
    X(cuDevicePrimaryCtxRetain)       \
    X(cuDevicePrimaryCtxRelease)      \
    X(cuCtxSetCurrent)                \
    X(cuCtxSynchronize)               \
    X(cuStreamIsCapturing)            \
    X(cuMemGetAllocationGranularity)  \
    X(cuMemCreate)                    \
    X(cuMemRelease)                   \
    X(cuMemExportToShareableHandle)   \
    X(cuMemImportFromShareableHandle) \
    X(cuMemAddressReserve)            \
    X(cuMemAddressFree)               \
    X(cuMemMap)                       \
    X(cuMemUnmap)                     \
    X(cuMemSetAccess)                 \
    X(cuMemsetD8)                     \
    X(cuMemHostAlloc)                 \
    X(cuMemFreeHost)                  \
    X(cuMemHostGetDevicePointer)      \
    X(cuMemAlloc)                     \
    X(cuMemFree)                      \
    X(cuMemcpyHtoD)                   \
    X(cuMemsetD16)                    \
    X(cuMemsetD32)

typedef struct mnnvl_cuda_driver {
#define MNNVL_CU_MEMBER(name) __typeof__(name) *name;
    MNNVL_CU_FUNCTIONS(MNNVL_CU_MEMBER)
#undef MNNVL_CU_MEMBER
} mnnvl_cuda_driver_t;

/* Loads the driver once per process and calls cuInit. Returns NO_DEVICE with the reason
 * (no libcuda.so.1, no device, driver too old) when it cannot. */
mnnvl_status_t mnnvl_cuda_load(const mnnvl_cuda_driver_t **driver);

/* Turns a failed driver call into CUDA (or GRAPH_CAPTURE for capture errors, NO_MEMORY for
 * out of memory) with a sentence naming the call and the driver's error name. */
mnnvl_status_t mnnvl_cuda_error(CUresult res, const char *what, const char *call);

/* Calls `call` (a driver call through `cu`) and returns its error from the enclosing
 * function when it fails. */
#define MNNVL_CU(what, call)                                     \
    do {                                                         \
        CUresult mnnvl_cu_res_ = (call);                         \
        if (mnnvl_cu_res_ != CUDA_SUCCESS)                       \
            return mnnvl_cuda_error(mnnvl_cu_res_, what, #call); \
    } while (0)

#endif
