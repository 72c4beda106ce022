/* The few CUDA driver calls the tools make themselves, through the base layer's loader
 * (base/libcuda.c, compiled into each tool) so that the tools start (and say what they skip)
 * on hosts without a GPU driver. */
#ifndef MNNVL_TOOLS_CUDA_DL_H
#define MNNVL_TOOLS_CUDA_DL_H

#include <stdio.h>

#include "base/libcuda.h"

typedef struct tool_cuda {
    int (*init)(unsigned);
    int (*driver_version)(int *);
    int (*device_count)(int *);
    int (*device_get)(int *, int);
    int (*device_name)(char *, int, int);
    int (*can_access_peer)(int *, int, int);
    int (*attribute)(int *, int, int);
    int (*primary_ctx_retain)(void **, int);
} tool_cuda_t;

/* Loads the driver (base/libcuda.c, the loader libmnnvl uses too) and looks up the calls
 * above; returns 0, or -1 with `why` filled in. */
static inline int tool_cuda_load(tool_cuda_t *cu, char *why, size_t len)
{
    const char *reason = NULL;
    if (mnnvl_libcuda_open(&reason) != 0) {
        snprintf(why, len, "%s", reason);
        return -1;
    }
    *(void **)&cu->init = mnnvl_libcuda_sym("cuInit");
    *(void **)&cu->driver_version = mnnvl_libcuda_sym("cuDriverGetVersion");
    *(void **)&cu->device_count = mnnvl_libcuda_sym("cuDeviceGetCount");
    *(void **)&cu->device_get = mnnvl_libcuda_sym("cuDeviceGet");
    *(void **)&cu->device_name = mnnvl_libcuda_sym("cuDeviceGetName");
    *(void **)&cu->can_access_peer = mnnvl_libcuda_sym("cuDeviceCanAccessPeer");
    *(void **)&cu->attribute = mnnvl_libcuda_sym("cuDeviceGetAttribute");
    *(void **)&cu->primary_ctx_retain = mnnvl_libcuda_sym("cuDevicePrimaryCtxRetain");
    if (!cu->init || !cu->device_count || !cu->device_name || !cu->can_access_peer) {
        snprintf(why, len, "the CUDA driver lacks basic entry points");
        return -1;
    }
    return 0;
}

/* Counts GPUs in a child process (base/libcuda.c), so the caller may still fork ranks that
 * use CUDA. */
static inline int tool_gpu_count(char *why, size_t len)
{
    return mnnvl_libcuda_count_in_child(why, len);
}

#endif
