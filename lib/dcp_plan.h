/* DCP all-to-all planning: the parameters' checks (including the struct_size convention)
 * and the workspace layout. Pure CPU, so mnnvl_dcp_a2a_workspace_size works in builds
 * without CUDA. The layout itself is described beside mnnvl_dcp_args_t in kernels/launch.h. */
#ifndef MNNVL_DCP_PLAN_H
#define MNNVL_DCP_PLAN_H

#include "kernels/launch.h"
#include "mnnvl.h"

typedef struct mnnvl_dcp_layout {
    size_t elem_bytes;
    int o_vectors;      /* 16-byte vectors of one head_dim row */
    int row_vectors;    /* one receive slot: the row, then the stats padded to 16 bytes */
    size_t flags;       /* offset of the flags */
    size_t data;        /* offset of the receive slots */
    size_t total_bytes; /* per rank */
} mnnvl_dcp_layout_t;

/* Checks the caller's parameters and copies them, completed with the defaults of fields an
 * older header did not have, into `params` (the normalised form the handle keeps and the
 * cache compares), and computes the layout. */
mnnvl_status_t mnnvl_dcp_plan(const mnnvl_dcp_a2a_params_t *caller, mnnvl_dcp_a2a_params_t *params,
                              mnnvl_dcp_layout_t *layout);

#endif
