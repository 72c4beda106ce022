/* The few CUDA driver calls the tools make themselves, through dlopen so that the tools
 * start (and say what they skip) on hosts without a GPU driver. Header-only: each tool is
 * one program. */
#ifndef MNNVL_TOOLS_CUDA_DL_H
#define MNNVL_TOOLS_CUDA_DL_H

#include <dlfcn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Loads libcuda.so.1 and calls cuInit; returns 0, or -1 with `why` filled in. */
static inline int tool_cuda_load(tool_cuda_t *cu, char *why, size_t len)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, len, "no CUDA driver (%s)", dlerror());
        return -1;
    }
    *(void **)&cu->init = dlsym(lib, "cuInit");
    *(void **)&cu->driver_version = dlsym(lib, "cuDriverGetVersion");
    *(void **)&cu->device_count = dlsym(lib, "cuDeviceGetCount");
    *(void **)&cu->device_get = dlsym(lib, "cuDeviceGet");
    *(void **)&cu->device_name = dlsym(lib, "cuDeviceGetName");
    *(void **)&cu->can_access_peer = dlsym(lib, "cuDeviceCanAccessPeer");
    *(void **)&cu->attribute = dlsym(lib, "cuDeviceGetAttribute");
    *(void **)&cu->primary_ctx_retain = dlsym(lib, "cuDevicePrimaryCtxRetain");
    if (!cu->init || !cu->device_count || !cu->device_name || !cu->can_access_peer) {
        snprintf(why, len, "the CUDA driver lacks basic entry points");
        return -1;
    }
    int rc = cu->init(0);
    if (rc != 0) {
        snprintf(why, len, "cuInit failed with CUDA error %d (no usable GPU)", rc);
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
