/* Mapping validation (every rule) and the rank lists of every group. */
#include <criterion/criterion.h>
#include <string.h>

#include "mnnvl.h"

static mnnvl_mapping_t make(int world, int rank, int tp, int pp, int cp, int moe_tp, int moe_ep,
                            int gpn)
{
    return (mnnvl_mapping_t){.struct_size = sizeof(mnnvl_mapping_t),
                             .world_size = world,
                             .rank = rank,
                             .gpus_per_node = gpn,
                             .tp = tp,
                             .pp = pp,
                             .cp = cp,
                             .moe_tp = moe_tp,
                             .moe_ep = moe_ep};
}

static void expect_broken(mnnvl_mapping_t m, const char *needle)
{
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_ERR_INVALID_ARGUMENT,
                 "mapping with '%s' broken was accepted", needle);
    cr_assert(strstr(mnnvl_last_error(), needle) != NULL, "expected '%s' in: %s", needle,
              mnnvl_last_error());
}

Test(mapping, init_gives_a_valid_pure_tp_mapping)
{
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, 8, 3);
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    cr_assert_eq(m.tp, 8);
    cr_assert_eq(m.moe_tp, 8);
    cr_assert_eq(m.moe_ep, 1);
    mnnvl_mapping_init(NULL, 1, 0); /* must not crash */
}

Test(mapping, each_rule)
{
    expect_broken(make(0, 0, 1, 1, 1, 1, 1, 1), "world_size 0 must be at least 1");
    expect_broken(make(4, 4, 4, 1, 1, 4, 1, 4), "rank 4 must be in [0, world_size 4)");
    expect_broken(make(4, -1, 4, 1, 1, 4, 1, 4), "rank -1");
    expect_broken(make(4, 0, 4, 1, 1, 4, 1, 0), "gpus_per_node 0");
    expect_broken(make(4, 0, 0, 1, 1, 1, 1, 4), "tp 0 must be at least 1");
    expect_broken(make(4, 0, 4, 0, 1, 4, 1, 4), "pp 0 must be at least 1");
    expect_broken(make(4, 0, 4, 1, -2, 4, 1, 4), "cp -2 must be at least 1");
    expect_broken(make(4, 0, 4, 1, 1, 0, 1, 4), "moe_tp 0");
    expect_broken(make(4, 0, 4, 1, 1, 4, 0, 4), "moe_ep 0");
    expect_broken(make(8, 0, 4, 1, 1, 4, 1, 8), "tp*pp*cp = 4*1*1 = 4 must equal world_size 8");
    expect_broken(make(8, 0, 8, 1, 1, 2, 2, 8), "moe_tp*moe_ep = 2*2 = 4 must equal tp 8");
    expect_broken(make(12, 0, 12, 1, 1, 12, 1, 8), "multiple of gpus_per_node 8");
    cr_assert_eq(mnnvl_mapping_validate(NULL), MNNVL_ERR_INVALID_ARGUMENT);
}

Test(mapping, every_broken_rule_is_reported)
{
    mnnvl_mapping_t m = make(8, 9, 3, 1, 1, 2, 2, 8);
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_ERR_INVALID_ARGUMENT);
    const char *e = mnnvl_last_error();
    cr_assert(strstr(e, "rank 9") && strstr(e, "tp*pp*cp") && strstr(e, "moe_tp*moe_ep"), "%s", e);
}

Test(mapping, valid_layouts)
{
    cr_assert_eq(mnnvl_mapping_validate(
                     &(mnnvl_mapping_t){sizeof(mnnvl_mapping_t), 16, 5, 8, 4, 2, 2, 4, 1}),
                 0);
    cr_assert_eq(
        mnnvl_mapping_validate(&(mnnvl_mapping_t){sizeof(mnnvl_mapping_t), 8, 7, 8, 8, 1, 1, 1, 8}),
        0);
    cr_assert_eq(
        mnnvl_mapping_validate(&(mnnvl_mapping_t){sizeof(mnnvl_mapping_t), 8, 7, 8, 8, 1, 1, 2, 4}),
        0);
    /* A job smaller than a node is fine. */
    cr_assert_eq(
        mnnvl_mapping_validate(&(mnnvl_mapping_t){sizeof(mnnvl_mapping_t), 3, 0, 8, 3, 1, 1, 3, 1}),
        0);
}

static void expect_group(mnnvl_mapping_t m, mnnvl_group_t g, const int *want, int n, int index)
{
    int ranks[64], count = -1, at = -1;
    cr_assert_eq(mnnvl_mapping_group(&m, g, ranks, 64, &count, &at), MNNVL_SUCCESS, "%s",
                 mnnvl_last_error());
    cr_assert_eq(count, n, "group %d of rank %d: %d ranks, want %d", g, m.rank, count, n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(ranks[i], want[i], "group %d of rank %d: entry %d is %d, want %d", g, m.rank,
                     i, ranks[i], want[i]);
    cr_assert_eq(at, index, "group %d of rank %d: index %d, want %d", g, m.rank, at, index);
}

Test(mapping, groups_tp4_pp2_cp2)
{
    mnnvl_mapping_t m = make(16, 13, 4, 2, 2, 4, 1, 8);
    expect_group(m, MNNVL_GROUP_TP, (int[]){12, 13, 14, 15}, 4, 1);
    expect_group(m, MNNVL_GROUP_CP, (int[]){9, 13}, 2, 1);
    expect_group(m, MNNVL_GROUP_PP, (int[]){5, 13}, 2, 1);
    expect_group(m, MNNVL_GROUP_MOE_TP, (int[]){12, 13, 14, 15}, 4, 1);
    expect_group(m, MNNVL_GROUP_MOE_EP, (int[]){13}, 1, 0);
    int world[16];
    for (int i = 0; i < 16; i++)
        world[i] = i;
    expect_group(m, MNNVL_GROUP_WORLD, world, 16, 13);
    m.rank = 2;
    expect_group(m, MNNVL_GROUP_TP, (int[]){0, 1, 2, 3}, 4, 2);
    expect_group(m, MNNVL_GROUP_CP, (int[]){2, 6}, 2, 0);
    expect_group(m, MNNVL_GROUP_PP, (int[]){2, 10}, 2, 0);
}

Test(mapping, groups_tp8_moe_ep8)
{
    mnnvl_mapping_t m = make(8, 5, 8, 1, 1, 1, 8, 8);
    expect_group(m, MNNVL_GROUP_MOE_EP, (int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8, 5);
    expect_group(m, MNNVL_GROUP_MOE_TP, (int[]){5}, 1, 0);
    expect_group(m, MNNVL_GROUP_TP, (int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8, 5);
    expect_group(m, MNNVL_GROUP_PP, (int[]){5}, 1, 0);
}

Test(mapping, groups_tp8_moe_ep4_moe_tp2)
{
    mnnvl_mapping_t m = make(8, 6, 8, 1, 1, 2, 4, 8);
    expect_group(m, MNNVL_GROUP_MOE_EP, (int[]){4, 5, 6, 7}, 4, 2);
    expect_group(m, MNNVL_GROUP_MOE_TP, (int[]){2, 6}, 2, 1);
    /* With two pipeline stages the MoE groups stay inside each stage's TP group. */
    mnnvl_mapping_t p = make(16, 14, 8, 2, 1, 2, 4, 8);
    expect_group(p, MNNVL_GROUP_MOE_EP, (int[]){12, 13, 14, 15}, 4, 2);
    expect_group(p, MNNVL_GROUP_MOE_TP, (int[]){10, 14}, 2, 1);
    expect_group(p, MNNVL_GROUP_PP, (int[]){6, 14}, 2, 1);
}

/* For every rank and group: the rank is in its own group, every member computes the same
 * group, and the groups of one kind partition the world. */
static void check_partition(mnnvl_mapping_t m)
{
    for (int g = MNNVL_GROUP_WORLD; g <= MNNVL_GROUP_MOE_EP; g++) {
        int owner[64];
        memset(owner, -1, sizeof(owner));
        for (int r = 0; r < m.world_size; r++) {
            m.rank = r;
            int ranks[64], count, at;
            cr_assert_eq(mnnvl_mapping_group(&m, (mnnvl_group_t)g, ranks, 64, &count, &at), 0);
            cr_assert_eq(ranks[at], r);
            for (int i = 1; i < count; i++)
                cr_assert_lt(ranks[i - 1], ranks[i], "group %d not ascending", g);
            /* The group is named by its first member; everyone must agree. */
            if (owner[r] >= 0)
                cr_assert_eq(owner[r], ranks[0], "rank %d in two groups of kind %d", r, g);
            for (int i = 0; i < count; i++) {
                if (owner[ranks[i]] >= 0)
                    cr_assert_eq(owner[ranks[i]], ranks[0]);
                owner[ranks[i]] = ranks[0];
            }
        }
    }
}

Test(mapping, groups_partition_the_world)
{
    check_partition(make(16, 0, 4, 2, 2, 4, 1, 8));
    check_partition(make(16, 0, 4, 2, 2, 2, 2, 8));
    check_partition(make(8, 0, 8, 1, 1, 2, 4, 8));
    check_partition(make(24, 0, 2, 3, 4, 1, 2, 8));
    check_partition(make(1, 0, 1, 1, 1, 1, 1, 1));
}

Test(mapping, group_argument_errors)
{
    mnnvl_mapping_t m = make(8, 1, 8, 1, 1, 8, 1, 8);
    int ranks[4], count = 0;
    cr_assert_eq(mnnvl_mapping_group(&m, MNNVL_GROUP_TP, ranks, 4, &count, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert_eq(count, 8, "count must report the size needed");
    cr_assert(strstr(mnnvl_last_error(), "8 ranks but capacity is 4"), "%s", mnnvl_last_error());
    cr_assert_eq(mnnvl_mapping_group(&m, (mnnvl_group_t)9, ranks, 4, &count, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert_eq(mnnvl_mapping_group(&m, MNNVL_GROUP_PP, ranks, 4, NULL, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
    m.tp = 3;
    cr_assert_eq(mnnvl_mapping_group(&m, MNNVL_GROUP_PP, ranks, 4, &count, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
}

/* issue 12: 49477 * 384773 * 968973220 = 2^64 + 4, so a product computed in 64 bits wraps to
 * world_size 4 (and overflowed a signed long: UBSan). Such a mapping must be refused, since
 * mnnvl_mapping_group would then list ranks far outside [0, 4). */
Test(mapping, a_product_that_wraps_to_world_size_is_refused)
{
    expect_broken(make(4, 1, 49477, 384773, 968973220, 49477, 1, 4), "overflows");
    expect_broken(make(4, 1, 4, 1, 1, 65536, 65536, 4), "overflows");
    mnnvl_mapping_t m = make(4, 1, 49477, 384773, 968973220, 49477, 1, 4);
    int ranks[4], count = -1;
    cr_assert_eq(mnnvl_mapping_group(&m, MNNVL_GROUP_PP, ranks, 4, &count, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
}

/* Every rank any group lists lies in [0, world_size), over every valid small mapping. */
Test(mapping, group_ranks_stay_inside_the_world)
{
    for (int tp = 1; tp <= 4; tp++)
        for (int pp = 1; pp <= 3; pp++)
            for (int cp = 1; cp <= 3; cp++)
                for (int ep = 1; ep <= tp; ep++) {
                    if (tp % ep)
                        continue;
                    int world = tp * pp * cp;
                    for (int r = 0; r < world; r++) {
                        mnnvl_mapping_t m = make(world, r, tp, pp, cp, tp / ep, ep, world);
                        for (int g = MNNVL_GROUP_WORLD; g <= MNNVL_GROUP_MOE_EP; g++) {
                            int ranks[64], count;
                            cr_assert_eq(
                                mnnvl_mapping_group(&m, (mnnvl_group_t)g, ranks, 64, &count, NULL),
                                MNNVL_SUCCESS, "%s", mnnvl_last_error());
                            for (int i = 0; i < count; i++)
                                cr_assert(ranks[i] >= 0 && ranks[i] < world);
                        }
                    }
                }
}

/* struct_size: a mapping from a newer header (larger) or never initialised (0) is refused. */
Test(mapping, struct_size_is_checked)
{
    mnnvl_mapping_t m = make(8, 1, 8, 1, 1, 8, 1, 8);
    m.struct_size = sizeof(m) + 4;
    expect_broken(m, "newer");
    m.struct_size = 0;
    expect_broken(m, "mnnvl_mapping_init");
    mnnvl_mapping_init(&m, 2, 1);
    cr_assert_eq(m.struct_size, sizeof(m));
}
