/* MoE all-to-all planning: parameter checks and the workspace layout. Pure CPU, so
 * mnnvl_moe_a2a_workspace_size works in builds without CUDA. */
#ifndef MNNVL_MOE_PLAN_H
#define MNNVL_MOE_PLAN_H

#include <stddef.h>

#include "mnnvl.h"

/* Offsets in each rank's piece of the symmetric workspace. The header holds what peers
 * write into this rank: their dispatch and combine flags, how many tokens they sent, and
 * their R (to detect ranks that disagree). Regions are laid out for max_tokens_per_rank, so
 * their offsets never move and a row index s*R + j stays inside its region for any R up to
 * the maximum, even when ranks disagree on R. */
typedef struct mnnvl_moe_layout {
    size_t dispatch_flags; /* uint32 [MNNVL_MOE_MAX_RANKS] */
    size_t combine_flags;  /* uint32 [MNNVL_MOE_MAX_RANKS] */
    size_t recv_counts;    /* int32 [MNNVL_MOE_MAX_RANKS] */
    size_t recv_r;         /* int32 [MNNVL_MOE_MAX_RANKS] */
    size_t header_bytes;
    size_t payload[MNNVL_MOE_MAX_PAYLOADS]; /* each ep_size*max_tokens rows */
    size_t combine;                         /* ep_size*max_tokens rows of `hidden` */
    size_t combine_row_bytes;
    size_t total_bytes;
} mnnvl_moe_layout_t;

/* Reads the caller's parameters into `own` (defaults for fields an older header lacks);
 * INVALID_ARGUMENT for NULL or a struct_size this library cannot read. */
mnnvl_status_t mnnvl_moe_params_read(const mnnvl_moe_a2a_params_t *caller,
                                     mnnvl_moe_a2a_params_t *own);

mnnvl_status_t mnnvl_moe_plan(const mnnvl_moe_a2a_params_t *params, mnnvl_moe_layout_t *layout);

#endif
