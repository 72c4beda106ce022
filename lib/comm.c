/* Communicators: creation over a bootstrap backend, splitting by mapping group (shrinking
 * to survivors is in shrink.c), host-side collectives, abort and reference-counted
 * destruction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "config.h"
#include "device.h"
#include "device_barrier.h"
#include "error.h"
#include "fault.h"
#include "log.h"
#include "mapping.h"

static void bootstrap_set_error(mnnvl_status_t status, const char *sentence)
{
    mnnvl_error(status, "%s", sentence);
}

static void bootstrap_log(mnnvl_log_level_t level, const char *line)
{
    mnnvl_log(level, "%s", line);
}

mnnvl_status_t mnnvl_comm_check(mnnvl_comm_t comm, const char *what)
{
    if (!comm)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: comm is NULL", what);
    /* A kernel's error counts as soon as it is recorded, whether or not the caller asked. */
    mnnvl_status_t async = MNNVL_SUCCESS;
    if (comm->dev && !atomic_load(&comm->aborted))
        mnnvl_device_async_error(comm, &async);
    if (async != MNNVL_SUCCESS && mnnvl_fault_tolerated(comm, async))
        return mnnvl_fault_refuse(comm, what); /* a lost rank: the survivors carry on */
    if (async != MNNVL_SUCCESS) {
        atomic_store(&comm->aborted, 1);
        return mnnvl_error_wrap(MNNVL_ERR_ABORTED, "%s: the communicator is aborted", what);
    }
    if (atomic_load(&comm->aborted))
        return mnnvl_error(MNNVL_ERR_ABORTED,
                           "%s: rank %d's communicator was aborted (by mnnvl_comm_abort or "
                           "after an error a kernel reported); destroy it",
                           what, comm->rank);
    return MNNVL_SUCCESS;
}

void mnnvl_comm_retain(mnnvl_comm_t comm)
{
    atomic_fetch_add(&comm->refs, 1);
}

/* Builds a communicator around an existing bootstrap (the backend is owned from here on)
 * and sets up the device side when there is one. */
static mnnvl_status_t comm_finish(mnnvl_config_t config, mnnvl_bootstrap_t *bs, int device,
                                  mnnvl_comm_t *out)
{
    struct mnnvl_comm_s *comm = calloc(1, sizeof(*comm));
    if (!comm) {
        bs->ops->destroy(bs);
        mnnvl_config_destroy(config);
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_create: out of memory");
    }
    atomic_init(&comm->refs, 1);
    atomic_init(&comm->aborted, 0);
    mnnvl_handle_cache_init(&comm->ops);
    comm->rank = bs->rank;
    comm->size = bs->size;
    comm->device = device;
    comm->config = config;
    comm->timeout_ms = mnnvl_config_timeout_ms(config);
    comm->bs = bs;
    comm->handle_type = "none";
    if (device >= 0) {
        /* Each step agrees on its outcome, so every rank takes the same branch here. */
        mnnvl_status_t st = mnnvl_device_setup(comm);
        if (st == MNNVL_SUCCESS)
            st = mnnvl_device_barrier_setup(comm);
        if (st != MNNVL_SUCCESS) {
            mnnvl_comm_destroy(comm);
            return st;
        }
    }
    mnnvl_fault_setup(comm);
    MNNVL_INFO("communicator \"%s\": rank %d of %d, device %d, bootstrap %s, handles %s",
               mnnvl_config_value(config, "comm_name"), comm->rank, comm->size, device,
               bs->ops->name, comm->handle_type);
    *out = comm;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_comm_create(const mnnvl_config_t config, int rank, int size,
                                           int device, mnnvl_comm_t *comm)
{
    if (!comm)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "comm_create: comm is NULL");
    *comm = NULL;
    if (size < 1 || rank < 0 || rank >= size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_create: rank %d is not in [0, size %d)", rank, size);
    if (device < -1)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_create: device %d must be a CUDA device index or -1 for a "
                           "CPU-only communicator",
                           device);
    mnnvl_config_t cfg;
    MNNVL_CHECK(mnnvl_config_clone(config, &cfg));
    const char *level = mnnvl_config_value(cfg, "log_level");
    if (level[0])
        mnnvl_set_log_level((mnnvl_log_level_t)mnnvl_log_level_parse(level));

    mnnvl_bootstrap_args_t args = {
        .abi_version = MNNVL_BOOTSTRAP_ABI_VERSION,
        .rank = rank,
        .size = size,
        .timeout_ms = mnnvl_config_timeout_ms(cfg),
        .job_key = mnnvl_config_value(cfg, "job_key"),
        .comm_name = mnnvl_config_value(cfg, "comm_name"),
        .config_get = mnnvl_config_get_for_bootstrap,
        .config = cfg,
        .set_error = bootstrap_set_error,
        .log = bootstrap_log,
    };
    mnnvl_bootstrap_t *bs = NULL;
    mnnvl_status_t st = mnnvl_bootstrap_create(&args, &bs);
    if (st != MNNVL_SUCCESS) {
        mnnvl_config_destroy(cfg);
        return st;
    }
    return comm_finish(cfg, bs, device, comm);
}

mnnvl_status_t mnnvl_comm_child(mnnvl_comm_t parent, const mnnvl_bootstrap_child_t *child,
                                mnnvl_status_t (*verify)(mnnvl_bootstrap_t *bs, void *arg),
                                void *arg, mnnvl_comm_t *out)
{
    mnnvl_config_t cfg;
    MNNVL_CHECK(mnnvl_config_clone(parent->config, &cfg));
    mnnvl_bootstrap_t *bs = NULL;
    mnnvl_status_t st = parent->bs->ops->child(parent->bs, child, &bs);
    if (st == MNNVL_SUCCESS && verify) {
        st = verify(bs, arg);
        if (st != MNNVL_SUCCESS)
            bs->ops->destroy(bs);
    }
    if (st != MNNVL_SUCCESS) {
        mnnvl_config_destroy(cfg);
        return st;
    }
    return comm_finish(cfg, bs, parent->device, out);
}

/* Every parent rank must pass the same mapping apart from `rank`: a disagreement would
 * otherwise show up as ranks waiting in different groups until the timeout. */
static mnnvl_status_t check_same_mapping(mnnvl_comm_t parent, const mnnvl_mapping_t *m,
                                         mnnvl_group_t group)
{
    int32_t mine[8] = {m->world_size, m->gpus_per_node, m->tp,     m->pp,
                       m->cp,         m->moe_tp,        m->moe_ep, (int32_t)group};
    int32_t *all = calloc((size_t)parent->size, sizeof(mine));
    if (!all)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_split: out of memory");
    mnnvl_status_t st = parent->bs->ops->allgather(parent->bs, mine, all, sizeof(mine));
    for (int r = 0; st == MNNVL_SUCCESS && r < parent->size; r++) {
        if (memcmp(all + 8 * r, mine, sizeof(mine)) != 0)
            st = mnnvl_error(MNNVL_ERR_MISMATCH,
                             "comm_split: rank %d passed world_size %d gpus_per_node %d tp %d "
                             "pp %d cp %d moe_tp %d moe_ep %d group %d but rank %d passed "
                             "world_size %d gpus_per_node %d tp %d pp %d cp %d moe_tp %d "
                             "moe_ep %d group %d",
                             r, all[8 * r], all[8 * r + 1], all[8 * r + 2], all[8 * r + 3],
                             all[8 * r + 4], all[8 * r + 5], all[8 * r + 6], all[8 * r + 7],
                             parent->rank, mine[0], mine[1], mine[2], mine[3], mine[4], mine[5],
                             mine[6], mine[7]);
    }
    free(all);
    return st;
}

MNNVL_API mnnvl_status_t mnnvl_comm_split(mnnvl_comm_t parent, const mnnvl_mapping_t *mapping,
                                          mnnvl_group_t group, mnnvl_comm_t *comm)
{
    MNNVL_CHECK(mnnvl_comm_check(parent, "comm_split"));
    if (!comm || !mapping)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "comm_split: mapping or comm is NULL");
    *comm = NULL;
    mnnvl_mapping_t own;
    mnnvl_status_t local = mnnvl_mapping_validate(mapping);
    if (local == MNNVL_SUCCESS)
        local = mnnvl_mapping_read(mapping, &own);
    if (local == MNNVL_SUCCESS)
        mapping = &own; /* never read past a smaller struct from an older header */
    if (local == MNNVL_SUCCESS &&
        (mapping->world_size != parent->size || mapping->rank != parent->rank))
        local = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                            "comm_split: the mapping says rank %d of %d but the parent "
                            "communicator is rank %d of %d",
                            mapping->rank, mapping->world_size, parent->rank, parent->size);
    int count = 0, index = 0;
    int *ranks = calloc((size_t)parent->size, sizeof(int));
    if (local == MNNVL_SUCCESS && !ranks)
        local = mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_split: out of memory");
    if (local == MNNVL_SUCCESS)
        local = mnnvl_mapping_group(mapping, group, ranks, parent->size, &count, &index);
    mnnvl_status_t st = mnnvl_comm_agree(parent, local, "comm_split");
    if (st == MNNVL_SUCCESS)
        st = check_same_mapping(parent, mapping, group);
    /* Every rank now knows its group's members in child order (the mapping's), and
     * siblings have disjoint members: the lowest one names the group. */
    mnnvl_bootstrap_child_t child = {
        .members = ranks,
        .size = count,
        .rank = index,
        .tag = ranks ? ((uint64_t)(uint32_t)ranks[0] << 32) | (uint32_t)count : 0};
    if (st == MNNVL_SUCCESS)
        st = mnnvl_comm_child(parent, &child, NULL, NULL, comm);
    free(ranks);
    return st;
}

MNNVL_API int mnnvl_comm_rank(const mnnvl_comm_t comm)
{
    return comm ? comm->rank : -1;
}

MNNVL_API int mnnvl_comm_size(const mnnvl_comm_t comm)
{
    return comm ? comm->size : -1;
}

MNNVL_API int mnnvl_comm_device(const mnnvl_comm_t comm)
{
    return comm ? comm->device : -1;
}

MNNVL_API const char *mnnvl_comm_handle_type(const mnnvl_comm_t comm)
{
    return comm ? comm->handle_type : NULL;
}

MNNVL_API mnnvl_status_t mnnvl_comm_allgather(mnnvl_comm_t comm, const void *send, void *recv,
                                              size_t bytes)
{
    MNNVL_CHECK(mnnvl_comm_check(comm, "comm_allgather"));
    if (bytes > 0 && (!send || !recv))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_allgather: send or recv is NULL with %zu bytes", bytes);
    return comm->bs->ops->allgather(comm->bs, send, recv, bytes);
}

MNNVL_API mnnvl_status_t mnnvl_comm_broadcast(mnnvl_comm_t comm, void *buffer, size_t bytes,
                                              int root)
{
    MNNVL_CHECK(mnnvl_comm_check(comm, "comm_broadcast"));
    if (root < 0 || root >= comm->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_broadcast: root %d is not in [0, size %d)", root, comm->size);
    if (bytes > 0 && !buffer)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_broadcast: buffer is NULL with %zu bytes", bytes);
    return comm->bs->ops->broadcast(comm->bs, buffer, bytes, root);
}

MNNVL_API mnnvl_status_t mnnvl_comm_barrier(mnnvl_comm_t comm)
{
    MNNVL_CHECK(mnnvl_comm_check(comm, "comm_barrier"));
    return comm->bs->ops->barrier(comm->bs);
}

MNNVL_API mnnvl_status_t mnnvl_comm_device_barrier(mnnvl_comm_t comm, void *stream)
{
    MNNVL_CHECK(mnnvl_comm_check(comm, "comm_device_barrier"));
    if (!comm->dev)
        return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                           "comm_device_barrier: rank %d's communicator is CPU-only (device "
                           "-1)",
                           comm->rank);
    return mnnvl_device_barrier(comm, stream);
}

MNNVL_API mnnvl_status_t mnnvl_comm_get_async_error(mnnvl_comm_t comm, mnnvl_status_t *async_error)
{
    if (!comm || !async_error)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_get_async_error: comm or async_error is NULL");
    *async_error = MNNVL_SUCCESS;
    if (!comm->dev)
        return MNNVL_SUCCESS;
    mnnvl_status_t st = mnnvl_device_async_error(comm, async_error);
    if (*async_error != MNNVL_SUCCESS && !mnnvl_fault_tolerated(comm, *async_error))
        atomic_store(&comm->aborted, 1);
    return st;
}

MNNVL_API mnnvl_status_t mnnvl_comm_abort(mnnvl_comm_t comm)
{
    if (!comm)
        return MNNVL_SUCCESS;
    if (atomic_exchange(&comm->aborted, 1) == 0)
        MNNVL_WARN("rank %d: communicator aborted", comm->rank);
    if (comm->dev)
        mnnvl_device_abort(comm);
    comm->bs->ops->abort(comm->bs);
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_comm_finalize(mnnvl_comm_t comm)
{
    return mnnvl_comm_barrier(comm);
}

MNNVL_API mnnvl_status_t mnnvl_comm_destroy(mnnvl_comm_t comm)
{
    if (!comm || atomic_fetch_sub(&comm->refs, 1) > 1)
        return MNNVL_SUCCESS;
    mnnvl_fault_teardown(comm); /* its watcher calls the bootstrap: stopped first */
    mnnvl_device_barrier_teardown(comm);
    mnnvl_device_teardown(comm);
    if (comm->bs)
        comm->bs->ops->destroy(comm->bs);
    mnnvl_config_destroy(comm->config);
    mnnvl_handle_cache_fini(&comm->ops);
    free(comm);
    return MNNVL_SUCCESS;
}
