/* Parallel mapping: validation and the rank lists of each group.
 *
 * Coordinates: rank = pp_rank*(cp*tp) + cp_rank*tp + tp_rank, and inside a TP group
 * tp_rank = moe_tp_rank*moe_ep + moe_ep_rank. Every group is then "vary one coordinate,
 * hold the others", which is how group() below computes them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "mapping.h"
#include "params.h"

MNNVL_API void mnnvl_mapping_init(mnnvl_mapping_t *m, int world_size, int rank)
{
    if (!m)
        return;
    *m = (mnnvl_mapping_t){.struct_size = sizeof(*m),
                           .world_size = world_size,
                           .rank = rank,
                           .gpus_per_node = world_size,
                           .tp = world_size,
                           .pp = 1,
                           .cp = 1,
                           .moe_tp = world_size,
                           .moe_ep = 1};
}

/* The first version of the sized struct (libmnnvl 0.2) ends after moe_ep. */
#define FIRST_SIZE (offsetof(mnnvl_mapping_t, moe_ep) + sizeof(int))

mnnvl_status_t mnnvl_mapping_read(const mnnvl_mapping_t *caller, mnnvl_mapping_t *own)
{
    mnnvl_mapping_init(own, 1, 0);
    return MNNVL_PARAMS_COPY(own, caller, FIRST_SIZE, "mapping", "mnnvl_mapping_init");
}

/* Appends one sentence about a broken rule. */
static void broken(char *buf, size_t len, int *count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void broken(char *buf, size_t len, int *count, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (*count > 0 && used + 2 < len) {
        strcpy(buf + used, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    (*count)++;
}

MNNVL_API mnnvl_status_t mnnvl_mapping_validate(const mnnvl_mapping_t *caller)
{
    mnnvl_mapping_t own;
    MNNVL_CHECK(mnnvl_mapping_read(caller, &own));
    const mnnvl_mapping_t *m = &own;
    char why[900] = "";
    int n = 0;
    if (m->world_size < 1)
        broken(why, sizeof(why), &n, "world_size %d must be at least 1", m->world_size);
    if (m->rank < 0 || m->rank >= m->world_size)
        broken(why, sizeof(why), &n, "rank %d must be in [0, world_size %d)", m->rank,
               m->world_size);
    if (m->gpus_per_node < 1)
        broken(why, sizeof(why), &n, "gpus_per_node %d must be at least 1", m->gpus_per_node);
    const struct {
        const char *name;
        int value;
    } degrees[] = {
        {"tp", m->tp}, {"pp", m->pp}, {"cp", m->cp}, {"moe_tp", m->moe_tp}, {"moe_ep", m->moe_ep}};
    int degrees_ok = 1;
    for (size_t i = 0; i < sizeof(degrees) / sizeof(degrees[0]); i++) {
        if (degrees[i].value < 1) {
            broken(why, sizeof(why), &n, "%s %d must be at least 1", degrees[i].name,
                   degrees[i].value);
            degrees_ok = 0;
        }
    }
    if (degrees_ok) {
        /* Checked products: a product that wraps could otherwise equal world_size and let
         * mnnvl_mapping_group compute ranks outside [0, world_size). */
        int tp_cp, product;
        if (__builtin_mul_overflow(m->tp, m->cp, &tp_cp) ||
            __builtin_mul_overflow(tp_cp, m->pp, &product))
            broken(why, sizeof(why), &n,
                   "tp*pp*cp = %d*%d*%d overflows an int; it must equal "
                   "world_size %d",
                   m->tp, m->pp, m->cp, m->world_size);
        else if (product != m->world_size)
            broken(why, sizeof(why), &n, "tp*pp*cp = %d*%d*%d = %d must equal world_size %d", m->tp,
                   m->pp, m->cp, product, m->world_size);
        int moe;
        if (__builtin_mul_overflow(m->moe_tp, m->moe_ep, &moe))
            broken(why, sizeof(why), &n,
                   "moe_tp*moe_ep = %d*%d overflows an int; it must "
                   "equal tp %d",
                   m->moe_tp, m->moe_ep, m->tp);
        else if (moe != m->tp)
            broken(why, sizeof(why), &n, "moe_tp*moe_ep = %d*%d = %d must equal tp %d", m->moe_tp,
                   m->moe_ep, moe, m->tp);
    }
    if (m->world_size > m->gpus_per_node && m->gpus_per_node >= 1 &&
        m->world_size % m->gpus_per_node != 0)
        broken(why, sizeof(why), &n,
               "world_size %d spans several nodes, so it must be a multiple of gpus_per_node %d",
               m->world_size, m->gpus_per_node);
    if (n == 0)
        return MNNVL_SUCCESS;
    return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mapping: %s", why);
}

/* A rank's coordinates, innermost first. */
enum { C_MOE_EP, C_MOE_TP, C_CP, C_PP, NCOORD };

static void coords_of(const mnnvl_mapping_t *m, int rank, int c[NCOORD])
{
    int tp_rank = rank % m->tp;
    c[C_MOE_EP] = tp_rank % m->moe_ep;
    c[C_MOE_TP] = tp_rank / m->moe_ep;
    c[C_CP] = (rank / m->tp) % m->cp;
    c[C_PP] = rank / (m->tp * m->cp);
}

static int rank_of(const mnnvl_mapping_t *m, const int c[NCOORD])
{
    return c[C_PP] * m->cp * m->tp + c[C_CP] * m->tp + c[C_MOE_TP] * m->moe_ep + c[C_MOE_EP];
}

MNNVL_API mnnvl_status_t mnnvl_mapping_group(const mnnvl_mapping_t *caller, mnnvl_group_t group,
                                             int *ranks, int capacity, int *count, int *index)
{
    MNNVL_CHECK(mnnvl_mapping_validate(caller));
    mnnvl_mapping_t own;
    MNNVL_CHECK(mnnvl_mapping_read(caller, &own));
    const mnnvl_mapping_t *m = &own;
    if (!count)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mapping_group: count is NULL");
    /* Which coordinates vary inside the group; the others stay at this rank's values. */
    int varies[NCOORD] = {0};
    switch (group) {
    case MNNVL_GROUP_WORLD:
        varies[C_MOE_EP] = varies[C_MOE_TP] = varies[C_CP] = varies[C_PP] = 1;
        break;
    case MNNVL_GROUP_TP: varies[C_MOE_EP] = varies[C_MOE_TP] = 1; break;
    case MNNVL_GROUP_PP: varies[C_PP] = 1; break;
    case MNNVL_GROUP_CP: varies[C_CP] = 1; break;
    case MNNVL_GROUP_MOE_TP: varies[C_MOE_TP] = 1; break;
    case MNNVL_GROUP_MOE_EP: varies[C_MOE_EP] = 1; break;
    default:
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "mapping_group: group %d is not one of WORLD, TP, PP, CP, MOE_TP, "
                           "MOE_EP (0..5)",
                           (int)group);
    }
    const int extent[NCOORD] = {m->moe_ep, m->moe_tp, m->cp, m->pp};
    int size = 1;
    for (int i = 0; i < NCOORD; i++)
        size *= varies[i] ? extent[i] : 1;
    *count = size;
    if (capacity < size || (size > 0 && !ranks))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "mapping_group: the group has %d ranks but capacity is %d", size,
                           ranks ? capacity : 0);
    int mine[NCOORD];
    coords_of(m, m->rank, mine);
    /* Counting through the varying coordinates, innermost fastest, yields ascending ranks
     * because the rank formula is increasing in each coordinate with the inner ones
     * fastest. */
    int c[NCOORD];
    memcpy(c, mine, sizeof(c));
    for (int i = 0; i < NCOORD; i++)
        if (varies[i])
            c[i] = 0;
    for (int k = 0; k < size; k++) {
        ranks[k] = rank_of(m, c);
        if (index && ranks[k] == m->rank)
            *index = k;
        for (int i = 0; i < NCOORD; i++) {
            if (!varies[i])
                continue;
            if (++c[i] < extent[i])
                break;
            c[i] = 0;
        }
    }
    return MNNVL_SUCCESS;
}
