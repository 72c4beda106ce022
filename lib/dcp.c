/* DCP (Helix) all-to-all handles: creation on the CP group's communicator, the host-side
 * argument checks and the launches. The protocol and the kernel are in kernels/dcp.cu, the
 * parameters' checks and the workspace layout in dcp_plan.c. */
#include <stdlib.h>
#include <string.h>

#include "dcp_plan.h"
#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fault.h"
#include "log.h"
#include "op.h"

struct mnnvl_dcp_a2a_s {
    mnnvl_op_handle_t op;          /* op.mem is the workspace */
    mnnvl_comm_t comm;             /* op.comm, for brevity */
    mnnvl_dcp_a2a_params_t params; /* normalised: struct_size is this library's */
    mnnvl_dcp_layout_t layout;
    CUdeviceptr control; /* mnnvl_dcp_control_t, local */
    int channels;
};

static void free_resources(mnnvl_op_handle_t *op)
{
    mnnvl_dcp_a2a_t d = (mnnvl_dcp_a2a_t)op;
    if (d->control)
        d->comm->dev->cu->cuMemFree(d->control);
}

/* What every rank must have equal: the parameters, checked here because ranks that differ
 * only in a field the workspace size does not show (head_dim against stats_lanes, the LSE
 * base) would otherwise read each other's rows wrongly. And the blocks per call: block c of
 * one rank talks to block c of every other, so `channels` is the same everywhere, at most
 * max_entries and the smallest SM count of the ranks (a block spins until its peers' blocks
 * ran, so all of a call's blocks must be resident at once). Every rank sees every rank's
 * values, so every rank reaches the same verdict. */
static mnnvl_status_t agree_shape(mnnvl_dcp_a2a_t d, const char *what)
{
    typedef struct {
        int32_t sms;
        mnnvl_dcp_a2a_params_t params;
    } shape_t;
    mnnvl_comm_t comm = d->comm;
    shape_t mine, all[MNNVL_DCP_MAX_RANKS]; /* comm->size == cp_size <= the maximum */
    memset(&mine, 0, sizeof(mine));
    mine.sms = comm->dev->sms;
    mine.params = d->params;
    MNNVL_CHECK(mnnvl_comm_allgather(comm, &mine, all, sizeof(mine)));
    int channels = MNNVL_DCP_CHANNELS;
    if (d->params.max_entries < channels)
        channels = d->params.max_entries;
    for (int r = 0; r < comm->size; r++) {
        const mnnvl_dcp_a2a_params_t *p = &all[r].params, *q = &all[0].params;
        if (memcmp(p, q, sizeof(*p)) != 0)
            return mnnvl_error(MNNVL_ERR_MISMATCH,
                               "%s: rank %d's parameters (cp_size %d, max_entries %d, head_dim "
                               "%d, dtype %d, stats_lanes %d, lse_base %d) differ from rank 0's "
                               "(%d, %d, %d, %d, %d, %d)",
                               what, r, p->cp_size, p->max_entries, p->head_dim, (int)p->dtype,
                               p->stats_lanes, (int)p->lse_base, q->cp_size, q->max_entries,
                               q->head_dim, (int)q->dtype, q->stats_lanes, (int)q->lse_base);
        if (all[r].sms < channels)
            channels = all[r].sms;
    }
    d->channels = channels < 1 ? 1 : channels;
    return MNNVL_SUCCESS;
}

/* This rank's control block and flags zeroed: no peer may see a stale flag. */
static mnnvl_status_t setup_local(mnnvl_dcp_a2a_t d)
{
    const mnnvl_cuda_driver_t *cu = d->comm->dev->cu;
    const char *what = "dcp_a2a_create";
    MNNVL_CU(what, cu->cuMemAlloc(&d->control, sizeof(mnnvl_dcp_control_t)));
    MNNVL_CHECK(mnnvl_device_launched(
        mnnvl_launch_zero_reset((void *)(uintptr_t)d->control, sizeof(mnnvl_dcp_control_t), NULL),
        what));
    CUdeviceptr mine = (CUdeviceptr)(uintptr_t)mnnvl_mem_ptr(d->op.mem, d->comm->rank);
    MNNVL_CHECK(
        mnnvl_device_launched(mnnvl_launch_zero_reset((void *)(uintptr_t)(mine + d->layout.flags),
                                                      d->layout.data - d->layout.flags, NULL),
                              what));
    MNNVL_CU(what, cu->cuCtxSynchronize());
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_dcp_a2a_params_t *params,
                                              mnnvl_dcp_a2a_t *out)
{
    const char *what = "dcp_a2a_create";
    MNNVL_CHECK(mnnvl_op_create_check(comm, out, what, "dcp"));
    mnnvl_dcp_a2a_params_t key;
    mnnvl_dcp_layout_t layout;
    memset(&key, 0, sizeof(key));
    mnnvl_status_t st = mnnvl_dcp_plan(params, &key, &layout);
    if (st == MNNVL_SUCCESS && key.cp_size != comm->size)
        st = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                         "%s: cp_size %d does not match the communicator's %d ranks; build the "
                         "communicator over the CP group (mnnvl_comm_split(parent, &mapping, "
                         "MNNVL_GROUP_CP, &cp_comm))",
                         what, key.cp_size, comm->size);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_fault_params(comm, key.fault_tolerant, &key.peer_timeout_ms, what);
    if (st != MNNVL_SUCCESS)
        memset(&key, 0, sizeof(key));
    void *found;
    MNNVL_CHECK(
        mnnvl_op_create_prepare(comm, st, MNNVL_CACHED_DCP_A2A, &key, sizeof(key), &found, what));
    if (found) {
        *out = found;
        return MNNVL_SUCCESS;
    }
    mnnvl_dcp_a2a_t d = calloc(1, sizeof(*d));
    if (!d)
        st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "%s: out of memory", what);
    st = mnnvl_comm_agree(comm, st, what);
    if (st != MNNVL_SUCCESS || !d) { /* !d: agree returns this rank's NO_MEMORY */
        free(d);                     /* allocated here when another rank's allocation failed */
        return st;
    }
    mnnvl_op_init(&d->op, comm, free_resources);
    d->comm = comm;
    d->params = key;
    d->layout = layout;
    st = mnnvl_comm_agree(comm, agree_shape(d, what), what);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_mem_alloc(comm, layout.total_bytes, &d->op.mem); /* collective, agreed */
    if (st == MNNVL_SUCCESS)
        st = mnnvl_comm_agree(comm, setup_local(d), what); /* doubles as the barrier */
    if (st != MNNVL_SUCCESS) {
        mnnvl_op_free(&d->op);
        return st;
    }
    MNNVL_CHECK(mnnvl_op_cache_add(&d->op, MNNVL_CACHED_DCP_A2A, &key, sizeof(key)));
    MNNVL_DEBUG("%s: rank %d of %d, %zu workspace bytes, %d channels", what, comm->rank, comm->size,
                layout.total_bytes, d->channels);
    *out = d;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_destroy(mnnvl_dcp_a2a_t d)
{
    return mnnvl_op_release((mnnvl_op_handle_t *)d);
}

/* One caller buffer of a call: its name, address, bytes and required alignment. */
typedef struct buffer {
    const char *name;
    const void *p;
    size_t bytes;
    size_t align;
    int output;
} buffer_t;

static int overlap(const buffer_t *a, const buffer_t *b)
{
    uintptr_t a0 = (uintptr_t)a->p, b0 = (uintptr_t)b->p;
    return a->bytes && b->bytes && a0 < b0 + b->bytes && b0 < a0 + a->bytes;
}

/* NULL, misalignment, and outputs overlapping anything else. */
static mnnvl_status_t check_buffers(const char *what, const buffer_t *bufs, int n, int entries)
{
    for (int i = 0; i < n; i++) {
        if (!bufs[i].p && bufs[i].bytes)
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: %s is NULL with %d entries", what,
                               bufs[i].name, entries);
        if ((uintptr_t)bufs[i].p % bufs[i].align != 0)
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: %s (%p) is not %zu-byte aligned",
                               what, bufs[i].name, bufs[i].p, bufs[i].align);
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if ((bufs[i].output || bufs[j].output) && overlap(&bufs[i], &bufs[j]))
                return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                                   "%s: %s (%p, %zu bytes) overlaps %s (%p, %zu bytes)", what,
                                   bufs[i].name, bufs[i].p, bufs[i].bytes, bufs[j].name, bufs[j].p,
                                   bufs[j].bytes);
    return MNNVL_SUCCESS;
}

/* The checks and the launch both calls share. */
static mnnvl_status_t run(mnnvl_dcp_a2a_t d, const char *what, int reduce, const void *in_o,
                          const void *in_stats, int entries, void *out_o, void *out_stats,
                          void *stream)
{
    const mnnvl_dcp_a2a_params_t *p = d ? &d->params : NULL;
    MNNVL_CHECK(
        mnnvl_fault_op_enter((const mnnvl_op_handle_t *)d, p && p->fault_tolerant, what, "dcp"));
    if (entries < 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: entries %d is negative", what, entries);
    if (entries > p->max_entries)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: entries %d exceed the max_entries %d this handle's workspace "
                           "was sized for (a prefill batch on a decode-sized workspace?); "
                           "create the handle with max_entries >= the largest call",
                           what, entries, p->max_entries);
    const size_t n = (size_t)entries, cp = (size_t)p->cp_size;
    const size_t row = (size_t)p->head_dim * d->layout.elem_bytes;
    const size_t stats_row = (size_t)p->stats_lanes * 4;
    const buffer_t bufs[4] = {
        {"partial_o", in_o, n * cp * row, 16, 0},
        {"stats", in_stats, n * cp * stats_row, 4, 0},
        {reduce ? "out" : "out_o", out_o, n * (reduce ? 1 : cp) * row, 16, 1},
        {reduce ? "out_lse" : "out_stats", out_stats,
         reduce ? (out_stats ? n * 4 : 0) : n * cp * stats_row, 4, 1},
    };
    MNNVL_CHECK(check_buffers(what, bufs, 4, entries));
    mnnvl_dcp_args_t args;
    memset(&args, 0, sizeof(args));
    args.rank = d->comm->rank;
    args.cp_size = p->cp_size;
    args.channels = d->channels;
    args.dtype = p->dtype;
    args.lse_base2 = p->lse_base == MNNVL_LSE_BASE_2;
    args.reduce = reduce;
    args.entries = entries;
    args.max_entries = p->max_entries;
    args.o_vectors = d->layout.o_vectors;
    args.stats_lanes = p->stats_lanes;
    args.row_vectors = d->layout.row_vectors;
    for (int r = 0; r < p->cp_size; r++)
        args.peers[r] = mnnvl_mem_ptr(d->op.mem, r);
    args.flags_offset = d->layout.flags;
    args.data_offset = d->layout.data;
    args.in_o = in_o;
    args.in_stats = in_stats;
    args.out_o = out_o;
    args.out_stats = out_stats;
    args.control = (mnnvl_dcp_control_t *)(uintptr_t)d->control;
    args.wait.control = (mnnvl_device_control_t *)(uintptr_t)d->comm->dev->control_dev;
    args.wait.timeout_ns = d->comm->dev->timeout_ns;
    mnnvl_fault_wait_args(d->comm, p->fault_tolerant, p->peer_timeout_ms, &args.wait);
    int err = mnnvl_launch_dcp(&args, stream);
    if (err != 0)
        return mnnvl_error(MNNVL_ERR_CUDA, "%s: kernel launch failed with CUDA runtime error %d",
                           what, err);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a(mnnvl_dcp_a2a_t d, const void *partial_o, const void *stats,
                                       int entries, void *out_o, void *out_stats, void *stream)
{
    return run(d, "dcp_a2a", 0, partial_o, stats, entries, out_o, out_stats, stream);
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_lse_reduce(mnnvl_dcp_a2a_t d, const void *partial_o,
                                                  const void *stats, int entries, void *out,
                                                  void *out_lse, void *stream)
{
    return run(d, "dcp_a2a_lse_reduce", 1, partial_o, stats, entries, out, out_lse, stream);
}
