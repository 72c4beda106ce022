/* MoE all-to-all handles: workspace setup, the dispatch/combine state machine, host-side
 * argument checks and the launches. The kernels are in kernels/moe.cu. */
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fault.h"
#include "log.h"
#include "moe_plan.h"
#include "op.h"

enum phase { IDLE, DISPATCHED };

struct mnnvl_moe_a2a_s {
    mnnvl_op_handle_t op; /* op.mem is the workspace */
    mnnvl_comm_t comm;    /* op.comm, for brevity */
    mnnvl_moe_a2a_params_t params;
    mnnvl_moe_layout_t layout;
    CUdeviceptr control; /* mnnvl_moe_control_t, then the route tables */
    int8_t *route_dest;
    int32_t *route_slot;
    uint8_t *route_n;
    uint8_t *lost; /* fault-tolerant: per token, whether combine missed a dead rank */
    int sm_count;
    /* Host-side state: calls must alternate, and combine reuses dispatch's sizes. */
    enum phase phase;
    int tokens;
    int r;
    int dispatched_once;
};

static void free_resources(mnnvl_op_handle_t *op)
{
    mnnvl_moe_a2a_t a = (mnnvl_moe_a2a_t)op;
    if (a->control)
        a->comm->dev->cu->cuMemFree(a->control);
}

/* Control block and route tables (local memory), zeroed; this rank's header zeroed. */
static mnnvl_status_t setup_local(mnnvl_moe_a2a_t a)
{
    const mnnvl_cuda_driver_t *cu = a->comm->dev->cu;
    const size_t entries = (size_t)a->params.max_tokens_per_rank * (size_t)a->params.top_k;
    const size_t control = (sizeof(mnnvl_moe_control_t) + 127) / 128 * 128;
    const size_t slots_at = control, dest_at = slots_at + entries * sizeof(int32_t);
    const size_t n_at = dest_at + entries, lost_at = n_at + (size_t)a->params.max_tokens_per_rank;
    const size_t bytes = lost_at + (size_t)a->params.max_tokens_per_rank;
    a->sm_count = a->comm->dev->sms;
    MNNVL_CU("moe_a2a_create", cu->cuMemAlloc(&a->control, bytes));
    MNNVL_CHECK(mnnvl_device_launched(
        mnnvl_launch_zero_reset((void *)(uintptr_t)a->control, bytes, NULL), "moe_a2a_create"));
    a->route_slot = (int32_t *)(uintptr_t)(a->control + slots_at);
    a->route_dest = (int8_t *)(uintptr_t)(a->control + dest_at);
    a->route_n = (uint8_t *)(uintptr_t)(a->control + n_at);
    if (a->params.fault_tolerant)
        a->lost = (uint8_t *)(uintptr_t)(a->control + lost_at);
    CUdeviceptr mine = (CUdeviceptr)(uintptr_t)mnnvl_mem_ptr(a->op.mem, a->comm->rank);
    MNNVL_CHECK(mnnvl_device_launched(
        mnnvl_launch_zero_reset((void *)(uintptr_t)mine, a->layout.header_bytes, NULL),
        "moe_a2a_create"));
    MNNVL_CU("moe_a2a_create", cu->cuCtxSynchronize());
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_moe_a2a_params_t *params,
                                              mnnvl_moe_a2a_t *out)
{
    const char *what = "moe_a2a_create";
    MNNVL_CHECK(mnnvl_op_create_check(comm, out, what, "a2a"));
    mnnvl_moe_layout_t layout;
    mnnvl_moe_a2a_params_t own;
    mnnvl_status_t st = mnnvl_moe_params_read(params, &own);
    if (st == MNNVL_SUCCESS) {
        params = &own; /* never read past a smaller struct from an older header */
        st = mnnvl_moe_plan(params, &layout);
    }
    if (st == MNNVL_SUCCESS && params->ep_size != comm->size)
        st = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                         "%s: ep_size %d does not match the communicator's %d ranks; build the "
                         "communicator over the EP group (mnnvl_comm_split with "
                         "MNNVL_GROUP_MOE_EP)",
                         what, params->ep_size, comm->size);
    int peer_timeout_ms = params->peer_timeout_ms;
    if (st == MNNVL_SUCCESS)
        st = mnnvl_fault_params(comm, params->fault_tolerant, &peer_timeout_ms, what);
    /* The normalised parameters make the key; read only once the plan accepted them. */
    mnnvl_moe_a2a_params_t key;
    memset(&key, 0, sizeof(key));
    if (st == MNNVL_SUCCESS) {
        key = *params;
        key.struct_size = sizeof(key);
        key.peer_timeout_ms = peer_timeout_ms;
        for (int i = key.num_payloads; i < MNNVL_MOE_MAX_PAYLOADS; i++)
            key.payload_bytes[i] = 0;
    }
    void *found;
    MNNVL_CHECK(
        mnnvl_op_create_prepare(comm, st, MNNVL_CACHED_MOE_A2A, &key, sizeof(key), &found, what));
    if (found) {
        *out = found;
        return MNNVL_SUCCESS;
    }
    mnnvl_moe_a2a_t a = calloc(1, sizeof(*a));
    if (!a)
        st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "%s: out of memory", what);
    st = mnnvl_comm_agree(comm, st, what);
    if (st != MNNVL_SUCCESS || !a) { /* !a: agree returns this rank's NO_MEMORY */
        free(a);                     /* allocated here when another rank's allocation failed */
        return st;
    }
    mnnvl_op_init(&a->op, comm, free_resources);
    a->comm = comm;
    a->params = key;
    a->layout = layout;
    st = mnnvl_mem_alloc(comm, layout.total_bytes, &a->op.mem); /* collective, agreed */
    if (st == MNNVL_SUCCESS) {
        st = mnnvl_comm_agree(comm, setup_local(a), what); /* doubles as the barrier */
    }
    if (st != MNNVL_SUCCESS) {
        mnnvl_op_free(&a->op);
        return st;
    }
    MNNVL_CHECK(mnnvl_op_cache_add(&a->op, MNNVL_CACHED_MOE_A2A, &key, sizeof(key)));
    MNNVL_DEBUG("%s: rank %d of %d, %zu workspace bytes", what, comm->rank, comm->size,
                layout.total_bytes);
    *out = a;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_retain(mnnvl_moe_a2a_t a)
{
    if (!a)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "moe_a2a_retain: a2a is NULL");
    mnnvl_op_retain(&a->op);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_destroy(mnnvl_moe_a2a_t a)
{
    return mnnvl_op_release((mnnvl_op_handle_t *)a);
}

/* The arguments every launch shares. */
static mnnvl_status_t base_args(mnnvl_moe_a2a_t a, const char *what, mnnvl_moe_args_t *args)
{
    MNNVL_CHECK(mnnvl_fault_op_enter((const mnnvl_op_handle_t *)a, a && a->params.fault_tolerant,
                                     what, "a2a"));
    const mnnvl_moe_a2a_params_t *p = &a->params;
    const mnnvl_moe_layout_t *l = &a->layout;
    memset(args, 0, sizeof(*args));
    args->rank = a->comm->rank;
    args->ep_size = p->ep_size;
    args->num_experts = p->num_experts;
    args->top_k = p->top_k;
    args->max_tokens = p->max_tokens_per_rank;
    for (int r = 0; r < p->ep_size; r++)
        args->peers[r] = mnnvl_mem_ptr(a->op.mem, r);
    args->dispatch_flags = l->dispatch_flags;
    args->combine_flags = l->combine_flags;
    args->recv_counts = l->recv_counts;
    args->recv_r = l->recv_r;
    args->num_payloads = p->num_payloads;
    for (int i = 0; i < p->num_payloads; i++) {
        args->payload_offset[i] = l->payload[i];
        args->payload_bytes[i] = p->payload_bytes[i];
    }
    args->combine_offset = l->combine;
    args->combine_row_bytes = l->combine_row_bytes;
    args->combine_dtype = p->combine_dtype;
    args->route_dest = a->route_dest;
    args->route_slot = a->route_slot;
    args->route_n = a->route_n;
    args->control = (mnnvl_moe_control_t *)(uintptr_t)a->control;
    args->sm_count = a->sm_count;
    args->wait.control = (mnnvl_device_control_t *)(uintptr_t)a->comm->dev->control_dev;
    args->wait.timeout_ns = a->comm->dev->timeout_ns;
    mnnvl_fault_wait_args(a->comm, p->fault_tolerant, p->peer_timeout_ms, &args->wait);
    args->lost = a->lost;
    args->tokens = a->tokens;
    args->r = a->r;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t launched(int err, const char *what)
{
    if (err != 0)
        return mnnvl_error(MNNVL_ERR_CUDA, "%s: kernel launch failed with CUDA runtime error %d",
                           what, err);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_dispatch(mnnvl_moe_a2a_t a,
                                                const int32_t *token_selected_experts,
                                                const void *const *payloads, int local_num_tokens,
                                                int runtime_max_tokens, void *stream)
{
    const char *what = "moe_a2a_dispatch";
    mnnvl_moe_args_t args;
    MNNVL_CHECK(base_args(a, what, &args));
    const int max = a->params.max_tokens_per_rank;
    if (a->phase != IDLE)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "%s: the previous dispatch has not been combined yet; dispatch and "
                           "combine must alternate",
                           what);
    if (runtime_max_tokens < 0 || runtime_max_tokens > max)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: runtime_max_tokens %d must be in [0, max_tokens_per_rank %d]", what,
                           runtime_max_tokens, max);
    if (local_num_tokens < 0 || local_num_tokens > runtime_max_tokens)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: local_num_tokens %d must be in [0, runtime_max_tokens %d] (and "
                           "max_tokens_per_rank %d)",
                           what, local_num_tokens, runtime_max_tokens, max);
    if (local_num_tokens > 0 && (!token_selected_experts || !payloads))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: token_selected_experts or payloads is NULL with %d tokens", what,
                           local_num_tokens);
    for (int i = 0; local_num_tokens > 0 && i < a->params.num_payloads; i++) {
        if (!payloads[i] || ((uintptr_t)payloads[i] & 3) != 0)
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                               "%s: payload %d (%p) is NULL or not 4-byte aligned", what, i,
                               payloads[i]);
        args.payload_src[i] = payloads[i];
    }
    args.experts = token_selected_experts;
    args.tokens = local_num_tokens;
    args.r = runtime_max_tokens;
    MNNVL_CHECK(launched(mnnvl_launch_moe_dispatch(&args, stream), what));
    a->phase = DISPATCHED;
    a->tokens = local_num_tokens;
    a->r = runtime_max_tokens;
    a->dispatched_once = 1;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_sanitize(mnnvl_moe_a2a_t a, int index, void *stream)
{
    const char *what = "moe_a2a_sanitize";
    mnnvl_moe_args_t args;
    MNNVL_CHECK(base_args(a, what, &args));
    if (a->phase != DISPATCHED)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE, "%s: no dispatch to sanitize", what);
    if (index < 0 || index >= a->params.num_payloads ||
        a->params.payload_bytes[index] != (size_t)a->params.top_k * 4)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: payload %d must exist and hold top_k %d int32 ids per row (%d "
                           "bytes)",
                           what, index, a->params.top_k, a->params.top_k * 4);
    args.sanitize_index = index;
    return launched(mnnvl_launch_moe_sanitize(&args, stream), what);
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_combine(mnnvl_moe_a2a_t a, const void *expert_out, void *out,
                                               void *stream)
{
    const char *what = "moe_a2a_combine";
    mnnvl_moe_args_t args;
    MNNVL_CHECK(base_args(a, what, &args));
    if (a->phase != DISPATCHED)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "%s: combine needs a dispatch first; dispatch and combine must "
                           "alternate",
                           what);
    if (a->tokens > 0 && (!out || ((uintptr_t)out & 15) != 0))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: out (%p) is NULL or not 16-byte aligned with %d tokens", what, out,
                           a->tokens);
    if (expert_out && ((uintptr_t)expert_out & 15) != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: expert_out (%p) is not 16-byte aligned",
                           what, expert_out);
    args.expert_out = expert_out == mnnvl_moe_a2a_combine_buffer(a) ? NULL : expert_out;
    args.out = out;
    MNNVL_CHECK(launched(mnnvl_launch_moe_combine(&args, stream), what));
    a->phase = IDLE;
    return MNNVL_SUCCESS;
}

MNNVL_API const uint8_t *mnnvl_moe_a2a_lost_tokens(const mnnvl_moe_a2a_t a)
{
    return a ? a->lost : NULL;
}

MNNVL_API void *mnnvl_moe_a2a_recv_buffer(const mnnvl_moe_a2a_t a, int index)
{
    if (!a || index < 0 || index >= a->params.num_payloads || !a->dispatched_once)
        return NULL;
    return (char *)mnnvl_mem_ptr(a->op.mem, a->comm->rank) + a->layout.payload[index];
}

MNNVL_API const int32_t *mnnvl_moe_a2a_recv_counts(const mnnvl_moe_a2a_t a)
{
    if (!a)
        return NULL;
    char *mine = mnnvl_mem_ptr(a->op.mem, a->comm->rank);
    return (const int32_t *)(mine + a->layout.recv_counts);
}

MNNVL_API void *mnnvl_moe_a2a_combine_buffer(const mnnvl_moe_a2a_t a)
{
    if (!a)
        return NULL;
    return (char *)mnnvl_mem_ptr(a->op.mem, a->comm->rank) + a->layout.combine;
}
