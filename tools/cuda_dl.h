/* The few CUDA driver calls the tools make themselves, through the base layer's loader
 * (base/libcuda.c, compiled into each tool) so that the tools start (and say what they skip)
 * on hosts without a GPU driver. */
#ifndef MNNVL_TOOLS_CUDA_DL_H
#define MNNVL_TOOLS_CUDA_DL_H

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Counts GPUs in a child process, so the caller may still fork ranks that use CUDA
 * (a process that initialised CUDA cannot use it in a forked child). */
static inline int tool_gpu_count(char *why, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tool_cuda_t cu;
        char reason[256] = "";
        int n = 0;
        if (tool_cuda_load(&cu, reason, sizeof(reason)) == 0)
            cu.device_count(&n);
        if (write(fds[1], &n, sizeof(n)) < 0 || write(fds[1], reason, sizeof(reason)) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    int n = 0;
    char reason[256] = "";
    if (read(fds[0], &n, sizeof(n)) != sizeof(n))
        n = 0;
    if (read(fds[0], reason, sizeof(reason)) > 0)
        snprintf(why, len, "%s", reason);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (n == 0 && !why[0])
        snprintf(why, len, "the driver reports no CUDA device");
    return n;
}

#endif
