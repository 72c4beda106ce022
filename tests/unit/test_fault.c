/* Fault tolerance without a GPU: the params fields and their struct_size rules, the config
 * key, mnnvl_comm_failed_ranks before and after a fault, and the tcp bootstrap's liveness
 * (the root tells every member each rank it loses; the communicator's watcher records it
 * within milliseconds, with no call of the survivors involved). Ranks are real processes on
 * loopback, CPU-only communicators. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "mnnvl.h"
#include "testutil.h"

#define TIMEOUT_MS 5000

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

typedef struct fault_job {
    char root[64];
    int victims[2]; /* ranks that SIGKILL themselves after the first barrier (-1: none) */
} fault_job_t;

static mnnvl_comm_t create(const fault_job_t *job, int rank, int size)
{
    mnnvl_config_t cfg = mt_config(job->root, "fault-test-job-key-of-32-characters!", TIMEOUT_MS);
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, -1, &comm);
    mnnvl_config_destroy(cfg);
    return mt_fail(st, rank, "comm_create") ? NULL : comm;
}

static int is_victim(const fault_job_t *job, int rank)
{
    return rank == job->victims[0] || rank == job->victims[1];
}

/* Before any fault: nothing failed, and the argument checks. After the victims died: every
 * survivor's record lists exactly them, with reason CONNECTION, within a second of the
 * kill, without any collective call; the next barrier then fails with PEER_LOST. */
static int liveness_body(int rank, int size, void *arg)
{
    const fault_job_t *job = arg;
    mnnvl_comm_t comm = create(job, rank, size);
    if (!comm)
        return 1;
    int count = -1;
    mnnvl_rank_failure_t list[4];
    if (mt_fail(mnnvl_comm_failed_ranks(comm, list, 4, &count), rank, "failed_ranks") ||
        count != 0) {
        fprintf(stderr, "rank %d: %d failed ranks before any fault\n", rank, count);
        return 1;
    }
    if (mnnvl_comm_failed_ranks(comm, NULL, 1, &count) != MNNVL_ERR_INVALID_ARGUMENT ||
        mnnvl_comm_failed_ranks(comm, list, -1, &count) != MNNVL_ERR_INVALID_ARGUMENT ||
        mnnvl_comm_failed_ranks(comm, NULL, 0, &count) != MNNVL_SUCCESS || count != 0) {
        fprintf(stderr, "rank %d: failed_ranks argument checks wrong\n", rank);
        return 1;
    }
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    if (is_victim(job, rank)) {
        usleep(rank == job->victims[1] ? 300 * 1000 : 100 * 1000);
        raise(SIGKILL);
    }
    int want = job->victims[1] >= 0 ? 2 : 1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t start_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    uint64_t t0 = mnnvl_now_ms();
    count = 0;
    while (count < want && mnnvl_now_ms() - t0 < 3000) {
        usleep(5 * 1000);
        if (mt_fail(mnnvl_comm_failed_ranks(comm, list, 4, &count), rank, "failed_ranks"))
            return 1;
    }
    uint64_t took = mnnvl_now_ms() - t0;
    int rc = 0;
    if (count != want || took > 1500) {
        fprintf(stderr, "rank %d: %d of %d deaths seen after %llu ms\n", rank, count, want,
                (unsigned long long)took);
        rc = 1;
    }
    for (int i = 0; i < count && i < 4; i++) {
        int expected =
            want == 2 ? (job->victims[0] < job->victims[1] ? job->victims[i] : job->victims[1 - i])
                      : job->victims[0];
        if (list[i].rank != expected || list[i].reason != MNNVL_FAILURE_CONNECTION ||
            list[i].since_ms < start_ms - 50 || list[i].since_ms > start_ms + 1500) {
            fprintf(stderr, "rank %d: entry %d is rank %d reason %d since %lld (start %lld)\n",
                    rank, i, list[i].rank, (int)list[i].reason, (long long)list[i].since_ms,
                    (long long)start_ms);
            rc = 1;
        }
    }
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    if (st != MNNVL_ERR_PEER_LOST) {
        fprintf(stderr, "rank %d: barrier after the deaths returned %s\n", rank,
                mnnvl_status_string(st));
        rc = 1;
    }
    mnnvl_comm_destroy(comm);
    return rc;
}

static void run_liveness(int size, int v0, int v1)
{
    fault_job_t job = {.victims = {v0, v1}};
    mt_loopback_root(job.root, sizeof(job.root));
    int codes[8];
    mt_run_ranks(size, liveness_body, &job, 20, codes);
    for (int r = 0; r < size; r++)
        cr_expect_eq(codes[r], r == v0 || r == v1 ? 128 + SIGKILL : 0, "rank %d exited with %d", r,
                     codes[r]);
}

Test(fault, killed_rank_is_recorded_within_milliseconds)
{
    run_liveness(3, 2, -1);
}

/* The root tells every loss, not only the first. */
Test(fault, two_killed_ranks_are_both_recorded)
{
    run_liveness(4, 3, 1);
}

/* root_mode=rank0: the root dies with rank 0, which the survivors record as rank 0's death. */
Test(fault, killed_root_host_is_recorded)
{
    run_liveness(3, 0, -1);
}

/* root_mode=rank0, no fault: rank 0 destroys its communicator first and its process goes on
 * (then ends). The others, which still hold theirs, must record no failure: the root rank 0
 * hosts outlives its destroy until they have left (before, its end read as rank 0's death,
 * and every survivor's async error became PEER_LOST; seen in the GPU suite). */
static int graceful_body(int rank, int size, void *arg)
{
    const fault_job_t *job = arg;
    mnnvl_comm_t comm = create(job, rank, size);
    if (!comm || mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    if (rank == 0) {
        uint64_t t0 = mnnvl_now_ms();
        mnnvl_comm_destroy(comm); /* waits for the others' BYE, not for their timeout */
        uint64_t took = mnnvl_now_ms() - t0;
        if (took > 3000) {
            fprintf(stderr, "rank 0: destroy took %llu ms\n", (unsigned long long)took);
            return 1;
        }
        return 0;
    }
    usleep(600 * 1000); /* rank 0 destroys meanwhile; liveness would have noticed by now */
    int count = -1;
    mnnvl_rank_failure_t list[4];
    int rc = mt_fail(mnnvl_comm_failed_ranks(comm, list, 4, &count), rank, "failed_ranks");
    if (!rc && count != 0) {
        fprintf(stderr,
                "rank %d: rank %d recorded as failed (reason %d) after a graceful "
                "destroy\n",
                rank, list[0].rank, (int)list[0].reason);
        rc = 1;
    }
    mnnvl_comm_destroy(comm);
    return rc;
}

Test(fault, graceful_destroy_of_the_root_host_is_no_failure)
{
    fault_job_t job = {.victims = {-1, -1}};
    mt_loopback_root(job.root, sizeof(job.root));
    int codes[4];
    mt_run_ranks(3, graceful_body, &job, 20, codes);
    for (int r = 0; r < 3; r++)
        cr_expect_eq(codes[r], 0, "rank %d exited with %d", r, codes[r]);
}
