#include <stddef.h>
#include <string.h>

#include "error.h"
#include "moe_plan.h"
#include "params.h"

#define ALIGN 128u

static size_t round_up(size_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

MNNVL_API void mnnvl_moe_a2a_params_init(mnnvl_moe_a2a_params_t *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->struct_size = sizeof(*p);
    p->top_k = 1;
    p->num_payloads = 1;
    p->combine_dtype = MNNVL_DTYPE_BF16;
}

/* The first version of this layout (libmnnvl 0.2) ends after payload_bytes. */
#define FIRST_SIZE                                     \
    (offsetof(mnnvl_moe_a2a_params_t, payload_bytes) + \
     sizeof(((mnnvl_moe_a2a_params_t *)0)->payload_bytes))

mnnvl_status_t mnnvl_moe_params_read(const mnnvl_moe_a2a_params_t *caller,
                                     mnnvl_moe_a2a_params_t *own)
{
    mnnvl_moe_a2a_params_init(own);
    return MNNVL_PARAMS_COPY(own, caller, FIRST_SIZE, "moe_a2a", "mnnvl_moe_a2a_params_init");
}

mnnvl_status_t mnnvl_moe_plan(const mnnvl_moe_a2a_params_t *caller, mnnvl_moe_layout_t *l)
{
    const char *what = "moe_a2a";
    if (!l)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: layout is NULL", what);
    mnnvl_moe_a2a_params_t own;
    MNNVL_CHECK(mnnvl_moe_params_read(caller, &own));
    const mnnvl_moe_a2a_params_t *p = &own;
    if (p->ep_size < 1 || p->ep_size > MNNVL_MOE_MAX_RANKS)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: ep_size %d must be in [1, %d]", what,
                           p->ep_size, MNNVL_MOE_MAX_RANKS);
    if (p->num_experts < p->ep_size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: num_experts %d must be at least ep_size %d", what, p->num_experts,
                           p->ep_size);
    if (p->top_k < 1 || p->top_k > MNNVL_MOE_MAX_TOP_K)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: top_k %d must be in [1, %d]", what,
                           p->top_k, MNNVL_MOE_MAX_TOP_K);
    if (p->max_tokens_per_rank < 1 || p->max_tokens_per_rank > (1 << 24))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: max_tokens_per_rank %d must be in [1, 2^24]", what,
                           p->max_tokens_per_rank);
    if (p->num_payloads < 1 || p->num_payloads > MNNVL_MOE_MAX_PAYLOADS)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: num_payloads %d must be in [1, %d]",
                           what, p->num_payloads, MNNVL_MOE_MAX_PAYLOADS);
    size_t elem = mnnvl_dtype_size(p->combine_dtype);
    if (elem == 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: combine_dtype %d is not FP32 (0), FP16 (1) or BF16 (2)", what,
                           (int)p->combine_dtype);
    if (p->hidden < 1 || ((size_t)p->hidden * elem) % 16 != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: hidden %d must be positive and a multiple of %zu elements (16 "
                           "bytes)",
                           what, p->hidden, 16 / elem);
    memset(l, 0, sizeof(*l));
    l->dispatch_flags = 0;
    l->combine_flags = 4 * MNNVL_MOE_MAX_RANKS;
    l->recv_counts = 8 * MNNVL_MOE_MAX_RANKS;
    l->recv_r = 12 * MNNVL_MOE_MAX_RANKS;
    l->header_bytes = round_up(16 * MNNVL_MOE_MAX_RANKS);
    const size_t rows = (size_t)p->ep_size * (size_t)p->max_tokens_per_rank;
    size_t at = l->header_bytes;
    for (int i = 0; i < p->num_payloads; i++) {
        if (p->payload_bytes[i] == 0 || p->payload_bytes[i] % 4 != 0 ||
            p->payload_bytes[i] > ((size_t)1 << 30))
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                               "%s: payload_bytes[%d] = %zu must be a positive multiple of 4 "
                               "(at most 2^30)",
                               what, i, p->payload_bytes[i]);
        l->payload[i] = at;
        at = round_up(at + rows * p->payload_bytes[i]);
    }
    l->combine_row_bytes = (size_t)p->hidden * elem;
    l->combine = at;
    l->total_bytes = round_up(at + rows * l->combine_row_bytes);
    return MNNVL_SUCCESS;
}

MNNVL_API size_t mnnvl_moe_a2a_workspace_size(const mnnvl_moe_a2a_params_t *params)
{
    mnnvl_moe_layout_t l;
    return mnnvl_moe_plan(params, &l) == MNNVL_SUCCESS ? l.total_bytes : 0;
}
