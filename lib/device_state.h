/* The GPU state of a communicator (CUDA builds only), shared by device.c and mem.c. */
#ifndef MNNVL_DEVICE_STATE_H
#define MNNVL_DEVICE_STATE_H

#include <sys/types.h>

#include "comm.h"
#include "cuda_loader.h"
#include "kernels/launch.h"

struct mnnvl_device_state {
    const mnnvl_cuda_driver_t *cu;
    CUdevice cu_device;
    CUcontext ctx;             /* the device's primary context, retained */
    int fabric;                /* 1: FABRIC handles, 0: POSIX fds */
    size_t granularity;        /* allocation granularity for the chosen handle type */
    pid_t *pids;               /* every rank's pid, for the fd exchange's credential check */
    mnnvl_device_control_t *control; /* host address of the control block */
    CUdeviceptr control_dev;   /* its device address */
    uint64_t timeout_ns;
    mnnvl_mem_t signals;       /* barrier flags, one uint32_t per source rank, then epoch */
};

/* Makes the communicator's context current on the calling thread (ranks may be threads of
 * one process, each with its own device). Capture-safe. */
mnnvl_status_t mnnvl_device_enter(mnnvl_comm_t comm, const char *what);

/* Symmetric allocation used by the library itself: `hold_comm` 0 keeps the memory from
 * retaining its communicator (the communicator owns it instead); `zero` clears this rank's
 * piece before the collective completes, so no peer sees stale flags. */
mnnvl_status_t mnnvl_mem_alloc_internal(mnnvl_comm_t comm, size_t bytes, int hold_comm,
                                        int zero, mnnvl_mem_t *out);

#endif
