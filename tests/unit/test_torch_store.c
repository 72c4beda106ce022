/* The torch-store client against a store that lies (tests/unit/fake_store.h): every length
 * the store returns is checked before anything is written, a failure of one rank's read
 * becomes every rank's failure, and a value that a client without the job key wrote,
 * altered, moved or replayed fails with AUTH on every rank. Runs without torch. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_store.h"
#include "mnnvl.h"
#include "testutil.h"

/* With values of at most 1000 bytes (each ends with a 16-byte tag), an allgather of 1500
 * bytes per rank is two chunks per rank: 1000 bytes (the 16-byte header, 968 data bytes and
 * the tag), then 548 (532 data bytes and the tag). */
#define MAX_VALUE "1000"
#define BYTES 1500
#define LAST_CHUNK 548
#define GUARD 4096

TestSuite(torch_store_client, .timeout = 60);

/* Job keys of at least 32 characters. */
#define JOB_KEY "torch-store-test-job-key-0123456789abcdef"
#define OTHER_KEY "a-different-torch-store-job-key-0123456789"

typedef struct job {
    char store[64];
    char prefix[64];
    size_t wrong_len; /* what the store returns for rank 1's second chunk */
    int odd_rank;     /* with odd_key set: the rank that uses it instead of JOB_KEY */
    const char *odd_key;
    int in_create; /* the store tampers with a value of comm_create's first round */
    int expect_auth;
} job_t;

static mnnvl_status_t create(const job_t *job, int rank, int size, mnnvl_comm_t *comm)
{
    mnnvl_config_t cfg = NULL;
    const char *key = job->odd_key && rank == job->odd_rank ? job->odd_key : JOB_KEY;
    if (mnnvl_config_create(&cfg) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "bootstrap", "torch-store") != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "store", job->store) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "store_prefix", job->prefix) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "job_key", key) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "timeout_ms", "5000") != MNNVL_SUCCESS) {
        fprintf(stderr, "rank %d: config: %s\n", rank, mnnvl_last_error());
        mnnvl_config_destroy(cfg);
        return MNNVL_ERR_INTERNAL;
    }
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, -1, comm);
    mnnvl_config_destroy(cfg);
    return st;
}

/* An allgather whose rank-1 chunk the store returns with the wrong length: the call must
 * fail with BOOTSTRAP naming the key and both lengths, and write nothing past recv's
 * size*BYTES bytes (a guard after them must stay intact). */
static int wrong_chunk_rank(int rank, int size, void *arg)
{
    const job_t *job = arg;
    mnnvl_comm_t comm = NULL;
    if (mt_fail(create(job, rank, size, &comm), rank, "comm_create"))
        return 1;
    uint8_t send[BYTES];
    memset(send, 0x10 + rank, sizeof(send));
    size_t total = (size_t)size * BYTES;
    uint8_t *recv = malloc(total + GUARD);
    memset(recv, 0x5a, total + GUARD);
    mnnvl_status_t st = mnnvl_comm_allgather(comm, send, recv, BYTES);
    const char *why = mnnvl_last_error();
    int bad = 0;
    for (size_t i = total; i < total + GUARD; i++) {
        if (recv[i] != 0x5a) {
            fprintf(stderr, "rank %d: allgather wrote past the %zu bytes of recv (byte %zu)\n",
                    rank, total, i);
            bad = 1;
            break;
        }
    }
    char expected[32], received[32];
    snprintf(expected, sizeof(expected), "%d", LAST_CHUNK);
    snprintf(received, sizeof(received), "%zu", job->wrong_len);
    if (st != MNNVL_ERR_BOOTSTRAP) {
        fprintf(stderr,
                "rank %d: allgather with a %zu-byte chunk where %d belong returned %s "
                "(%s), expected MNNVL_ERR_BOOTSTRAP\n",
                rank, job->wrong_len, LAST_CHUNK, mnnvl_status_string(st), why);
        bad = 1;
    } else if (!strstr(why, "/1.1") || !strstr(why, expected) || !strstr(why, received)) {
        fprintf(stderr, "rank %d: the sentence does not name the key, %s and %s bytes: %s\n", rank,
                expected, received, why);
        bad = 1;
    } else {
        fprintf(stderr, "rank %d: %s\n", rank, why);
    }
    free(recv);
    mnnvl_comm_destroy(comm);
    return bad;
}

static void run_wrong_chunk(size_t wrong_len)
{
    fake_store_t *store = fake_store_start(FAKE_VALUE_LENGTH, "/1.1", wrong_len);
    cr_assert(store, "cannot start the fake store");
    job_t job = {.wrong_len = wrong_len};
    snprintf(job.store, sizeof(job.store), "%s", fake_store_address(store));
    snprintf(job.prefix, sizeof(job.prefix), "fake-%zu", wrong_len);
    setenv("MNNVL_TORCH_STORE_MAX_VALUE", MAX_VALUE, 1);
    int codes[2] = {0};
    int failed = mt_run_ranks(2, wrong_chunk_rank, &job, 30, codes);
    unsetenv("MNNVL_TORCH_STORE_MAX_VALUE");
    int faults = fake_store_stop(store);
    cr_expect_gt(faults, 0, "the store never returned the wrong chunk");
    cr_expect_eq(failed, 0, "%d ranks accepted a %zu-byte chunk where %d belong (exit codes %d %d)",
                 failed, wrong_len, LAST_CHUNK, codes[0], codes[1]);
}

/* A chunk longer than it should be: before the check, its bytes went past the caller's
 * buffer (a heap overflow of up to 8 MiB with the real limit). */
Test(torch_store_client, too_long_chunk_is_refused_before_it_is_written)
{
    run_wrong_chunk(1000);
}

/* A chunk shorter than it should be: before the check, allgather returned SUCCESS with
 * bytes nobody wrote. */
Test(torch_store_client, too_short_chunk_is_refused)
{
    run_wrong_chunk(100);
}

/* The store garbles one rank's read of the creation round's outcome. That rank fails, and
 * so must every other: none may come out of comm_create with a communicator that a peer
 * does not have. */
static int one_outcome_rank(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = create(arg, rank, size, &comm);
    fprintf(stderr, "rank %d: comm_create: %s: %s\n", rank, mnnvl_status_string(st),
            st == MNNVL_SUCCESS ? "" : mnnvl_last_error());
    if (st == MNNVL_SUCCESS) {
        mnnvl_comm_destroy(comm);
        return 1;
    }
    return 0;
}

Test(torch_store_client, one_garbled_read_fails_comm_create_everywhere)
{
    fake_store_t *store = fake_store_start(FAKE_FIRST_READ_GARBLED, "/0/done", 0);
    cr_assert(store, "cannot start the fake store");
    job_t job = {0};
    snprintf(job.store, sizeof(job.store), "%s", fake_store_address(store));
    snprintf(job.prefix, sizeof(job.prefix), "fake-garbled");
    int codes[3] = {0};
    int failed = mt_run_ranks(3, one_outcome_rank, &job, 30, codes);
    int faults = fake_store_stop(store);
    cr_expect_eq(faults, 1, "the store garbled %d reads, expected 1", faults);
    cr_expect_eq(failed, 0,
                 "%d of 3 ranks succeeded in comm_create although a peer's read failed (exit "
                 "codes %d %d %d, 1 = succeeded)",
                 failed, codes[0], codes[1], codes[2]);
}

/* ---------------------------------------------------------------------------------------- */
/* Authentication: the store can deny service, never alter what a rank receives           */
/* ---------------------------------------------------------------------------------------- */

/* Checks an AUTH outcome: the status, a sentence about authentication, and no key in it. */
static int expect_auth(int rank, const char *what, mnnvl_status_t st, const char *why)
{
    if (st != MNNVL_ERR_AUTH) {
        fprintf(stderr, "rank %d: %s returned %s (%s), expected MNNVL_ERR_AUTH\n", rank, what,
                mnnvl_status_string(st), st == MNNVL_SUCCESS ? "" : why);
        return 1;
    }
    if (!strstr(why, "authentication") || strstr(why, JOB_KEY) || strstr(why, OTHER_KEY)) {
        fprintf(stderr,
                "rank %d: %s: the sentence does not say authentication failed, or it "
                "holds a job key: %s\n",
                rank, what, why);
        return 1;
    }
    fprintf(stderr, "rank %d: %s: %s\n", rank, what, why);
    return 0;
}

#define ROUNDS 2
#define AUTH_BYTES 64

static uint8_t pattern(int rank, int round, size_t i)
{
    return (uint8_t)(rank * 31 + round * 7 + (int)i);
}

/* Creates the communicator and runs ROUNDS allgathers of distinct data. Each must return the
 * right data, or fail with AUTH (when the job expects it); SUCCESS with altered data, or
 * no AUTH at all where one is expected, fails the rank. */
static int tampered_rank(int rank, int size, void *arg)
{
    const job_t *job = arg;
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = create(job, rank, size, &comm);
    if (job->in_create || job->odd_key) {
        if (st == MNNVL_SUCCESS)
            mnnvl_comm_destroy(comm);
        return expect_auth(rank, "comm_create", st, mnnvl_last_error());
    }
    if (mt_fail(st, rank, "comm_create"))
        return 1;
    int got_auth = 0, bad = 0;
    uint8_t send[AUTH_BYTES], recv[8 * AUTH_BYTES];
    for (int round = 0; round < ROUNDS && !got_auth && !bad; round++) {
        for (size_t i = 0; i < sizeof(send); i++)
            send[i] = pattern(rank, round, i);
        memset(recv, 0, sizeof(recv));
        st = mnnvl_comm_allgather(comm, send, recv, AUTH_BYTES);
        if (st == MNNVL_SUCCESS) {
            for (int p = 0; p < size && !bad; p++) {
                for (size_t i = 0; i < AUTH_BYTES; i++) {
                    if (recv[(size_t)p * AUTH_BYTES + i] != pattern(p, round, i)) {
                        fprintf(stderr,
                                "rank %d: allgather %d returned SUCCESS with rank %d's byte %zu "
                                "altered\n",
                                rank, round, p, i);
                        bad = 1;
                        break;
                    }
                }
            }
        } else if (job->expect_auth) {
            bad = expect_auth(rank, "allgather", st, mnnvl_last_error());
            got_auth = 1;
        } else {
            bad = mt_fail(st, rank, "allgather");
        }
    }
    if (job->expect_auth && !got_auth && !bad) {
        fprintf(stderr, "rank %d: no allgather failed although the store tampered\n", rank);
        bad = 1;
    }
    mnnvl_comm_destroy(comm);
    return bad;
}

static void run_tampered(fake_store_t *store, job_t *job, int size, const char *name)
{
    cr_assert(store, "cannot start the fake store");
    snprintf(job->store, sizeof(job->store), "%s", fake_store_address(store));
    snprintf(job->prefix, sizeof(job->prefix), "fake-%s", name);
    int codes[8] = {0};
    int failed = mt_run_ranks(size, tampered_rank, job, 30, codes);
    int faults = fake_store_stop(store);
    if (job->expect_auth && !job->odd_key)
        cr_expect_gt(faults, 0, "%s: the store never tampered", name);
    cr_expect_eq(failed, 0,
                 "%s: %d of %d ranks did not get the expected outcome (exit codes %d %d %d)", name,
                 failed, size, codes[0], codes[1], size > 2 ? codes[2] : 0);
}

/* comm_create is rounds 0-2; the test's allgathers are rounds 3 and 4. Chunk keys end in
 * "/<round>/<rank>.<chunk>", and a value's data starts after the 16-byte header. */

Test(torch_store_client, right_key_works)
{
    job_t job = {0};
    run_tampered(fake_store_start(FAKE_NONE, "", 0), &job, 3, "right-key");
}

Test(torch_store_client, wrong_key_is_auth_on_both_ranks)
{
    job_t job = {.odd_rank = 1, .odd_key = OTHER_KEY, .expect_auth = 1};
    run_tampered(fake_store_start(FAKE_NONE, "", 0), &job, 2, "wrong-key-2");
}

Test(torch_store_client, wrong_key_is_auth_on_all_ranks)
{
    job_t job = {.odd_rank = 0, .odd_key = OTHER_KEY, .expect_auth = 1};
    run_tampered(fake_store_start(FAKE_NONE, "", 0), &job, 3, "wrong-key-3");
}

Test(torch_store_client, flipped_byte_is_auth_everywhere)
{
    job_t job = {.expect_auth = 1};
    run_tampered(fake_store_start(FAKE_FLIP_BYTE, "/3/1.0", 20), &job, 2, "flip");
}

Test(torch_store_client, flipped_byte_in_create_is_auth_everywhere)
{
    job_t job = {.in_create = 1, .expect_auth = 1};
    run_tampered(fake_store_start(FAKE_FLIP_BYTE, "/0/1.0", 20), &job, 3, "flip-create");
}

Test(torch_store_client, swapped_ranks_are_auth_everywhere)
{
    job_t job = {.expect_auth = 1};
    run_tampered(fake_store_start_moved(FAKE_SWAP, "/3/0.0", "/3/1.0"), &job, 2, "swap");
}

Test(torch_store_client, replayed_round_is_auth_everywhere)
{
    job_t job = {.expect_auth = 1};
    run_tampered(fake_store_start_moved(FAKE_REPLAY, "/4/0.0", "/3/0.0"), &job, 2, "replay");
}

/* Only the first reader of rank 1's blob gets an altered value: it fails that allgather with
 * AUTH, the others complete it with the right data (it was decided), and its tagged failure
 * mark makes them fail the next one with AUTH: every rank ends with AUTH. */
Test(torch_store_client, one_tampered_read_is_auth_everywhere)
{
    job_t job = {.expect_auth = 1};
    run_tampered(fake_store_start(FAKE_FIRST_READ_GARBLED, "/3/1.0", 0), &job, 3, "one-read");
}
