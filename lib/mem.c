/* Symmetric memory handles: a mapping (symm.c) with references, holding its communicator. */
#include <stdlib.h>

#include "comm.h"
#include "device_state.h"
#include "error.h"
#include "symm.h"

struct mnnvl_mem_s {
    atomic_int refs;
    mnnvl_comm_t comm; /* retained */
    mnnvl_symm_t map;
};

MNNVL_API mnnvl_status_t mnnvl_mem_alloc(mnnvl_comm_t comm, size_t bytes, mnnvl_mem_t *mem)
{
    if (!mem)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mem_alloc: mem is NULL");
    *mem = NULL;
    MNNVL_CHECK(mnnvl_comm_check(comm, "mem_alloc"));
    if (!comm->dev)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "mem_alloc: rank %d's communicator is CPU-only (device -1)", comm->rank);
    struct mnnvl_mem_s *m = calloc(1, sizeof(*m));
    mnnvl_symm_t none;
    /* Without the handle this rank still takes part, so the peers learn of the failure. */
    mnnvl_status_t st = mnnvl_symm_map(
        comm, m ? MNNVL_SUCCESS : mnnvl_error(MNNVL_ERR_NO_MEMORY, "mem_alloc: out of memory"),
        bytes, 0, m ? &m->map : &none);
    if (st != MNNVL_SUCCESS) {
        free(m);
        return st;
    }
    atomic_init(&m->refs, 1);
    mnnvl_comm_retain(comm);
    m->comm = comm;
    *mem = m;
    return MNNVL_SUCCESS;
}

MNNVL_API void *mnnvl_mem_base(const mnnvl_mem_t mem)
{
    return mem ? (void *)(uintptr_t)mem->map.base : NULL;
}

MNNVL_API size_t mnnvl_mem_stride(const mnnvl_mem_t mem)
{
    return mem ? mem->map.stride : 0;
}

MNNVL_API size_t mnnvl_mem_size(const mnnvl_mem_t mem)
{
    return mem ? mem->map.size : 0;
}

MNNVL_API void *mnnvl_mem_ptr(const mnnvl_mem_t mem, int peer)
{
    if (!mem || peer < 0 || peer >= mem->comm->size)
        return NULL;
    return (void *)(uintptr_t)(mem->map.base + (CUdeviceptr)peer * mem->map.stride);
}

MNNVL_API mnnvl_status_t mnnvl_mem_retain(mnnvl_mem_t mem)
{
    if (!mem)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mem_retain: mem is NULL");
    atomic_fetch_add(&mem->refs, 1);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_mem_release(mnnvl_mem_t mem)
{
    if (!mem || atomic_fetch_sub(&mem->refs, 1) > 1)
        return MNNVL_SUCCESS;
    mnnvl_comm_t comm = mem->comm;
    mnnvl_symm_unmap(comm, &mem->map);
    free(mem);
    mnnvl_comm_destroy(comm);
    return MNNVL_SUCCESS;
}
