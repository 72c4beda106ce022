/* All-reduce planning: parameter checks, the workspace layout and the strategy choice.
 * Pure CPU, so it works in builds without CUDA (mnnvl_allreduce_workspace_size). */
#ifndef MNNVL_ALLREDUCE_PLAN_H
#define MNNVL_ALLREDUCE_PLAN_H

#include "mnnvl.h"

typedef struct mnnvl_allreduce_layout {
    size_t elem_bytes;
    size_t oneshot_max_bytes;    /* AUTO uses one-shot up to this message size */
    size_t oneshot_offset;       /* bytes from the workspace base */
    size_t oneshot_slot_vectors; /* 16-byte vectors per source rank: the one-shot chunk */
    size_t twoshot_offset;
    size_t twoshot_part_vectors; /* vectors one rank owns: the two-shot chunk is size x this */
    size_t total_bytes;          /* per rank */
} mnnvl_allreduce_layout_t;

/* Checks the parameters and computes the layout for `world_size` ranks. oneshot_max_bytes
 * 0 means the built-in threshold for that world size. */
/* Reads the caller's parameters into `own` (defaults for fields an older header lacks);
 * INVALID_ARGUMENT for NULL or a struct_size this library cannot read. */
mnnvl_status_t mnnvl_allreduce_params_read(const mnnvl_allreduce_params_t *caller,
                                           mnnvl_allreduce_params_t *own);

mnnvl_status_t mnnvl_allreduce_plan(const mnnvl_allreduce_params_t *params, int world_size,
                                    size_t oneshot_max_bytes, mnnvl_allreduce_layout_t *layout);

#endif
