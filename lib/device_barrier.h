/* The device barrier of a communicator: its symmetric signal memory and the kernel launch.
 * Implemented by device_barrier.c (CUDA builds) or nocuda.c. */
#ifndef MNNVL_DEVICE_BARRIER_H
#define MNNVL_DEVICE_BARRIER_H

#include "mnnvl.h"

/* Allocates the zeroed signal memory, after mnnvl_device_setup succeeded. UNSUPPORTED
 * (alike on every rank) beyond the ranks the signals hold; else mnnvl_symm_map's errors.
 * Collective. */
mnnvl_status_t mnnvl_device_barrier_setup(mnnvl_comm_t comm);

/* Frees the signal memory. Local. Safe without a device or after a failed setup. */
void mnnvl_device_barrier_teardown(mnnvl_comm_t comm);

/* Enqueues the cross-GPU barrier kernel on `stream`. Capture-safe. */
mnnvl_status_t mnnvl_device_barrier(mnnvl_comm_t comm, void *stream);

#endif
