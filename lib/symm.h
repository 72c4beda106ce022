/* Symmetric mappings: every rank's piece mapped into one reserved range, rank p at
 * base + p*stride, the same addresses on every GPU. The collective part of memory,
 * without handle lifetimes: mem.c wraps it into the public mnnvl_mem_t (which holds its
 * communicator), device_barrier.c keeps the barrier signals in one (which the communicator
 * holds). CUDA builds only. */
#ifndef MNNVL_SYMM_H
#define MNNVL_SYMM_H

#include <stddef.h>

#include "cuda_loader.h"
#include "mnnvl.h"

typedef struct mnnvl_symm {
    size_t size;   /* bytes asked for */
    size_t stride; /* the size rounded up to the allocation granularity */
    CUdeviceptr base;
    CUmemGenericAllocationHandle *handles; /* per rank: ours, then the imported ones */
    int *mapped;                           /* per rank: whether handles[p] is mapped */
} mnnvl_symm_t;

/* Allocates this rank's piece of `bytes`, exchanges the handles and maps every piece into
 * `*out` (zeroed first). `local` is the caller's outcome so far: when it failed, this rank
 * only takes part in the exchange, so that the peers learn of it, and returns it. Every
 * rank must ask for the same size (MISMATCH); `zero` clears this rank's piece before the
 * collective completes, so no peer sees stale flags. On any failure `*out` holds nothing.
 * Errors: INVALID_ARGUMENT (0 bytes), GRAPH_CAPTURE, CUDA, MISMATCH, NO_MEMORY, and those
 * of the fd exchange and the bootstrap. Collective; makes the device current. */
mnnvl_status_t mnnvl_symm_map(mnnvl_comm_t comm, mnnvl_status_t local, size_t bytes, int zero,
                              mnnvl_symm_t *out);

/* Unmaps and frees what mnnvl_symm_map made (after synchronising the context: work still
 * queued may use the range). Local. Safe on a zeroed struct. */
void mnnvl_symm_unmap(mnnvl_comm_t comm, mnnvl_symm_t *symm);

#endif
