/* Symmetric mappings (see symm.h): create, exchange, import and map every rank's piece. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "comm_state.h"
#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fdpass.h"
#include "log.h"
#include "symm.h"

/* What each rank tells the others about its piece. */
typedef struct piece_info {
    int32_t status;
    int32_t pad;
    uint64_t bytes;
    CUmemFabricHandle fabric;
    char socket[MNNVL_FD_NAME_LEN];
} piece_info_t;

void mnnvl_symm_unmap(mnnvl_comm_t comm, mnnvl_symm_t *mem)
{
    const mnnvl_cuda_driver_t *cu = comm->dev->cu;
    /* Like cudaFree: work still queued on this device may use the range. */
    if (mem->base && cu->cuCtxSetCurrent(comm->dev->ctx) == CUDA_SUCCESS)
        cu->cuCtxSynchronize();
    for (int p = 0; mem->mapped && p < comm->size; p++)
        if (mem->mapped[p])
            cu->cuMemUnmap(mem->base + (CUdeviceptr)p * mem->stride, mem->stride);
    if (mem->base)
        cu->cuMemAddressFree(mem->base, (size_t)comm->size * mem->stride);
    for (int p = 0; mem->handles && p < comm->size; p++)
        if (mem->handles[p])
            cu->cuMemRelease(mem->handles[p]);
    free(mem->handles);
    free(mem->mapped);
    memset(mem, 0, sizeof(*mem));
}

/* Creates and exports this rank's piece; for POSIX fds also opens the listener whose name
 * the peers need. */
static mnnvl_status_t create_piece(mnnvl_comm_t comm, mnnvl_symm_t *mem, piece_info_t *info,
                                   int *my_fd, mnnvl_fd_listener_t **listener)
{
    mnnvl_device_state_t *d = comm->dev;
    CUmemAllocationProp prop = {
        .type = CU_MEM_ALLOCATION_TYPE_PINNED,
        .requestedHandleTypes =
            d->fabric ? CU_MEM_HANDLE_TYPE_FABRIC : CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
        .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = d->cu_device}};
    MNNVL_CU("mem_alloc", d->cu->cuMemCreate(&mem->handles[comm->rank], mem->stride, &prop, 0));
    if (d->fabric) {
        MNNVL_CU("mem_alloc",
                 d->cu->cuMemExportToShareableHandle(&info->fabric, mem->handles[comm->rank],
                                                     CU_MEM_HANDLE_TYPE_FABRIC, 0));
        return MNNVL_SUCCESS;
    }
    MNNVL_CU("mem_alloc",
             d->cu->cuMemExportToShareableHandle(my_fd, mem->handles[comm->rank],
                                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    return mnnvl_fd_listen(comm->rank, comm->size, listener, info->socket);
}

static mnnvl_status_t check_sizes(mnnvl_comm_t comm, const piece_info_t *all)
{
    for (int r = 1; r < comm->size; r++)
        if (all[r].bytes != all[0].bytes)
            return mnnvl_error(MNNVL_ERR_MISMATCH,
                               "mem_alloc: rank %d asked for %llu bytes but rank 0 asked for "
                               "%llu; every rank must allocate the same size",
                               r, (unsigned long long)all[r].bytes,
                               (unsigned long long)all[0].bytes);
    return MNNVL_SUCCESS;
}

/* Imports the peers' pieces and maps everything into one reserved range. */
static mnnvl_status_t map_pieces(mnnvl_comm_t comm, mnnvl_symm_t *mem, const piece_info_t *all,
                                 int *fds)
{
    const mnnvl_cuda_driver_t *cu = comm->dev->cu;
    for (int p = 0; p < comm->size; p++) {
        if (p == comm->rank)
            continue;
        void *shareable = comm->dev->fabric ? (void *)&all[p].fabric : (void *)(intptr_t)fds[p];
        MNNVL_CU("mem_alloc", cu->cuMemImportFromShareableHandle(
                                  &mem->handles[p], shareable,
                                  comm->dev->fabric ? CU_MEM_HANDLE_TYPE_FABRIC
                                                    : CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
    }
    size_t total = (size_t)comm->size * mem->stride;
    MNNVL_CU("mem_alloc", cu->cuMemAddressReserve(&mem->base, total, comm->dev->granularity, 0, 0));
    for (int p = 0; p < comm->size; p++) {
        MNNVL_CU("mem_alloc", cu->cuMemMap(mem->base + (CUdeviceptr)p * mem->stride, mem->stride, 0,
                                           mem->handles[p], 0));
        mem->mapped[p] = 1;
    }
    CUmemAccessDesc access = {
        .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = comm->dev->cu_device},
        .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    MNNVL_CU("mem_alloc", cu->cuMemSetAccess(mem->base, total, &access, 1));
    return MNNVL_SUCCESS;
}

static mnnvl_status_t zero_piece(mnnvl_comm_t comm, mnnvl_symm_t *mem)
{
    CUdeviceptr mine = mem->base + (CUdeviceptr)comm->rank * mem->stride;
    MNNVL_CU("mem_alloc", comm->dev->cu->cuMemsetD8(mine, 0, mem->stride));
    MNNVL_CU("mem_alloc", comm->dev->cu->cuCtxSynchronize());
    return MNNVL_SUCCESS;
}

/* The steps of a collective allocation. Each local step's outcome is agreed on by all
 * ranks before the next, so a rank that fails (out of memory, capture, bad size) makes
 * every rank return instead of leaving the others waiting for its handle. */
static mnnvl_status_t alloc_collective(mnnvl_comm_t comm, mnnvl_symm_t *mem, int zero)
{
    int n = comm->size;
    piece_info_t mine = {.bytes = mem->size};
    piece_info_t *all = calloc((size_t)n, sizeof(*all));
    int *fds = calloc((size_t)n, sizeof(int));
    char(*names)[MNNVL_FD_NAME_LEN] = calloc((size_t)n, MNNVL_FD_NAME_LEN);
    mnnvl_fd_listener_t *listener = NULL;
    int my_fd = -1;
    mnnvl_status_t st = MNNVL_SUCCESS;
    if (!all || !fds || !names)
        st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "mem_alloc: out of memory");
    for (int p = 0; fds && p < n; p++)
        fds[p] = -1;
    /* A zero size fails like any local step: the peers learn of it through the allgather. */
    if (st == MNNVL_SUCCESS && mem->size == 0)
        st = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mem_alloc: rank %d asked for 0 bytes",
                         comm->rank);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_device_check_not_capturing(comm, "mem_alloc");
    if (st == MNNVL_SUCCESS)
        st = create_piece(comm, mem, &mine, &my_fd, &listener);
    mine.status = st;
    /* One allgather carries the status, the size and the handle or socket name. */
    mnnvl_status_t gathered =
        all ? comm->bs->ops->allgather(comm->bs, &mine, all, sizeof(mine)) : MNNVL_ERR_NO_MEMORY;
    if (gathered != MNNVL_SUCCESS && st == MNNVL_SUCCESS)
        st = gathered;
    /* Every rank now sees the same statuses and sizes, so every rank takes the same branch
     * below and makes the same number of collective calls. */
    if (gathered == MNNVL_SUCCESS) {
        mnnvl_status_t first = MNNVL_SUCCESS;
        for (int r = 0; r < n && first == MNNVL_SUCCESS; r++)
            if (all[r].status != MNNVL_SUCCESS && r != comm->rank)
                first = mnnvl_error((mnnvl_status_t)all[r].status,
                                    "mem_alloc: rank %d failed to allocate its %llu-byte piece "
                                    "(%s); see that rank's error",
                                    r, (unsigned long long)all[r].bytes,
                                    mnnvl_status_string(all[r].status));
        int anyone_failed = st != MNNVL_SUCCESS || first != MNNVL_SUCCESS;
        if (!anyone_failed) {
            st = check_sizes(comm, all);
            anyone_failed = st != MNNVL_SUCCESS;
        } else if (st == MNNVL_SUCCESS) {
            st = first;
        }
        if (!anyone_failed) {
            if (!comm->dev->fabric) {
                for (int r = 0; r < n; r++)
                    memcpy(names[r], all[r].socket, MNNVL_FD_NAME_LEN);
                st = mnnvl_fd_exchange(listener, comm->rank, n, my_fd,
                                       (const char(*)[MNNVL_FD_NAME_LEN])names, comm->dev->pids,
                                       comm->timeout_ms, fds);
            }
            if (st == MNNVL_SUCCESS)
                st = map_pieces(comm, mem, all, fds);
            if (st == MNNVL_SUCCESS && zero)
                st = zero_piece(comm, mem);
            /* Doubles as the barrier after which peers may touch our piece. */
            st = mnnvl_agree(comm->bs, st, "mem_alloc");
        }
    }
    for (int p = 0; fds && p < n; p++)
        if (fds[p] >= 0 && p != comm->rank)
            close(fds[p]);
    if (my_fd >= 0)
        close(my_fd);
    mnnvl_fd_listener_close(listener);
    free(all);
    free(fds);
    free(names);
    return st;
}

mnnvl_status_t mnnvl_symm_map(mnnvl_comm_t comm, mnnvl_status_t local, size_t bytes, int zero,
                              mnnvl_symm_t *mem)
{
    memset(mem, 0, sizeof(*mem));
    mnnvl_status_t st = local;
    if (st == MNNVL_SUCCESS) {
        mem->size = bytes;
        size_t g = comm->dev->granularity;
        mem->stride = (bytes + g - 1) / g * g;
        mem->handles = calloc((size_t)comm->size, sizeof(*mem->handles));
        mem->mapped = calloc((size_t)comm->size, sizeof(int));
        if (!mem->handles || !mem->mapped)
            st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "mem_alloc: out of memory");
    }
    if (st == MNNVL_SUCCESS)
        st = mnnvl_device_enter(comm, "mem_alloc");
    if (st != MNNVL_SUCCESS) {
        /* Still take part in the collective so the peers learn of the failure. */
        piece_info_t mine = {.status = st}, *all = calloc((size_t)comm->size, sizeof(mine));
        if (all)
            comm->bs->ops->allgather(comm->bs, &mine, all, sizeof(mine));
        free(all);
        free(mem->handles);
        free(mem->mapped);
        memset(mem, 0, sizeof(*mem));
        return st;
    }
    st = alloc_collective(comm, mem, zero);
    if (st != MNNVL_SUCCESS) {
        mnnvl_symm_unmap(comm, mem);
        return st;
    }
    MNNVL_DEBUG("mem_alloc: rank %d mapped %d x %zu bytes at %p", comm->rank, comm->size,
                mem->stride, (void *)(uintptr_t)mem->base);
    return MNNVL_SUCCESS;
}
