/* The GPU side of a communicator, implemented by device.c (CUDA builds) or nocuda.c. */
#ifndef MNNVL_DEVICE_H
#define MNNVL_DEVICE_H

#include "mnnvl.h"

/* Makes the device current, probes, allocates the host-mapped control block and agrees on
 * the handle type, in one bootstrap round that carries each rank's status with its probe
 * (a local failure fails every rank). Collective. Sets comm->dev and comm->handle_type. */
mnnvl_status_t mnnvl_device_setup(mnnvl_comm_t comm);

/* Frees what setup made. Local. NULL-safe. */
void mnnvl_device_teardown(mnnvl_comm_t comm);

/* Reads the control block's error word; when set, describes it in the last error. */
mnnvl_status_t mnnvl_device_async_error(mnnvl_comm_t comm, mnnvl_status_t *async_error);

/* Raises the host-mapped abort flag that every kernel of the communicator polls. */
void mnnvl_device_abort(mnnvl_comm_t comm);

/* GRAPH_CAPTURE when a stream capture is active on this thread's device. */
mnnvl_status_t mnnvl_device_check_not_capturing(mnnvl_comm_t comm, const char *what);

#endif
