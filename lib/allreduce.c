/* All-reduce handles: workspace setup (own symmetric memory or the caller's buffers), the
 * host-side argument checks, the strategy choice and the chunk loop. The kernels are in
 * kernels/allreduce.cu. */
#include <stdlib.h>
#include <string.h>

#include "allreduce_plan.h"
#include "config.h"
#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fault.h"
#include "log.h"
#include "op.h"

/* kernels/allreduce.cu holds a row in registers: 512 threads x 64 values. */
#define MAX_HIDDEN 32768

struct mnnvl_allreduce_s {
    mnnvl_op_handle_t op; /* op.mem is NULL when the caller's buffers are used */
    mnnvl_comm_t comm;    /* op.comm, for brevity */
    mnnvl_allreduce_params_t params;
    mnnvl_allreduce_layout_t layout;
    CUdeviceptr peers;    /* device array: each rank's workspace base */
    CUdeviceptr controls; /* two mnnvl_allreduce_control_t: one-shot, two-shot */
    char **bases;         /* host copy of the peer table */
    int blocks;           /* SM count */
};

/* What makes two handles interchangeable: the normalised parameters. */
typedef struct cache_key {
    int dtype;
    int strategy;
    int weight_bias;
    size_t max_count;
    size_t oneshot_max;
    void *const *external;
    size_t external_bytes;
    int fault_tolerant;
    int peer_timeout_ms; /* in effect: the config's when the params said 0 */
} cache_key_t;

static void free_resources(mnnvl_op_handle_t *op)
{
    mnnvl_allreduce_t ar = (mnnvl_allreduce_t)op;
    const mnnvl_cuda_driver_t *cu = ar->comm->dev->cu;
    if (ar->peers)
        cu->cuMemFree(ar->peers);
    if (ar->controls)
        cu->cuMemFree(ar->controls);
    free(ar->bases);
}

/* Checks the caller's buffers: the opt-in, one per rank, each large enough and aligned. */
static mnnvl_status_t check_external(mnnvl_comm_t comm, const mnnvl_allreduce_params_t *p,
                                     size_t needed)
{
    if (strcmp(mnnvl_config_value(comm->config, "external_buffers"), "1") != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "allreduce_create: params.external_buffers is set but the config "
                           "key external_buffers is not 1; caller-provided workspaces are an "
                           "explicit opt-in");
    if (p->external_buffer_count != comm->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce_create: %d external buffers for a communicator of %d ranks",
                           p->external_buffer_count, comm->size);
    if (p->external_buffer_bytes < needed)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce_create: external buffers of %zu bytes are smaller than the "
                           "%zu bytes this all-reduce needs (mnnvl_allreduce_workspace_size)",
                           p->external_buffer_bytes, needed);
    for (int r = 0; r < comm->size; r++)
        if (!p->external_buffers[r] || ((uintptr_t)p->external_buffers[r] & 127) != 0)
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                               "allreduce_create: external buffer %d (%p) is NULL or not "
                               "128-byte aligned",
                               r, p->external_buffers[r]);
    return MNNVL_SUCCESS;
}

/* Local setup after the workspace exists: pointer table, control blocks, and this rank's
 * Lamport buffers filled with the empty mark. */
static mnnvl_status_t setup_local(mnnvl_allreduce_t ar, void *const *bases)
{
    mnnvl_comm_t comm = ar->comm;
    const mnnvl_cuda_driver_t *cu = comm->dev->cu;
    ar->blocks = comm->dev->sms;
    size_t table = (size_t)comm->size * sizeof(void *);
    MNNVL_CU("allreduce_create", cu->cuMemAlloc(&ar->peers, table));
    MNNVL_CU("allreduce_create", cu->cuMemcpyHtoD(ar->peers, bases, table));
    size_t controls = 2 * sizeof(mnnvl_allreduce_control_t);
    MNNVL_CU("allreduce_create", cu->cuMemAlloc(&ar->controls, controls));
    MNNVL_CHECK(mnnvl_device_launched(
        mnnvl_launch_zero_reset((void *)(uintptr_t)ar->controls, controls, NULL),
        "allreduce_create"));
    MNNVL_CHECK(
        mnnvl_device_launched(mnnvl_launch_lamport_reset(bases[comm->rank], ar->layout.total_bytes,
                                                         ar->params.dtype, NULL),
                              "allreduce_create"));
    MNNVL_CU("allreduce_create", cu->cuCtxSynchronize());
    return MNNVL_SUCCESS;
}

static mnnvl_status_t create_new(mnnvl_comm_t comm, const mnnvl_allreduce_params_t *p,
                                 const mnnvl_allreduce_layout_t *layout, mnnvl_allreduce_t *out)
{
    mnnvl_allreduce_t ar = calloc(1, sizeof(*ar));
    void **bases = calloc((size_t)comm->size, sizeof(void *));
    mnnvl_status_t st = MNNVL_SUCCESS;
    if (!ar || !bases)
        st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "allreduce_create: out of memory");
    if (st == MNNVL_SUCCESS) {
        mnnvl_op_init(&ar->op, comm, free_resources);
        ar->comm = comm;
        ar->params = *p;
        ar->layout = *layout;
    }
    if (st == MNNVL_SUCCESS && p->external_buffers)
        st = check_external(comm, p, layout->total_bytes);
    /* The own allocation is itself collective and agrees on its outcome. */
    if (st == MNNVL_SUCCESS && !p->external_buffers) {
        st = mnnvl_mem_alloc(comm, layout->total_bytes, &ar->op.mem);
        if (st != MNNVL_SUCCESS) {
            free(bases);
            mnnvl_comm_destroy(comm);
            free(ar);
            return st;
        }
    }
    for (int r = 0; st == MNNVL_SUCCESS && r < comm->size; r++)
        bases[r] = p->external_buffers ? p->external_buffers[r] : mnnvl_mem_ptr(ar->op.mem, r);
    if (st == MNNVL_SUCCESS)
        st = setup_local(ar, bases);
    if (ar)
        ar->bases = (char **)bases;
    else
        free(bases);
    /* Every rank's buffers must be empty before any rank's first call writes into them. */
    st = mnnvl_comm_agree(comm, st, "allreduce_create");
    if (st != MNNVL_SUCCESS) {
        if (ar && ar->comm)
            mnnvl_op_free(&ar->op);
        else
            free(ar);
        return st;
    }
    *out = ar;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_create(mnnvl_comm_t comm,
                                                const mnnvl_allreduce_params_t *params,
                                                mnnvl_allreduce_t *allreduce)
{
    const char *what = "allreduce_create";
    MNNVL_CHECK(mnnvl_op_create_check(comm, allreduce, what, "allreduce"));
    size_t oneshot_max =
        strtoull(mnnvl_config_value(comm->config, "allreduce_oneshot_max"), NULL, 10);
    mnnvl_allreduce_layout_t layout;
    mnnvl_allreduce_params_t own;
    mnnvl_status_t st = mnnvl_allreduce_params_read(params, &own);
    if (st == MNNVL_SUCCESS) {
        params = &own; /* never read past a smaller struct from an older header */
        st = mnnvl_allreduce_plan(params, comm->size, oneshot_max, &layout);
    }
    int peer_timeout_ms = st == MNNVL_SUCCESS ? params->peer_timeout_ms : 0;
    if (st == MNNVL_SUCCESS)
        st = mnnvl_fault_params(comm, params->fault_tolerant, &peer_timeout_ms, what);
    /* The normalised parameters make the key; read only once the plan accepted them. */
    cache_key_t key;
    memset(&key, 0, sizeof(key));
    if (st == MNNVL_SUCCESS) {
        key.dtype = params->dtype;
        key.strategy = params->strategy;
        key.weight_bias = params->rmsnorm_weight_bias != 0;
        key.max_count = params->max_count;
        key.oneshot_max = layout.oneshot_max_bytes;
        key.external = params->external_buffers;
        key.external_bytes = params->external_buffers ? params->external_buffer_bytes : 0;
        key.fault_tolerant = params->fault_tolerant;
        key.peer_timeout_ms = peer_timeout_ms;
    }
    void *found;
    MNNVL_CHECK(
        mnnvl_op_create_prepare(comm, st, MNNVL_CACHED_ALLREDUCE, &key, sizeof(key), &found, what));
    if (found) {
        *allreduce = found;
        return MNNVL_SUCCESS;
    }
    mnnvl_allreduce_params_t normalised = *params;
    normalised.rmsnorm_weight_bias = key.weight_bias;
    normalised.peer_timeout_ms = key.peer_timeout_ms;
    MNNVL_CHECK(create_new(comm, &normalised, &layout, allreduce));
    st = mnnvl_op_cache_add(&(*allreduce)->op, MNNVL_CACHED_ALLREDUCE, &key, sizeof(key));
    if (st != MNNVL_SUCCESS)
        *allreduce = NULL;
    MNNVL_DEBUG("allreduce_create: rank %d, %zu workspace bytes, one-shot up to %zu bytes",
                comm->rank, layout.total_bytes, layout.oneshot_max_bytes);
    return st;
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_destroy(mnnvl_allreduce_t ar)
{
    return mnnvl_op_release((mnnvl_op_handle_t *)ar);
}

/* Launches the kernels for `count` elements (all arguments checked), in chunks that fit
 * the workspace of the chosen protocol. */
static mnnvl_status_t run(mnnvl_allreduce_t ar, mnnvl_allreduce_args_t *args, size_t count,
                          size_t chunk_align, void *stream)
{
    const mnnvl_allreduce_layout_t *l = &ar->layout;
    const size_t bytes = count * l->elem_bytes;
    int twoshot = ar->params.strategy == MNNVL_ALLREDUCE_TWOSHOT ||
                  (ar->params.strategy == MNNVL_ALLREDUCE_AUTO && bytes > l->oneshot_max_bytes);
    size_t chunk_vectors =
        twoshot ? l->twoshot_part_vectors * (size_t)ar->comm->size : l->oneshot_slot_vectors;
    size_t chunk = chunk_vectors * 16 / l->elem_bytes;
    chunk -= chunk % chunk_align; /* fused rows never straddle two launches */
    if (chunk == 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "allreduce: one row of %zu elements does not fit the workspace "
                           "chunk of %zu bytes; create the handle with a larger max_count",
                           chunk_align, chunk_vectors * 16);
    mnnvl_allreduce_control_t *controls = (mnnvl_allreduce_control_t *)(uintptr_t)ar->controls;
    args->twoshot = twoshot;
    args->control = controls + twoshot;
    const char *in = args->in;
    char *out = args->out;
    const char *res_in = args->residual_in;
    char *res_out = args->residual_out, *norm = args->norm_out;
    for (size_t done = 0; done < count; done += chunk) {
        size_t n = count - done < chunk ? count - done : chunk;
        size_t at = done * l->elem_bytes;
        args->in = in + at;
        args->out = out ? out + at : NULL;
        args->count = n;
        if (res_out) {
            args->residual_in = res_in + at;
            args->residual_out = res_out + at;
            args->norm_out = norm + at;
        }
        int err = mnnvl_launch_allreduce(args, stream);
        if (err != 0)
            return mnnvl_error(MNNVL_ERR_CUDA,
                               "allreduce: kernel launch failed with CUDA runtime error %d", err);
    }
    return MNNVL_SUCCESS;
}

static mnnvl_status_t common_args(mnnvl_allreduce_t ar, const char *what,
                                  mnnvl_allreduce_args_t *args)
{
    MNNVL_CHECK(mnnvl_fault_op_enter((const mnnvl_op_handle_t *)ar, ar && ar->params.fault_tolerant,
                                     what, "allreduce"));
    memset(args, 0, sizeof(*args));
    args->dtype = ar->params.dtype;
    args->rank = ar->comm->rank;
    args->size = ar->comm->size;
    args->peers = (char *const *)(uintptr_t)ar->peers;
    for (int r = 0; r < ar->comm->size && r < MNNVL_INLINE_PEERS; r++)
        args->inline_peers[r] = ar->bases[r];
    args->oneshot_offset = ar->layout.oneshot_offset;
    args->oneshot_slot_vectors = ar->layout.oneshot_slot_vectors;
    args->twoshot_offset = ar->layout.twoshot_offset;
    args->twoshot_part_vectors = ar->layout.twoshot_part_vectors;
    args->sm_count = ar->blocks;
    args->wait.control = (mnnvl_device_control_t *)(uintptr_t)ar->comm->dev->control_dev;
    args->wait.timeout_ns = ar->comm->dev->timeout_ns;
    mnnvl_fault_wait_args(ar->comm, ar->params.fault_tolerant, ar->params.peer_timeout_ms,
                          &args->wait);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t check_pointer(const char *what, const char *name, const void *p, size_t align)
{
    if (!p)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: %s is NULL", what, name);
    if ((uintptr_t)p % align != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: %s (%p) is not aligned to the %zu-byte element", what, name, p,
                           align);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_allreduce(mnnvl_allreduce_t ar, const void *in, void *out,
                                         size_t count, void *stream)
{
    mnnvl_allreduce_args_t args;
    MNNVL_CHECK(common_args(ar, "allreduce", &args));
    if (count == 0)
        return MNNVL_SUCCESS;
    size_t elem = ar->layout.elem_bytes;
    MNNVL_CHECK(check_pointer("allreduce", "in", in, elem));
    MNNVL_CHECK(check_pointer("allreduce", "out", out, elem));
    if (count > SIZE_MAX / elem)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "allreduce: count %zu overflows", count);
    args.in = in;
    args.out = out;
    return run(ar, &args, count, 1, stream);
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_residual_rmsnorm(
    mnnvl_allreduce_t ar, const void *in, const void *residual_in, const void *gamma, float eps,
    size_t tokens, size_t hidden, void *residual_out, void *norm_out, void *stream)
{
    const char *what = "allreduce_residual_rmsnorm";
    mnnvl_allreduce_args_t args;
    MNNVL_CHECK(common_args(ar, what, &args));
    size_t elem = ar->layout.elem_bytes;
    if (hidden == 0 || hidden > MAX_HIDDEN || (hidden * elem) % 16 != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: hidden %zu must be in [1, %d] and a multiple of %zu elements "
                           "(16 bytes)",
                           what, hidden, MAX_HIDDEN, 16 / elem);
    if (tokens > SIZE_MAX / hidden / elem)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: tokens %zu x hidden %zu overflows",
                           what, tokens, hidden);
    if (!(eps >= 0.f))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: eps %g must be >= 0", what,
                           (double)eps);
    if (tokens == 0)
        return MNNVL_SUCCESS;
    MNNVL_CHECK(check_pointer(what, "in", in, elem));
    MNNVL_CHECK(check_pointer(what, "residual_in", residual_in, elem));
    MNNVL_CHECK(check_pointer(what, "gamma", gamma, elem));
    MNNVL_CHECK(check_pointer(what, "residual_out", residual_out, elem));
    MNNVL_CHECK(check_pointer(what, "norm_out", norm_out, elem));
    if (in == residual_out || in == norm_out)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: in must not alias residual_out or norm_out", what);
    args.in = in;
    args.residual_in = residual_in;
    args.gamma = gamma;
    args.residual_out = residual_out;
    args.norm_out = norm_out;
    args.hidden = hidden;
    args.eps = eps;
    args.weight_bias = ar->params.rmsnorm_weight_bias;
    return run(ar, &args, tokens * hidden, hidden, stream);
}
