/* The tcp bootstrap through the public API: CPU-only communicators (device -1) whose ranks
 * are real processes (mt_run_ranks) or threads, on loopback. Every rank body returns 0 on
 * success; a failing rank prints why to stderr. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "mnnvl.h"
#include "rank_threads.h"
#include "service.h"
#include "testutil.h"

#define TIMEOUT_MS 3000
#define RANKS_TIMEOUT_S 15

TestSuite(bootstrap, .timeout = 20);

/* What every rank body needs to know about its job. */
typedef struct job {
    char root[64];
    const char *root_mode; /* NULL: the default (rank0) */
    const char *job_key;
    int timeout_ms; /* 0: TIMEOUT_MS */
    /* For with_comm: what each rank runs on its communicator. */
    int (*body)(mnnvl_comm_t comm, int rank, const struct job *job);
    int victim; /* killed_body: the rank that dies */
} job_t;

/* A root that rank 0 hosts, on a free port. */
static void job_rank0(job_t *job)
{
    mt_loopback_root(job->root, sizeof(job->root));
    job->root_mode = NULL;
}

static atomic_int refusals_logged;

static void log_sink(mnnvl_log_level_t level, const char *message, void *user)
{
    (void)user;
    if (level <= MNNVL_LOG_WARN && strstr(message, "refused") && strstr(message, "127.0.0.1:"))
        atomic_fetch_add(&refusals_logged, 1);
}

/* The external root, in a process of its own (tests/lib/service.h says why). Its result is
 * the number of connections its log says it refused. */
static int root_service(void *job_key, mt_service_io_t *io)
{
    mnnvl_set_log_callback(log_sink, NULL);
    mnnvl_config_t cfg = mt_config(NULL, job_key, TIMEOUT_MS);
    mnnvl_root_t root = NULL;
    mnnvl_status_t st = mnnvl_root_start(cfg, "127.0.0.1:0", &root);
    mnnvl_config_destroy(cfg);
    if (st != MNNVL_SUCCESS) {
        fprintf(stderr, "root service: %s\n", mnnvl_last_error());
        return -1;
    }
    mt_service_ready(io, mnnvl_root_address(root));
    mt_service_wait(io);
    mnnvl_root_stop(root);
    return atomic_load(&refusals_logged);
}

/* An external root that opens to job->job_key (NULL: none); mt_service_stop gives its
 * refusal count. */
static mt_service_t *job_external(job_t *job)
{
    mt_service_t *root = mt_service_start(root_service, (void *)job->job_key);
    cr_assert_not_null(root, "the external root did not start");
    snprintf(job->root, sizeof(job->root), "%s", mt_service_info(root));
    job->root_mode = "external";
    return root;
}

static mnnvl_status_t job_create(const job_t *job, int rank, int size, mnnvl_comm_t *comm)
{
    mnnvl_config_t cfg =
        mt_config(job->root, job->job_key, job->timeout_ms ? job->timeout_ms : TIMEOUT_MS);
    if (job->root_mode)
        mnnvl_config_set(cfg, "root_mode", job->root_mode);
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, -1, comm);
    mnnvl_config_destroy(cfg);
    return st;
}

/* A rank of the job (arg) that runs job->body on a communicator created for it and
 * destroyed afterwards. */
static int with_comm(int rank, int size, void *arg)
{
    const job_t *job = arg;
    mnnvl_comm_t comm;
    if (mt_fail(job_create(job, rank, size, &comm), rank, "comm_create"))
        return 1;
    int rc = job->body(comm, rank, job);
    mnnvl_comm_destroy(comm);
    return rc;
}

/* Runs fn(rank, size, &job) on `ranks` processes, the root hosted by rank 0; returns the
 * number of ranks that failed (exit codes in codes, which may be NULL). */
static int run_rank0(job_t job, int ranks, mt_rank_fn fn, int *codes)
{
    job_rank0(&job);
    return mt_run_ranks(ranks, fn, &job, RANKS_TIMEOUT_S, codes);
}

/* The same with an external root, stopped once the ranks are done; *refusals (may be NULL)
 * receives the number of connections it refused. */
static int run_external(job_t job, int ranks, mt_rank_fn fn, int *refusals)
{
    mt_service_t *root = job_external(&job);
    int rc = mt_run_ranks(ranks, fn, &job, RANKS_TIMEOUT_S, NULL);
    int refused = mt_service_stop(root);
    if (refusals)
        *refusals = refused;
    return rc;
}

static uint8_t pattern(int rank, size_t i, size_t salt)
{
    return (uint8_t)(rank * 37 + i * 7 + (i >> 8) * 13 + salt);
}

static double elapsed_ms(uint64_t since)
{
    return (double)(mnnvl_now_ms() - since);
}

/* ---------------------------------------------------------------------------------------- */

static int allgather_sizes_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    int size = mnnvl_comm_size(comm);
    static const size_t sizes[] = {1, 1024, 64 * 1024, 1024 * 1024};
    int rc = 0;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]) && rc == 0; s++) {
        size_t bytes = sizes[s];
        uint8_t *send = malloc(bytes);
        uint8_t *recv = calloc((size_t)size, bytes);
        for (size_t i = 0; i < bytes; i++)
            send[i] = pattern(rank, i, bytes);
        rc = mt_fail(mnnvl_comm_allgather(comm, send, recv, bytes), rank, "allgather");
        for (int r = 0; r < size && rc == 0; r++) {
            for (size_t i = 0; i < bytes; i++) {
                if (recv[(size_t)r * bytes + i] != pattern(r, i, bytes)) {
                    fprintf(stderr, "rank %d: allgather of %zu: byte %zu of rank %d wrong\n", rank,
                            bytes, i, r);
                    rc = 1;
                    break;
                }
            }
        }
        free(send);
        free(recv);
    }
    if (rc == 0)
        rc = mt_fail(mnnvl_comm_finalize(comm), rank, "finalize");
    return rc;
}

Test(bootstrap, allgather_8_ranks_1B_to_1MiB)
{
    cr_assert_eq(run_rank0((job_t){.body = allgather_sizes_body}, 8, with_comm, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

static int broadcast_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    enum { BYTES = 5000, ROOT = 2 };
    uint8_t buf[BYTES];
    for (size_t i = 0; i < BYTES; i++)
        buf[i] = rank == ROOT ? pattern(ROOT, i, 1) : 0;
    int rc = mt_fail(mnnvl_comm_broadcast(comm, buf, BYTES, ROOT), rank, "broadcast");
    for (size_t i = 0; rc == 0 && i < BYTES; i++) {
        if (buf[i] != pattern(ROOT, i, 1)) {
            fprintf(stderr, "rank %d: broadcast byte %zu wrong\n", rank, i);
            rc = 1;
        }
    }
    return rc;
}

Test(bootstrap, broadcast_from_rank_2)
{
    cr_assert_eq(run_rank0((job_t){.body = broadcast_body}, 4, with_comm, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

/* Rank 3 arrives 300 ms late: nobody may leave the barrier before it. */
static int barrier_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    int rc = mt_fail(mnnvl_comm_barrier(comm), rank, "barrier 1");
    if (rank == 3)
        usleep(300 * 1000);
    uint64_t t0 = mnnvl_now_ms();
    rc = rc || mt_fail(mnnvl_comm_barrier(comm), rank, "barrier 2");
    if (rc == 0 && rank != 3 && elapsed_ms(t0) < 250) {
        fprintf(stderr, "rank %d left the barrier after %.0f ms, before rank 3 arrived\n", rank,
                elapsed_ms(t0));
        rc = 1;
    }
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = mt_fail(mnnvl_comm_barrier(comm), rank, "barrier loop");
    return rc;
}

Test(bootstrap, barrier_waits_for_the_last_rank)
{
    cr_assert_eq(run_rank0((job_t){.body = barrier_body}, 4, with_comm, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

/* The victim dies with SIGKILL while the others wait in a barrier; they must fail (not
 * hang) within timeout_ms + 2 s, measured inside each of them. */
static int killed_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "first barrier"))
        return 1;
    if (rank == job->victim) {
        usleep(200 * 1000);
        raise(SIGKILL);
    }
    uint64_t t0 = mnnvl_now_ms();
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    double ms = elapsed_ms(t0);
    int rc = 0;
    if (st != MNNVL_ERR_PEER_LOST && st != MNNVL_ERR_TIMEOUT) {
        fprintf(stderr, "rank %d: barrier returned %s, expected PEER_LOST or TIMEOUT\n", rank,
                mnnvl_status_string(st));
        rc = 1;
    }
    if (ms > TIMEOUT_MS + 2000) {
        fprintf(stderr, "rank %d: barrier failed only after %.0f ms\n", rank, ms);
        rc = 1;
    }
    if (st == MNNVL_ERR_PEER_LOST && job->victim != 0 && !strstr(mnnvl_last_error(), "rank 2")) {
        fprintf(stderr, "rank %d: the sentence does not name rank 2: %s\n", rank,
                mnnvl_last_error());
        rc = 1;
    }
    return rc;
}

static void run_kill(int victim)
{
    int codes[4];
    run_rank0((job_t){.body = killed_body, .victim = victim}, 4, with_comm, codes);
    for (int r = 0; r < 4; r++)
        cr_expect_eq(codes[r], r == victim ? 128 + SIGKILL : 0, "rank %d exited with %d", r,
                     codes[r]);
}

Test(bootstrap, sigkilled_rank_fails_the_others)
{
    run_kill(2);
}

Test(bootstrap, sigkilled_root_host_fails_the_others)
{
    run_kill(0);
}

/* Rank 0, which hosts the root, dies the moment its allgather returns: the others must have
 * been sent that allgather's result already (one outcome), so they report SUCCESS with the
 * right bytes, not PEER_LOST for a collective rank 0 saw succeed. 256 KiB per rank, so
 * that writing the results takes the root a while; rounds, because the race is narrow. */
static int root_host_dies_after_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    enum { BYTES = 256 << 10 };
    int size = mnnvl_comm_size(comm);
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "first barrier"))
        return 1;
    uint8_t *mine = malloc(BYTES);
    uint8_t *all = malloc((size_t)BYTES * (size_t)size);
    for (size_t i = 0; i < BYTES; i++)
        mine[i] = pattern(rank, i, 3);
    int rc = mt_fail(mnnvl_comm_allgather(comm, mine, all, BYTES), rank, "allgather");
    if (rank == 0)
        raise(SIGKILL);
    for (int r = 0; rc == 0 && r < size; r++)
        for (size_t i = 0; rc == 0 && i < BYTES; i++)
            if (all[(size_t)r * BYTES + i] != pattern(r, i, 3)) {
                fprintf(stderr, "rank %d: byte %zu of rank %d wrong\n", rank, i, r);
                rc = 1;
            }
    free(mine);
    free(all);
    return rc;
}

Test(bootstrap, root_host_killed_right_after_an_allgather_leaves_the_others_its_result)
{
    for (int round = 0; round < 10; round++) {
        int codes[4];
        run_rank0((job_t){.body = root_host_dies_after_body}, 4, with_comm, codes);
        for (int r = 0; r < 4; r++)
            cr_assert_eq(codes[r], r == 0 ? 128 + SIGKILL : 0, "round %d: rank %d exited with %d",
                         round, r, codes[r]);
    }
}

/* ---------------------------------------------------------------------------------------- */

/* Ranks 0..2 form a job with the right key; the fourth process claims rank 0 of the same
 * communicator with a wrong key. */
static int auth_rank(int rank, int size, void *arg)
{
    job_t job = *(job_t *)arg;
    mnnvl_comm_t comm;
    if (rank == size - 1) {
        job.job_key = "wrong key of the test 0123456789abcdef";
        uint64_t start = mnnvl_now_ms();
        mnnvl_status_t st = job_create(&job, 0, size - 1, &comm);
        uint64_t took = mnnvl_now_ms() - start;
        /* At once, with the reason, and without the key in the sentence. */
        if (st != MNNVL_ERR_AUTH || !strstr(mnnvl_last_error(), "job_key differs") ||
            strstr(mnnvl_last_error(), "wrong") || took > TIMEOUT_MS / 2) {
            fprintf(stderr, "intruder: comm_create returned %s after %llu ms: %s\n",
                    mnnvl_status_string(st), (unsigned long long)took, mnnvl_last_error());
            return 1;
        }
        return 0;
    }
    if (mt_fail(job_create(&job, rank, size - 1, &comm), rank, "comm_create"))
        return 1;
    int mine = rank * 10;
    int all[3] = {0};
    int rc = mt_fail(mnnvl_comm_allgather(comm, &mine, all, sizeof(int)), rank, "allgather");
    for (int r = 0; rc == 0 && r < 3; r++)
        rc = all[r] != r * 10;
    mnnvl_comm_destroy(comm);
    return rc;
}

Test(bootstrap, wrong_job_key_is_refused_and_logged)
{
    int refusals = 0;
    int rc = run_external((job_t){.job_key = "right key of the test 0123456789abcdef"}, 4,
                          auth_rank, &refusals);
    cr_assert_eq(rc, 0);
    cr_assert_geq(refusals, 1, "the root logged no refusal");
}

/* ---------------------------------------------------------------------------------------- */

static int mismatch_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    uint8_t send[16] = {0};
    uint8_t recv[16 * 4];
    mnnvl_status_t st = mnnvl_comm_allgather(comm, send, recv, rank == 3 ? 16 : 8);
    int rc = 0;
    if (st != MNNVL_ERR_MISMATCH || !strstr(mnnvl_last_error(), "16")) {
        fprintf(stderr, "rank %d: unequal allgather returned %s: %s\n", rank,
                mnnvl_status_string(st), mnnvl_last_error());
        rc = 1;
    }
    /* Every rank got the same answer, so the communicator is still usable. */
    rc = rc || mt_fail(mnnvl_comm_allgather(comm, send, recv, 8), rank, "allgather after");
    return rc;
}

Test(bootstrap, unequal_allgather_sizes_give_mismatch_everywhere)
{
    cr_assert_eq(run_rank0((job_t){.body = mismatch_body}, 4, with_comm, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

/* Splits into `group` and checks that the child holds exactly the expected parent ranks. */
static int check_split(mnnvl_comm_t parent, const mnnvl_mapping_t *m, mnnvl_group_t group,
                       int first, int step)
{
    int rank = m->rank;
    mnnvl_comm_t child;
    if (mt_fail(mnnvl_comm_split(parent, m, group, &child), rank, "comm_split"))
        return 1;
    int rc = mnnvl_comm_size(child) != 2 || mnnvl_comm_rank(child) != (rank - first) / step;
    int all[2] = {-1, -1};
    rc = rc || mt_fail(mnnvl_comm_allgather(child, &rank, all, sizeof(int)), rank, "allgather");
    if (rc == 0 && (all[0] != first || all[1] != first + step)) {
        fprintf(stderr, "rank %d: group %d holds %d,%d; expected %d,%d\n", rank, group, all[0],
                all[1], first, first + step);
        rc = 1;
    }
    mnnvl_comm_destroy(child);
    return rc;
}

static int split_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    mnnvl_mapping_t m = {.struct_size = sizeof(mnnvl_mapping_t),
                         .world_size = 4,
                         .rank = rank,
                         .gpus_per_node = 4,
                         .tp = 2,
                         .pp = 2,
                         .cp = 1,
                         .moe_tp = 1,
                         .moe_ep = 2};
    int rc = check_split(comm, &m, MNNVL_GROUP_TP, rank - rank % 2, 1);
    rc = rc || check_split(comm, &m, MNNVL_GROUP_PP, rank % 2, 2);
    rc = rc || mt_fail(mnnvl_comm_barrier(comm), rank, "parent barrier");
    return rc;
}

Test(bootstrap, split_tp_and_pp_groups)
{
    cr_assert_eq(run_rank0((job_t){.body = split_body}, 4, with_comm, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

static int many_comms_rank(int rank, int size, void *arg)
{
    for (int i = 0; i < 20; i++) {
        mnnvl_comm_t comm;
        if (mt_fail(job_create(arg, rank, size, &comm), rank, "comm_create"))
            return 1;
        int mine = i * 100 + rank;
        int all[4];
        int rc = mt_fail(mnnvl_comm_allgather(comm, &mine, all, sizeof(int)), rank, "allgather");
        for (int r = 0; rc == 0 && r < size; r++)
            rc = all[r] != i * 100 + r;
        mnnvl_comm_destroy(comm);
        if (rc) {
            fprintf(stderr, "rank %d: communicator %d failed\n", rank, i);
            return 1;
        }
    }
    return 0;
}

Test(bootstrap, twenty_communicators_in_a_row_on_one_external_root)
{
    job_t job = {.job_key = "key of twenty communicators 0123456789"};
    cr_assert_eq(run_external(job, 4, many_comms_rank, NULL), 0);
}

Test(bootstrap, communicators_in_a_row_with_rank0_roots_on_one_port)
{
    cr_assert_eq(run_rank0((job_t){0}, 4, many_comms_rank, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

/* One of four ranks that are threads of this process. */
typedef struct thread_rank {
    const job_t *job;
    int rank;
    int failed;
} thread_rank_t;

/* Runs fn on four thread ranks of job and expects each to succeed. */
static void run_thread_ranks(const job_t *job, void *(*fn)(void *))
{
    thread_rank_t t[4];
    for (int r = 0; r < 4; r++)
        t[r] = (thread_rank_t){.job = job, .rank = r};
    mt_run_threads(4, fn, t, sizeof(t[0]));
    for (int r = 0; r < 4; r++)
        cr_expect_eq(t[r].failed, 0, "thread rank %d failed", r);
}

static void *many_comms_thread(void *arg)
{
    thread_rank_t *t = arg;
    t->failed = many_comms_rank(t->rank, 4, (void *)t->job);
    return NULL;
}

Test(bootstrap, four_ranks_as_threads_of_one_process)
{
    job_t job = {0};
    mt_service_t *root = job_external(&job);
    run_thread_ranks(&job, many_comms_thread);
    mt_service_stop(root);
}

/* ---------------------------------------------------------------------------------------- */

static void *abort_later(void *arg)
{
    usleep(300 * 1000);
    mnnvl_comm_abort(arg);
    return NULL;
}

/* Rank 0 blocks in a barrier that rank 1 joins only much later; another thread of rank 0
 * aborts. Rank 0's barrier must return at once, and rank 1 must learn PEER_LOST. */
static int abort_body(mnnvl_comm_t comm, int rank, const job_t *job)
{
    (void)job;
    int rc = 0;
    uint64_t t0 = mnnvl_now_ms();
    if (rank == 0) {
        pthread_t aborter;
        pthread_create(&aborter, NULL, abort_later, comm);
        mnnvl_status_t st = mnnvl_comm_barrier(comm);
        pthread_join(aborter, NULL);
        if (st == MNNVL_SUCCESS || elapsed_ms(t0) > 1500) {
            fprintf(stderr, "rank 0: barrier returned %s after %.0f ms\n", mnnvl_status_string(st),
                    elapsed_ms(t0));
            rc = 1;
        }
    } else {
        nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
        t0 = mnnvl_now_ms();
        mnnvl_status_t st = mnnvl_comm_barrier(comm);
        if (st != MNNVL_ERR_PEER_LOST || elapsed_ms(t0) > 1000 ||
            !strstr(mnnvl_last_error(), "abort")) {
            fprintf(stderr, "rank 1: barrier returned %s after %.0f ms: %s\n",
                    mnnvl_status_string(st), elapsed_ms(t0), mnnvl_last_error());
            rc = 1;
        }
    }
    return rc;
}

Test(bootstrap, abort_from_another_thread_wakes_a_blocked_barrier)
{
    cr_assert_eq(run_external((job_t){.body = abort_body, .timeout_ms = 10000}, 2, with_comm, NULL),
                 0);
}

/* ---------------------------------------------------------------------------------------- */

Test(bootstrap, external_root_nobody_listening_times_out)
{
    job_t job = {0};
    job_rank0(&job);
    job.root_mode = "external";
    job.timeout_ms = 1000;
    mnnvl_comm_t comm = NULL;
    uint64_t t0 = mnnvl_now_ms();
    mnnvl_status_t st = job_create(&job, 1, 2, &comm);
    double ms = elapsed_ms(t0);
    cr_assert_eq(st, MNNVL_ERR_TIMEOUT, "%s: %s", mnnvl_status_string(st), mnnvl_last_error());
    cr_assert_lt(ms, 1000 + 1000, "took %.0f ms", ms);
    cr_assert(strstr(mnnvl_last_error(), job.root), "%s", mnnvl_last_error());
    cr_assert_null(comm);
}

/* Ranks 0 and 1 of 3 join; rank 2 never comes. Rank 0 gives up first, while rank 1 is still
 * there, so it must read "2 of 3 ranks joined ... (rank 2 never joined)"; rank 1, later, that
 * rank 2 never joined too (rank 0 joined, then gave up). */
static int partial_group_rank(int rank, int size, void *arg)
{
    job_t job = *(job_t *)arg;
    job.timeout_ms = rank == 0 ? 1000 : 2500;
    mnnvl_comm_t comm;
    mnnvl_status_t st = job_create(&job, rank, size + 1, &comm);
    const char *expect_count = rank == 0 ? "2 of 3 ranks joined" : "of 3 ranks joined";
    const char *expect_missing = "rank 2 never joined";
    if (st != MNNVL_ERR_TIMEOUT || !strstr(mnnvl_last_error(), expect_count) ||
        !strstr(mnnvl_last_error(), expect_missing)) {
        fprintf(stderr, "rank %d: %s: %s\n", rank, mnnvl_status_string(st), mnnvl_last_error());
        return 1;
    }
    return 0;
}

Test(bootstrap, group_that_never_forms_says_who_is_missing)
{
    cr_assert_eq(run_external((job_t){0}, 2, partial_group_rank, NULL), 0);
}

Test(bootstrap, missing_root_is_invalid_argument)
{
    unsetenv("MNNVL_ROOT");
    mnnvl_config_t cfg = mt_config(NULL, NULL, TIMEOUT_MS);
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, 0, 2, -1, &comm);
    mnnvl_config_destroy(cfg);
    cr_assert_eq(st, MNNVL_ERR_INVALID_ARGUMENT, "%s", mnnvl_status_string(st));
    cr_assert(strstr(mnnvl_last_error(), "root=host:port"), "%s", mnnvl_last_error());
    cr_assert(strstr(mnnvl_last_error(), "mnnvl_root_start"), "%s", mnnvl_last_error());
}

Test(bootstrap, root_start_and_stop)
{
    mnnvl_config_t cfg = mt_config(NULL, NULL, TIMEOUT_MS);
    mnnvl_root_t root = NULL;
    cr_assert_eq(mnnvl_root_start(cfg, NULL, &root), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    const char *address = mnnvl_root_address(root);
    cr_assert(address && strrchr(address, ':') && atoi(strrchr(address, ':') + 1) > 0, "%s",
              address);
    cr_assert_eq(mnnvl_root_stop(root), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_root_start(cfg, "no-port-here", &root), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert_null(root);
    cr_assert_eq(mnnvl_root_stop(NULL), MNNVL_SUCCESS);
    cr_assert_null(mnnvl_root_address(NULL));
    mnnvl_config_destroy(cfg);
}

/* root_mode=rank0: ranks 0 and 1 of 3 join, rank 2 never comes. Rank 0, which hosts the
 * root, gives up first and takes the root with it; rank 1 must still learn from the root
 * that rank 2 never joined, not report "found no root". */
static int rank0_gives_up_rank(int rank, int size, void *arg)
{
    job_t job = *(job_t *)arg;
    job.timeout_ms = rank == 0 ? 1000 : 2500;
    if (rank == 1)
        usleep(100 * 1000); /* rank 0's root is up */
    mnnvl_comm_t comm;
    mnnvl_status_t st = job_create(&job, rank, size + 1, &comm);
    const char *why = mnnvl_last_error();
    if (st != MNNVL_ERR_TIMEOUT || !strstr(why, "rank 2 never joined") ||
        strstr(why, "found no root")) {
        fprintf(stderr, "rank %d: %s: %s\n", rank, mnnvl_status_string(st), why);
        return 1;
    }
    fprintf(stderr, "rank %d: %s\n", rank, why);
    return 0;
}

Test(bootstrap, rank_that_joined_learns_who_never_came_when_the_root_host_gives_up)
{
    cr_assert_eq(run_rank0((job_t){0}, 2, rank0_gives_up_rank, NULL), 0);
}

/* Many missing ranks are listed as ranges. */
static int ranges_rank(int rank, int size, void *arg)
{
    (void)size;
    job_t job = *(job_t *)arg;
    job.timeout_ms = 1500;
    static const int ranks[] = {0, 4, 5, 6, 8};
    mnnvl_comm_t comm;
    mnnvl_status_t st = job_create(&job, ranks[rank], 10, &comm);
    const char *why = mnnvl_last_error();
    if (st != MNNVL_ERR_TIMEOUT || !strstr(why, "ranks 1-3, 7, 9 never joined")) {
        fprintf(stderr, "rank %d: %s: %s\n", ranks[rank], mnnvl_status_string(st), why);
        return 1;
    }
    return 0;
}

Test(bootstrap, missing_ranks_are_listed_as_ranges)
{
    cr_assert_eq(run_external((job_t){0}, 5, ranges_rank, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */

Test(bootstrap, shrink_checks_its_arguments_locally)
{
    job_t job = {0};
    job_rank0(&job);
    mnnvl_comm_t comm = NULL, child = NULL;
    cr_assert_eq(job_create(&job, 0, 1, &comm), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    int self = 0, beyond = 1;
    cr_expect_eq(mnnvl_comm_shrink(comm, &self, 1, &child), MNNVL_ERR_INVALID_ARGUMENT,
                 "excluding every rank (n_exclude 1 of size 1) was accepted");
    cr_expect_eq(mnnvl_comm_shrink(comm, &beyond, -1, &child), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mnnvl_comm_shrink(comm, NULL, 0, NULL), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mnnvl_comm_shrink(NULL, NULL, 0, &child), MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_null(child);
    /* Nothing excluded: a communicator of the same ranks, which works. */
    cr_assert_eq(mnnvl_comm_shrink(comm, NULL, 0, &child), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    cr_expect_eq(mnnvl_comm_size(child), 1);
    cr_expect_eq(mnnvl_comm_barrier(child), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
}

static void *shrink_thread(void *arg)
{
    thread_rank_t *t = arg;
    int rank = t->rank;
    mnnvl_comm_t comm = NULL, child = NULL;
    if (job_create(t->job, rank, 4, &comm) != MNNVL_SUCCESS) {
        t->failed = 1;
        return NULL;
    }
    int bad = 0;
    if (rank == 3) {
        int twice[2] = {1, 1};
        bad = mnnvl_comm_shrink(comm, twice, 2, &child) != MNNVL_ERR_INVALID_ARGUMENT;
    } else if (rank == 2) {
        int itself[2] = {2, 3};
        bad = mnnvl_comm_shrink(comm, itself, 2, &child) != MNNVL_ERR_INVALID_USAGE;
    } else {
        int others[2] = {3, 2};
        int32_t mine = rank, all[2] = {-1, -1};
        bad = mnnvl_comm_shrink(comm, others, 2, &child) != MNNVL_SUCCESS ||
              mnnvl_comm_size(child) != 2 || mnnvl_comm_rank(child) != rank ||
              mnnvl_comm_allgather(child, &mine, all, sizeof(mine)) != MNNVL_SUCCESS ||
              all[0] != 0 || all[1] != 1;
    }
    if (bad)
        fprintf(stderr, "rank %d: shrink: %s\n", rank, mnnvl_last_error());
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
    t->failed = bad;
    return NULL;
}

/* Four threads of one process; rank 3 passes duplicates, rank 2 excludes itself: both fail
 * locally at once. Ranks 0 and 1 shrink to {0, 1} without them. */
Test(bootstrap, shrink_refuses_duplicates_and_self_and_keeps_parent_order)
{
    job_t job = {0};
    job_rank0(&job);
    run_thread_ranks(&job, shrink_thread);
}
