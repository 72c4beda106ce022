/* The MNNVL_0.1 entry points of the functions whose structs changed layout in 0.2.
 *
 * libmnnvl 0.1's mnnvl_mapping_t had no struct_size, and its mnnvl_moe_a2a_params_t had
 * payload_bytes[] before hidden. A program linked against 0.1 recorded these functions at
 * version MNNVL_0.1, so the dynamic linker binds it to the definitions below, which read
 * the old layouts and call the current functions. (0.2 also appended fields to
 * mnnvl_allreduce_params_t: 0.1's struct is today's prefix, which the readers accept, so only
 * its init has a 0.1 version, one that writes no further than 0.1's struct.) Programs built
 * against the current header
 * bind to the MNNVL_0.2 (default) versions. tests/abi/ checks both against 0.1's header. */
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "params.h"

#define COMPAT_V0_1(fn) __asm__(".symver " #fn "_v0_1, " #fn "@MNNVL_0.1")

typedef struct {
    int world_size, rank, gpus_per_node, tp, pp, cp, moe_tp, moe_ep;
} mapping_v0_1_t;

typedef struct {
    uint32_t struct_size;
    int ep_size, num_experts, top_k, max_tokens_per_rank, num_payloads;
    size_t payload_bytes[MNNVL_MOE_MAX_PAYLOADS];
    int hidden;
    mnnvl_dtype_t combine_dtype;
} moe_params_v0_1_t;

/* The members 0.1's structs share with today's, by name: one list for the copies in both
 * directions, so that neither direction can leave one out. X is applied to each plain
 * member, ARRAY to each array; COPY_MEMBER and COPY_ARRAY copy `from`'s to `to`'s. */
#define MAPPING_V0_1_MEMBERS(X) \
    X(world_size) X(rank) X(gpus_per_node) X(tp) X(pp) X(cp) X(moe_tp) X(moe_ep)
#define MOE_V0_1_MEMBERS(X, ARRAY) \
    X(ep_size)                     \
    X(num_experts)                 \
    X(top_k)                       \
    X(max_tokens_per_rank)         \
    X(num_payloads)                \
    ARRAY(payload_bytes)           \
    X(hidden)                      \
    X(combine_dtype)
#define COPY_MEMBER(member) to->member = from->member;
#define COPY_ARRAY(member) memcpy(to->member, from->member, sizeof(to->member));

static void mapping_from_v0_1(const mapping_v0_1_t *from, mnnvl_mapping_t *to)
{
    mnnvl_mapping_init(to, 1, 0);
    MAPPING_V0_1_MEMBERS(COPY_MEMBER)
}

static void mapping_to_v0_1(const mnnvl_mapping_t *from, mapping_v0_1_t *to)
{
    MAPPING_V0_1_MEMBERS(COPY_MEMBER)
}

static void moe_members_from_v0_1(const moe_params_v0_1_t *from, mnnvl_moe_a2a_params_t *to)
{
    MOE_V0_1_MEMBERS(COPY_MEMBER, COPY_ARRAY)
}

static void moe_members_to_v0_1(const mnnvl_moe_a2a_params_t *from, moe_params_v0_1_t *to)
{
    MOE_V0_1_MEMBERS(COPY_MEMBER, COPY_ARRAY)
}

/* 0.1 accepted exactly its own struct_size (its only version). */
static mnnvl_status_t moe_from_v0_1(const moe_params_v0_1_t *caller, mnnvl_moe_a2a_params_t *p)
{
    moe_params_v0_1_t old;
    MNNVL_CHECK(
        MNNVL_PARAMS_COPY(&old, caller, sizeof(old), "moe_a2a", "mnnvl_moe_a2a_params_init"));
    mnnvl_moe_a2a_params_init(p);
    moe_members_from_v0_1(&old, p);
    return MNNVL_SUCCESS;
}

MNNVL_API void mnnvl_mapping_init_v0_1(mapping_v0_1_t *old, int world_size, int rank);
MNNVL_API mnnvl_status_t mnnvl_mapping_validate_v0_1(const mapping_v0_1_t *old);
MNNVL_API mnnvl_status_t mnnvl_mapping_group_v0_1(const mapping_v0_1_t *old, mnnvl_group_t group,
                                                  int *ranks, int capacity, int *count, int *index);
MNNVL_API mnnvl_status_t mnnvl_comm_split_v0_1(mnnvl_comm_t parent, const mapping_v0_1_t *old,
                                               mnnvl_group_t group, mnnvl_comm_t *comm);
MNNVL_API void mnnvl_moe_a2a_params_init_v0_1(moe_params_v0_1_t *old);
MNNVL_API size_t mnnvl_moe_a2a_workspace_size_v0_1(const moe_params_v0_1_t *old);
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_create_v0_1(mnnvl_comm_t comm, const moe_params_v0_1_t *old,
                                                   mnnvl_moe_a2a_t *a2a);
COMPAT_V0_1(mnnvl_mapping_init);
COMPAT_V0_1(mnnvl_mapping_validate);
COMPAT_V0_1(mnnvl_mapping_group);
COMPAT_V0_1(mnnvl_comm_split);
COMPAT_V0_1(mnnvl_moe_a2a_params_init);
COMPAT_V0_1(mnnvl_moe_a2a_workspace_size);
COMPAT_V0_1(mnnvl_moe_a2a_create);

/* 0.1's mnnvl_allreduce_params_t ended after external_buffer_bytes. */
#define ALLREDUCE_V0_1_SIZE \
    (offsetof(mnnvl_allreduce_params_t, external_buffer_bytes) + sizeof(size_t))
MNNVL_API void mnnvl_allreduce_params_init_v0_1(void *old);
COMPAT_V0_1(mnnvl_allreduce_params_init);

MNNVL_API void mnnvl_allreduce_params_init_v0_1(void *old)
{
    if (!old)
        return;
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    p.struct_size = (uint32_t)ALLREDUCE_V0_1_SIZE;
    memcpy(old, &p, ALLREDUCE_V0_1_SIZE);
}

MNNVL_API void mnnvl_mapping_init_v0_1(mapping_v0_1_t *old, int world_size, int rank)
{
    if (!old)
        return;
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, world_size, rank);
    mapping_to_v0_1(&m, old);
}

MNNVL_API mnnvl_status_t mnnvl_mapping_validate_v0_1(const mapping_v0_1_t *old)
{
    if (!old)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mapping: mapping is NULL");
    mnnvl_mapping_t m;
    mapping_from_v0_1(old, &m);
    return mnnvl_mapping_validate(&m);
}

MNNVL_API mnnvl_status_t mnnvl_mapping_group_v0_1(const mapping_v0_1_t *old, mnnvl_group_t group,
                                                  int *ranks, int capacity, int *count, int *index)
{
    if (!old)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mapping: mapping is NULL");
    mnnvl_mapping_t m;
    mapping_from_v0_1(old, &m);
    return mnnvl_mapping_group(&m, group, ranks, capacity, count, index);
}

MNNVL_API mnnvl_status_t mnnvl_comm_split_v0_1(mnnvl_comm_t parent, const mapping_v0_1_t *old,
                                               mnnvl_group_t group, mnnvl_comm_t *comm)
{
    mnnvl_mapping_t m;
    if (old)
        mapping_from_v0_1(old, &m);
    return mnnvl_comm_split(parent, old ? &m : NULL, group, comm);
}

MNNVL_API void mnnvl_moe_a2a_params_init_v0_1(moe_params_v0_1_t *old)
{
    if (!old)
        return;
    mnnvl_moe_a2a_params_t p;
    mnnvl_moe_a2a_params_init(&p);
    memset(old, 0, sizeof(*old));
    old->struct_size = sizeof(*old);
    moe_members_to_v0_1(&p, old);
}

MNNVL_API size_t mnnvl_moe_a2a_workspace_size_v0_1(const moe_params_v0_1_t *old)
{
    mnnvl_moe_a2a_params_t p;
    if (moe_from_v0_1(old, &p) != MNNVL_SUCCESS)
        return 0;
    return mnnvl_moe_a2a_workspace_size(&p);
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_create_v0_1(mnnvl_comm_t comm, const moe_params_v0_1_t *old,
                                                   mnnvl_moe_a2a_t *a2a)
{
    mnnvl_moe_a2a_params_t p;
    MNNVL_CHECK(moe_from_v0_1(old, &p));
    return mnnvl_moe_a2a_create(comm, &p, a2a);
}
