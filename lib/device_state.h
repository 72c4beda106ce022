/* The GPU state of a communicator (CUDA builds only): made by device.c, read by the memory
 * layer, the device barrier and the operations. */
#ifndef MNNVL_DEVICE_STATE_H
#define MNNVL_DEVICE_STATE_H

#include <sys/types.h>

#include "cuda_loader.h"
#include "kernels/launch.h"

/* comm.h names it for the communicator's struct, which points to it. */
struct mnnvl_device_state {
    const mnnvl_cuda_driver_t *cu;
    CUdevice cu_device;
    CUcontext ctx;                   /* the device's primary context, retained */
    int fabric;                      /* 1: FABRIC handles, 0: POSIX fds */
    size_t granularity;              /* allocation granularity for the chosen handle type */
    pid_t *pids;                     /* every rank's pid, for the fd exchange's credential check */
    mnnvl_device_control_t *control; /* host address of the control block */
    CUdeviceptr control_dev;         /* its device address */
    uint64_t timeout_ns;
    int sms;                    /* SMs this rank's kernels may fill: the device's, divided among
                                 * the ranks that are threads of one process on it (device.c) */
    struct mnnvl_symm *signals; /* device_barrier.c's flags: one uint32_t per source rank,
                                 * then the epoch */
};

/* Makes the communicator's context current on the calling thread (ranks may be threads of
 * one process, each with its own device). Capture-safe. */
mnnvl_status_t mnnvl_device_enter(mnnvl_comm_t comm, const char *what);

/* The status of a kernels/ launcher's result `err` (0 or a cudaError_t): CUDA with a
 * sentence naming `what` and the error when it failed. */
mnnvl_status_t mnnvl_device_launched(int err, const char *what);

#endif
