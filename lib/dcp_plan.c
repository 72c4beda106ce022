#include <stddef.h>
#include <string.h>

#include "dcp_plan.h"
#include "error.h"
#include "params.h"

#define ALIGN 128u

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

MNNVL_API void mnnvl_dcp_a2a_params_init(mnnvl_dcp_a2a_params_t *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->struct_size = sizeof(*p);
    p->head_dim = 128;
    p->dtype = MNNVL_DTYPE_BF16;
    p->stats_lanes = 2;
    p->lse_base = MNNVL_LSE_BASE_E;
}

/* The first struct_size any header had: everything up to and including lse_base. */
#define PARAMS_FIRST_SIZE (offsetof(mnnvl_dcp_a2a_params_t, lse_base) + sizeof(mnnvl_lse_base_t))

/* The struct_size convention of every params struct (params.h): an older, smaller struct
 * is read over the defaults, a larger one from a newer header is refused. */
static mnnvl_status_t copy_params(const mnnvl_dcp_a2a_params_t *caller, mnnvl_dcp_a2a_params_t *out,
                                  const char *what)
{
    mnnvl_dcp_a2a_params_init(out);
    return MNNVL_PARAMS_COPY(out, caller, PARAMS_FIRST_SIZE, what, "mnnvl_dcp_a2a_params_init");
}

mnnvl_status_t mnnvl_dcp_plan(const mnnvl_dcp_a2a_params_t *caller, mnnvl_dcp_a2a_params_t *p,
                              mnnvl_dcp_layout_t *l)
{
    const char *what = "dcp_a2a";
    MNNVL_CHECK(copy_params(caller, p, what));
    if (p->cp_size < 1 || p->cp_size > MNNVL_DCP_MAX_RANKS)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: cp_size %d must be in [1, %d]", what,
                           p->cp_size, MNNVL_DCP_MAX_RANKS);
    if (p->max_entries < 1 || p->max_entries > MNNVL_DCP_MAX_ENTRIES)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: max_entries %d must be in [1, %d] (the largest entry count "
                           "any call will pass)",
                           what, p->max_entries, MNNVL_DCP_MAX_ENTRIES);
    if (p->dtype != MNNVL_DTYPE_FP16 && p->dtype != MNNVL_DTYPE_BF16)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: dtype %d is not FP16 (1) or BF16 (2); partial outputs are "
                           "16-bit",
                           what, (int)p->dtype);
    if (p->head_dim < 8 || p->head_dim > 1024 || p->head_dim % 8 != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: head_dim %d must be a multiple of 8 in [8, 1024] (rows move "
                           "in 16-byte vectors)",
                           what, p->head_dim);
    if (p->stats_lanes < 1 || p->stats_lanes > MNNVL_DCP_MAX_STATS_LANES)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: stats_lanes %d must be in [1, %d]",
                           what, p->stats_lanes, MNNVL_DCP_MAX_STATS_LANES);
    if (p->lse_base != MNNVL_LSE_BASE_E && p->lse_base != MNNVL_LSE_BASE_2)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: lse_base %d is not MNNVL_LSE_BASE_E (0) or MNNVL_LSE_BASE_2 (1)",
                           what, (int)p->lse_base);
    memset(l, 0, sizeof(*l));
    l->elem_bytes = mnnvl_dtype_size(p->dtype);
    l->o_vectors = (int)((size_t)p->head_dim * l->elem_bytes / 16);
    l->row_vectors = l->o_vectors + (int)round_up((size_t)p->stats_lanes * 4, 16) / 16;
    const size_t cp = (size_t)p->cp_size;
    l->flags = 0;
    l->data = round_up(2 * cp * MNNVL_DCP_CHANNELS * sizeof(uint64_t), ALIGN);
    const size_t slots = 2 * cp * (size_t)p->max_entries * (size_t)l->row_vectors * 16;
    l->total_bytes = round_up(l->data + slots, ALIGN);
    return MNNVL_SUCCESS;
}

MNNVL_API size_t mnnvl_dcp_a2a_workspace_size(const mnnvl_dcp_a2a_params_t *params)
{
    mnnvl_dcp_a2a_params_t p;
    mnnvl_dcp_layout_t l;
    return mnnvl_dcp_plan(params, &p, &l) == MNNVL_SUCCESS ? l.total_bytes : 0;
}
