/* A program built against libmnnvl 0.1's header (mnnvl_v0_1.h, lib/mnnvl.h as 0.1 shipped
 * it) must keep working with this library: its structs have 0.1's sizes and layouts.
 *
 * A program linked against the 0.1 library recorded the functions whose structs changed
 * layout at version MNNVL_0.1; the .symver lines below make this test record exactly those
 * references, as such a program does. Everything else binds to the default versions. */
#include <criterion/criterion.h>
#include <string.h>

#include "mnnvl_v0_1.h" /* 0.1's header, not lib/mnnvl.h */

#define AS_LINKED_AGAINST_0_1(fn) __asm__(".symver " #fn ", " #fn "@MNNVL_0.1")
AS_LINKED_AGAINST_0_1(mnnvl_mapping_init);
AS_LINKED_AGAINST_0_1(mnnvl_mapping_validate);
AS_LINKED_AGAINST_0_1(mnnvl_mapping_group);
AS_LINKED_AGAINST_0_1(mnnvl_moe_a2a_params_init);
AS_LINKED_AGAINST_0_1(mnnvl_moe_a2a_workspace_size);
AS_LINKED_AGAINST_0_1(mnnvl_allreduce_params_init); /* 0.2 appended fields */

Test(abi_v0_1, old_mapping_layout_works)
{
    cr_assert_eq(sizeof(mnnvl_mapping_t), 8 * sizeof(int), "this must be 0.1's layout");
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, 8, 5);
    cr_assert_eq(m.world_size, 8);
    cr_assert_eq(m.rank, 5);
    cr_assert_eq(m.tp, 8);
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    m.tp = 4;
    m.moe_tp = 4;
    m.pp = 2;
    int ranks[8], count = 0, index = -1;
    cr_assert_eq(mnnvl_mapping_group(&m, MNNVL_GROUP_TP, ranks, 8, &count, &index), MNNVL_SUCCESS,
                 "%s", mnnvl_last_error());
    cr_assert_eq(count, 4);
    cr_assert_eq(index, 1);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ranks[i], 4 + i);
    m.pp = 3; /* 4*3 != 8: the old layout's fields are read where 0.1 put them */
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(mnnvl_last_error(), "4*3*1"), "%s", mnnvl_last_error());
}

Test(abi_v0_1, old_moe_params_layout_works)
{
    mnnvl_moe_a2a_params_t p;
    mnnvl_moe_a2a_params_init(&p);
    cr_assert_eq(p.struct_size, sizeof(p));
    cr_assert_eq(p.top_k, 1);
    cr_assert_eq(p.num_payloads, 1);
    cr_assert_eq(p.combine_dtype, MNNVL_DTYPE_BF16);
    p.ep_size = 4;
    p.num_experts = 8;
    p.top_k = 2;
    p.max_tokens_per_rank = 16;
    p.payload_bytes[0] = 64;
    p.hidden = 128;
    /* header 16*64 B; payload 4*16 rows of 64 B; combine 4*16 rows of 128 bf16 (256 B). */
    cr_assert_eq(mnnvl_moe_a2a_workspace_size(&p), 1024 + 64 * 64 + 64 * 256, "%s",
                 mnnvl_last_error());
    p.payload_bytes[0] = 6; /* not a multiple of 4: refused, naming the old field's value */
    cr_assert_eq(mnnvl_moe_a2a_workspace_size(&p), 0);
    cr_assert(strstr(mnnvl_last_error(), "payload_bytes[0] = 6"), "%s", mnnvl_last_error());
}

Test(abi_v0_1, old_allreduce_params_work)
{
    mnnvl_allreduce_params_t p;
    mnnvl_allreduce_params_init(&p);
    cr_assert_eq(p.struct_size, sizeof(p));
    cr_assert_gt(mnnvl_allreduce_workspace_size(&p, 4), 0, "%s", mnnvl_last_error());
}

/* A struct from a newer header (larger struct_size) is refused with a sentence; one smaller
 * than the first version (init never called) too. */
Test(abi_v0_1, larger_struct_size_is_refused)
{
    union {
        mnnvl_allreduce_params_t p;
        char bigger[sizeof(mnnvl_allreduce_params_t) + 64];
    } u;
    memset(&u, 0, sizeof(u));
    mnnvl_allreduce_params_init(&u.p);
    u.p.struct_size = sizeof(u);
    cr_assert_eq(mnnvl_allreduce_workspace_size(&u.p, 4), 0);
    cr_assert(strstr(mnnvl_last_error(), "larger than"), "%s", mnnvl_last_error());
    cr_assert(strstr(mnnvl_last_error(), "newer"), "%s", mnnvl_last_error());
    u.p.struct_size = 4;
    cr_assert_eq(mnnvl_allreduce_workspace_size(&u.p, 4), 0);
    cr_assert(strstr(mnnvl_last_error(), "mnnvl_allreduce_params_init"), "%s", mnnvl_last_error());
}
