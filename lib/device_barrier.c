/* The device barrier: one symmetric signal area per communicator and the kernel of
 * kernels/barrier.cu over it. */
#include <stdint.h>
#include <stdlib.h>

#include "comm_state.h"
#include "device_barrier.h"
#include "device_state.h"
#include "error.h"
#include "symm.h"

/* Offsets inside a rank's piece of the signal memory. */
#define SIGNAL_EPOCH_OFFSET 65536 /* flags for up to 16384 ranks come before it */
#define SIGNAL_BYTES (SIGNAL_EPOCH_OFFSET + 256)

mnnvl_status_t mnnvl_device_barrier_setup(mnnvl_comm_t comm)
{
    /* Every rank sees the same size, so every rank fails here alike, without a round. */
    if (comm->size > SIGNAL_EPOCH_OFFSET / (int)sizeof(uint32_t))
        return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                           "comm_create: %d ranks with a device; the barrier signals hold %d",
                           comm->size, SIGNAL_EPOCH_OFFSET / (int)sizeof(uint32_t));
    mnnvl_symm_t none;
    comm->dev->signals = calloc(1, sizeof(*comm->dev->signals));
    /* Without it this rank still takes part, so the peers learn of the failure. */
    return mnnvl_symm_map(comm,
                          comm->dev->signals
                              ? MNNVL_SUCCESS
                              : mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_create: out of memory"),
                          SIGNAL_BYTES, 1, comm->dev->signals ? comm->dev->signals : &none);
}

void mnnvl_device_barrier_teardown(mnnvl_comm_t comm)
{
    if (!comm->dev || !comm->dev->signals)
        return;
    mnnvl_symm_unmap(comm, comm->dev->signals);
    free(comm->dev->signals);
    comm->dev->signals = NULL;
}

mnnvl_status_t mnnvl_device_barrier(mnnvl_comm_t comm, void *stream)
{
    mnnvl_device_state_t *d = comm->dev;
    MNNVL_CHECK(mnnvl_device_enter(comm, "comm_device_barrier"));
    char *signals = (char *)(uintptr_t)d->signals->base;
    mnnvl_barrier_args_t args = {
        .signals = signals,
        .stride = d->signals->stride,
        .epoch =
            (uint32_t *)(signals + (size_t)comm->rank * d->signals->stride + SIGNAL_EPOCH_OFFSET),
        .rank = comm->rank,
        .size = comm->size,
        .wait = {.control = (mnnvl_device_control_t *)(uintptr_t)d->control_dev,
                 .timeout_ns = d->timeout_ns},
    };
    return mnnvl_device_launched(mnnvl_launch_barrier(&args, stream), "comm_device_barrier");
}
