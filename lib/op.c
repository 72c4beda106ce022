#include <stdlib.h>

#include "device.h"
#include "device_state.h"
#include "error.h"
#include "op.h"

mnnvl_status_t mnnvl_op_create_check(mnnvl_comm_t comm, void *out, const char *what,
                                     const char *name)
{
    if (!out)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: %s is NULL", what, name);
    *(void **)out = NULL;
    MNNVL_CHECK(mnnvl_comm_check(comm, what));
    if (!comm->dev)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "%s: rank %d's communicator is CPU-only (device -1)", what, comm->rank);
    return MNNVL_SUCCESS;
}

static void retain_handle(void *h)
{
    atomic_fetch_add(&((mnnvl_op_handle_t *)h)->refs, 1);
}

mnnvl_status_t mnnvl_op_create_prepare(mnnvl_comm_t comm, mnnvl_status_t planned, int kind,
                                       const void *key, size_t key_len, void **found,
                                       const char *what)
{
    *found = NULL;
    MNNVL_CHECK(mnnvl_comm_agree(comm, planned, what));
    MNNVL_CHECK(mnnvl_device_enter(comm, what));
    MNNVL_CHECK(mnnvl_comm_agree(comm, mnnvl_device_check_not_capturing(comm, what), what));
    *found = mnnvl_handle_cache_find(&comm->ops, kind, key, key_len, retain_handle);
    return MNNVL_SUCCESS;
}

void mnnvl_op_init(mnnvl_op_handle_t *op, mnnvl_comm_t comm,
                   void (*free_resources)(mnnvl_op_handle_t *op))
{
    atomic_init(&op->refs, 1);
    mnnvl_comm_retain(comm);
    op->comm = comm;
    op->mem = NULL;
    op->free_resources = free_resources;
}

mnnvl_status_t mnnvl_op_cache_add(mnnvl_op_handle_t *op, int kind, const void *key, size_t key_len)
{
    mnnvl_status_t st = mnnvl_handle_cache_add(&op->comm->ops, kind, key, key_len, op);
    if (st != MNNVL_SUCCESS)
        mnnvl_op_free(op);
    return st;
}

void mnnvl_op_free(mnnvl_op_handle_t *op)
{
    if (!op)
        return;
    const mnnvl_cuda_driver_t *cu = op->comm->dev->cu;
    if (cu->cuCtxSetCurrent(op->comm->dev->ctx) == CUDA_SUCCESS)
        cu->cuCtxSynchronize();
    if (op->free_resources)
        op->free_resources(op);
    mnnvl_mem_release(op->mem);
    mnnvl_comm_destroy(op->comm);
    free(op);
}

void mnnvl_op_retain(mnnvl_op_handle_t *op)
{
    retain_handle(op);
}

mnnvl_status_t mnnvl_op_release(mnnvl_op_handle_t *op)
{
    if (!op || atomic_fetch_sub(&op->refs, 1) > 1)
        return MNNVL_SUCCESS;
    mnnvl_handle_cache_remove(&op->comm->ops, op);
    mnnvl_op_free(op);
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_op_enter(const mnnvl_op_handle_t *op, const char *what, const char *name)
{
    if (!op)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: %s is NULL", what, name);
    MNNVL_CHECK(mnnvl_comm_check(op->comm, what));
    return mnnvl_device_enter(op->comm, what);
}
