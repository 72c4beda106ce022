/* Fault tolerance, the device side of the host code (CUDA builds): the dead-rank mask in
 * device memory, the entry check of fault-tolerant calls, and the fault fields of a kernel's
 * wait parameters. */
#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fault_state.h"
#include "log.h"

/* 128 bytes: the mask alone in its cache line. */
#define MASK_BYTES 128

void mnnvl_fault_device_setup(mnnvl_comm_t comm, mnnvl_fault_state_t *f)
{
    mnnvl_device_state_t *d = comm->dev;
    f->dead = d->control->dead;
    f->error_word = &d->control->error;
    CUdeviceptr mask = 0;
    if (d->cu->cuMemAlloc(&mask, MASK_BYTES) != CUDA_SUCCESS ||
        d->cu->cuMemsetD8(mask, 0, MASK_BYTES) != CUDA_SUCCESS) {
        if (mask)
            d->cu->cuMemFree(mask);
        MNNVL_WARN("rank %d: cannot allocate the %d-byte dead-rank mask on device %d: "
                   "fault-tolerant operations refuse to be created on this communicator",
                   comm->rank, MASK_BYTES, comm->device);
        return;
    }
    f->mask = (unsigned long long *)(uintptr_t)mask;
}

void mnnvl_fault_device_teardown(mnnvl_comm_t comm, mnnvl_fault_state_t *f)
{
    mnnvl_device_state_t *d = comm->dev;
    if (!f->mask)
        return;
    if (d->cu->cuCtxSetCurrent(d->ctx) == CUDA_SUCCESS)
        d->cu->cuMemFree((CUdeviceptr)(uintptr_t)f->mask);
    f->mask = NULL;
}

mnnvl_status_t mnnvl_fault_op_enter(const mnnvl_op_handle_t *op, int fault_tolerant,
                                    const char *what, const char *name)
{
    if (!fault_tolerant || !op)
        return mnnvl_op_enter(op, what, name);
    mnnvl_comm_t comm = op->comm;
    /* A PEER_LOST async error is what this call is made for; anything else aborts as
     * usual (mnnvl_comm_check says so). */
    int status, kind, peer;
    mnnvl_error_unpack(*(volatile uint64_t *)&comm->dev->control->error, &status, &kind, &peer);
    if (atomic_load(&comm->aborted) || (status != 0 && status != MNNVL_ERR_PEER_LOST))
        MNNVL_CHECK(mnnvl_comm_check(comm, what));
    return mnnvl_device_enter(comm, what);
}

void mnnvl_fault_wait_args(mnnvl_comm_t comm, int fault_tolerant, int peer_timeout_ms,
                           mnnvl_wait_params_t *wait)
{
    wait->dead = fault_tolerant ? comm->fault->mask : NULL;
    wait->peer_timeout_ns = fault_tolerant ? (uint64_t)peer_timeout_ms * 1000000ull : 0;
}
