#include <stddef.h>
#include <string.h>

#include "allreduce_plan.h"
#include "error.h"
#include "params.h"

#define ALIGN 128u
/* Two-shot chunks beyond this gain no bandwidth and only cost workspace. */
#define TWOSHOT_CHUNK_MAX (32u << 20)

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

MNNVL_API size_t mnnvl_dtype_size(mnnvl_dtype_t dtype)
{
    switch (dtype) {
    case MNNVL_DTYPE_FP32: return 4;
    case MNNVL_DTYPE_FP16:
    case MNNVL_DTYPE_BF16: return 2;
    }
    return 0;
}

MNNVL_API void mnnvl_allreduce_params_init(mnnvl_allreduce_params_t *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->struct_size = sizeof(*p);
    p->dtype = MNNVL_DTYPE_BF16;
    p->max_count = 1u << 20;
    p->strategy = MNNVL_ALLREDUCE_AUTO;
}

/* Measured on 4x H200 (bench/RESULTS.md): one-shot sends (n-1) copies of the message, two-shot
 * 2(n-1)/n, but one-shot saves a hop, which wins while the message is small. */
static size_t default_oneshot_max(int world_size)
{
    if (world_size <= 2)
        return 4u << 20;
    if (world_size <= 4)
        return 512u << 10;
    if (world_size <= 8)
        return 256u << 10;
    return 128u << 10;
}

/* The struct as libmnnvl 0.1 defined it ends after external_buffer_bytes. */
#define FIRST_SIZE                                               \
    (offsetof(mnnvl_allreduce_params_t, external_buffer_bytes) + \
     sizeof(((mnnvl_allreduce_params_t *)0)->external_buffer_bytes))

mnnvl_status_t mnnvl_allreduce_params_read(const mnnvl_allreduce_params_t *caller,
                                           mnnvl_allreduce_params_t *own)
{
    mnnvl_allreduce_params_init(own);
    return MNNVL_PARAMS_COPY(own, caller, FIRST_SIZE, "allreduce", "mnnvl_allreduce_params_init");
}

mnnvl_status_t mnnvl_allreduce_plan(const mnnvl_allreduce_params_t *caller, int world_size,
                                    size_t oneshot_max_bytes, mnnvl_allreduce_layout_t *l)
{
    if (!l)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "allreduce: layout is NULL");
    mnnvl_allreduce_params_t own;
    MNNVL_CHECK(mnnvl_allreduce_params_read(caller, &own));
    const mnnvl_allreduce_params_t *p = &own;
    size_t elem = mnnvl_dtype_size(p->dtype);
    if (elem == 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce: dtype %d is not FP32 (0), FP16 (1) or BF16 (2)",
                           (int)p->dtype);
    if (p->strategy < MNNVL_ALLREDUCE_AUTO || p->strategy > MNNVL_ALLREDUCE_TWOSHOT)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce: strategy %d is not AUTO (0), ONESHOT (1) or TWOSHOT (2)",
                           (int)p->strategy);
    if (p->max_count == 0 || p->max_count > ((size_t)1 << 40))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce: max_count %zu must be in [1, 2^40]", p->max_count);
    if (world_size < 1)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "allreduce: world_size %d", world_size);
    memset(l, 0, sizeof(*l));
    l->elem_bytes = elem;
    l->oneshot_max_bytes = oneshot_max_bytes ? oneshot_max_bytes : default_oneshot_max(world_size);
    const size_t max_bytes = round_up(p->max_count * elem, 16);
    size_t oneshot_bytes = max_bytes < l->oneshot_max_bytes ? max_bytes : l->oneshot_max_bytes;
    oneshot_bytes = round_up(oneshot_bytes, 16);
    size_t twoshot_bytes = max_bytes < TWOSHOT_CHUNK_MAX ? max_bytes : TWOSHOT_CHUNK_MAX;
    l->oneshot_slot_vectors = oneshot_bytes / 16;
    l->twoshot_part_vectors = (twoshot_bytes / 16 + (size_t)world_size - 1) / (size_t)world_size;
    /* Three rotating buffers each: one-shot [n][slot]; two-shot A [n][part] + B [n*part]. */
    l->oneshot_offset = 0;
    size_t oneshot_total = 3 * (size_t)world_size * l->oneshot_slot_vectors * 16;
    l->twoshot_offset = round_up(oneshot_total, ALIGN);
    size_t twoshot_total = 3 * 2 * (size_t)world_size * l->twoshot_part_vectors * 16;
    l->total_bytes = round_up(l->twoshot_offset + twoshot_total, ALIGN);
    return MNNVL_SUCCESS;
}

MNNVL_API size_t mnnvl_allreduce_workspace_size(const mnnvl_allreduce_params_t *params,
                                                int world_size)
{
    mnnvl_allreduce_layout_t l;
    if (mnnvl_allreduce_plan(params, world_size, 0, &l) != MNNVL_SUCCESS)
        return 0;
    return l.total_bytes;
}
