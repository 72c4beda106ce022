/* Fault tolerance without a GPU: the params fields and their struct_size rules, the config
 * key, mnnvl_comm_failed_ranks' argument checks. The bootstraps' liveness (a killed rank in
 * every survivor's mnnvl_comm_failed_ranks within milliseconds, a graceful leave never) is
 * a conformance scenario run for each backend that has it: tests/unit/test_backends.c. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "mnnvl.h"

TestSuite(fault, .timeout = 30);

Test(fault, params_default_off)
{
    mnnvl_moe_a2a_params_t moe;
    mnnvl_moe_a2a_params_init(&moe);
    cr_expect_eq(moe.fault_tolerant, 0);
    cr_expect_eq(moe.peer_timeout_ms, 0);
    mnnvl_allreduce_params_t ar;
    mnnvl_allreduce_params_init(&ar);
    cr_expect_eq(ar.fault_tolerant, 0);
    cr_expect_eq(ar.peer_timeout_ms, 0);
    mnnvl_dcp_a2a_params_t dcp;
    mnnvl_dcp_a2a_params_init(&dcp);
    cr_expect_eq(dcp.fault_tolerant, 0);
    cr_expect_eq(dcp.peer_timeout_ms, 0);
}

/* A struct from a header without the fault fields (struct_size ending before them) is read
 * with them defaulted; the workspace does not depend on them. */
Test(fault, params_older_struct_accepted)
{
    mnnvl_moe_a2a_params_t moe;
    mnnvl_moe_a2a_params_init(&moe);
    moe.ep_size = 4;
    moe.num_experts = 8;
    moe.max_tokens_per_rank = 64;
    moe.hidden = 256;
    moe.payload_bytes[0] = 512;
    size_t full = mnnvl_moe_a2a_workspace_size(&moe);
    cr_assert_gt(full, 0, "%s", mnnvl_last_error());
    moe.fault_tolerant = 1;
    moe.peer_timeout_ms = 250;
    cr_expect_eq(mnnvl_moe_a2a_workspace_size(&moe), full);
    moe.struct_size = (uint32_t)offsetof(mnnvl_moe_a2a_params_t, fault_tolerant);
    cr_expect_eq(mnnvl_moe_a2a_workspace_size(&moe), full, "%s", mnnvl_last_error());
    moe.struct_size = sizeof(moe) + 8;
    cr_expect_eq(mnnvl_moe_a2a_workspace_size(&moe), 0);

    mnnvl_dcp_a2a_params_t dcp;
    mnnvl_dcp_a2a_params_init(&dcp);
    dcp.cp_size = 2;
    dcp.max_entries = 16;
    size_t dfull = mnnvl_dcp_a2a_workspace_size(&dcp);
    cr_assert_gt(dfull, 0, "%s", mnnvl_last_error());
    dcp.fault_tolerant = 1;
    dcp.struct_size = (uint32_t)offsetof(mnnvl_dcp_a2a_params_t, fault_tolerant);
    cr_expect_eq(mnnvl_dcp_a2a_workspace_size(&dcp), dfull, "%s", mnnvl_last_error());

    mnnvl_allreduce_params_t ar;
    mnnvl_allreduce_params_init(&ar);
    size_t afull = mnnvl_allreduce_workspace_size(&ar, 4);
    cr_assert_gt(afull, 0, "%s", mnnvl_last_error());
    ar.fault_tolerant = 1;
    ar.struct_size = (uint32_t)offsetof(mnnvl_allreduce_params_t, fault_tolerant);
    cr_expect_eq(mnnvl_allreduce_workspace_size(&ar, 4), afull, "%s", mnnvl_last_error());
}

Test(fault, config_key_peer_timeout_ms)
{
    mnnvl_config_t cfg;
    cr_assert_eq(mnnvl_config_create(&cfg), MNNVL_SUCCESS);
    cr_expect_str_eq(mnnvl_config_get(cfg, "peer_timeout_ms"), "1000");
    cr_expect_eq(mnnvl_config_set(cfg, "peer_timeout_ms", "250"), MNNVL_SUCCESS);
    cr_expect_str_eq(mnnvl_config_get(cfg, "peer_timeout_ms"), "250");
    cr_expect_eq(mnnvl_config_set(cfg, "peer_timeout_ms", "0"), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mnnvl_config_set(cfg, "peer_timeout_ms", "soon"), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(mnnvl_config_get(cfg, "peer_timeout_ms"), "250");
    mnnvl_config_destroy(cfg);
}

Test(fault, failed_ranks_arguments)
{
    int count = 7;
    mnnvl_rank_failure_t list[2];
    cr_expect_eq(mnnvl_comm_failed_ranks(NULL, list, 2, &count), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(mnnvl_last_error(), "comm_failed_ranks") != NULL);
}
