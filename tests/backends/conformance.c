/* The conformance scenarios; see conformance.h. Each returns 0 on success and prints why it
 * failed otherwise (the exit code of a rank process). */
#include "conformance.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadline.h"
#include "testutil.h"

#define KILL_GRACE_S 5

mnnvl_config_t bk_config(const bk_target_t *t, const char *name)
{
    mnnvl_config_t cfg = NULL;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", t->timeout_ms);
    const char *address_key = strcmp(t->backend, "torch-store") == 0 ? "store" : "root";
    if (mnnvl_config_create(&cfg) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "bootstrap", t->backend) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "comm_name", name) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "timeout_ms", timeout) != MNNVL_SUCCESS ||
        (t->address[0] && mnnvl_config_set(cfg, address_key, t->address) != MNNVL_SUCCESS) ||
        (t->prefix[0] && mnnvl_config_set(cfg, "store_prefix", t->prefix) != MNNVL_SUCCESS) ||
        (t->job_key[0] && mnnvl_config_set(cfg, "job_key", t->job_key) != MNNVL_SUCCESS)) {
        fprintf(stderr, "bk_config: %s\n", mnnvl_last_error());
        abort();
    }
    return cfg;
}

static mnnvl_status_t create(const bk_target_t *t, const char *name, int rank, int size,
                             mnnvl_comm_t *comm)
{
    mnnvl_config_t cfg = bk_config(t, name);
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, size, -1, comm);
    mnnvl_config_destroy(cfg);
    return st;
}

/* For the fault scenarios, whose short timeout_ms is the bound under test: a first
 * communicator with a generous timeout absorbs the start of the processes and of the
 * transport (UCX and libfabric take seconds under load), so that the real one's create,
 * under the short timeout, starts with every rank already there. */
static mnnvl_status_t create_settled(const bk_target_t *t, const char *name, int rank, int size,
                                     mnnvl_comm_t *comm)
{
    bk_target_t slow = *t;
    slow.timeout_ms = t->timeout_ms > 60000 ? t->timeout_ms : 60000;
    mnnvl_comm_t first = NULL;
    mnnvl_status_t st = create(&slow, name, rank, size, &first);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_comm_barrier(first);
    mnnvl_comm_destroy(first);
    return st == MNNVL_SUCCESS ? create(t, name, rank, size, comm) : st;
}

/* The start of every fault scenario: create_settled, then a first barrier that every rank
 * passes before the fault. 1 (the reason on stderr) when either fails. */
static int settle(const bk_target_t *t, const char *name, int rank, int size, mnnvl_comm_t *comm)
{
    return mt_fail(create_settled(t, name, rank, size, comm), rank, "comm_create") ||
           mt_fail(mnnvl_comm_barrier(*comm), rank, "first barrier");
}

static uint8_t pattern(int rank, size_t i, size_t bytes)
{
    return (uint8_t)(rank * 131 + i * 7 + bytes);
}

static int check_allgather(mnnvl_comm_t comm, int rank, int size, size_t bytes)
{
    uint8_t *send = malloc(bytes ? bytes : 1);
    uint8_t *recv = malloc(bytes ? bytes * (size_t)size : 1);
    for (size_t i = 0; i < bytes; i++)
        send[i] = pattern(rank, i, bytes);
    memset(recv, 0xee, bytes * (size_t)size);
    mnnvl_status_t st = mnnvl_comm_allgather(comm, send, recv, bytes);
    int bad = mt_fail(st, rank, "allgather");
    for (int r = 0; !bad && r < size; r++) {
        for (size_t i = 0; i < bytes; i++) {
            if (recv[(size_t)r * bytes + i] != pattern(r, i, bytes)) {
                fprintf(stderr,
                        "rank %d: allgather of %zu bytes: byte %zu of rank %d is %u, "
                        "expected %u\n",
                        rank, bytes, i, r, recv[(size_t)r * bytes + i], pattern(r, i, bytes));
                bad = 1;
                break;
            }
        }
    }
    free(send);
    free(recv);
    return bad;
}

static int check_broadcast(mnnvl_comm_t comm, int rank, int root, size_t bytes)
{
    uint8_t *buf = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        buf[i] = rank == root ? pattern(root, i, bytes) : 0;
    int bad = mt_fail(mnnvl_comm_broadcast(comm, buf, bytes, root), rank, "broadcast");
    for (size_t i = 0; !bad && i < bytes; i++) {
        if (buf[i] != pattern(root, i, bytes)) {
            fprintf(stderr, "rank %d: broadcast of %zu bytes from %d: byte %zu is wrong\n", rank,
                    bytes, root, i);
            bad = 1;
        }
    }
    free(buf);
    return bad;
}

/* Pairs of neighbouring ranks, through the TP group of a tp=2 mapping. */
static int check_split(mnnvl_comm_t comm, int rank, int size)
{
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, size, rank);
    m.tp = 2;
    m.moe_tp = 2;
    m.pp = size / 2;
    mnnvl_comm_t pair = NULL;
    if (mt_fail(mnnvl_comm_split(comm, &m, MNNVL_GROUP_TP, &pair), rank, "split"))
        return 1;
    int32_t mine = rank, both[2] = {-1, -1};
    int bad = mt_fail(mnnvl_comm_allgather(pair, &mine, both, sizeof(mine)), rank,
                      "allgather in the split");
    if (!bad && (mnnvl_comm_size(pair) != 2 || mnnvl_comm_rank(pair) != rank % 2 ||
                 both[0] != rank - rank % 2 || both[1] != rank - rank % 2 + 1)) {
        fprintf(stderr, "rank %d: split gave rank %d of %d holding world ranks %d, %d\n", rank,
                mnnvl_comm_rank(pair), mnnvl_comm_size(pair), both[0], both[1]);
        bad = 1;
    }
    bad |= mt_fail(mnnvl_comm_barrier(pair), rank, "barrier in the split");
    mnnvl_comm_destroy(pair);
    return bad;
}

int bk_collectives(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    mnnvl_comm_t comm = NULL;
    if (mt_fail(create(t, "conformance", rank, size, &comm), rank, "comm_create"))
        return 1;
    int bad = 0;
    for (size_t bytes = 1; !bad && bytes <= t->max_bytes; bytes *= 8)
        bad = check_allgather(comm, rank, size, bytes);
    size_t last = 1;
    while (last * 8 <= t->max_bytes)
        last *= 8;
    if (!bad && last != t->max_bytes)
        bad = check_allgather(comm, rank, size, t->max_bytes);
    bad = bad || check_allgather(comm, rank, size, 0);
    bad = bad || check_broadcast(comm, rank, 0, 1);
    bad = bad || check_broadcast(comm, rank, size - 1, 4096);
    bad = bad || check_broadcast(comm, rank, size / 2, t->max_bytes);
    for (int i = 0; !bad && i < 3; i++)
        bad = mt_fail(mnnvl_comm_barrier(comm), rank, "barrier");
    if (!bad && size % 2 == 0)
        bad = check_split(comm, rank, size);
    bad = bad || mt_fail(mnnvl_comm_barrier(comm), rank, "final barrier");
    mnnvl_comm_destroy(comm);
    return bad;
}

int bk_many_comms(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    for (int i = 0; i < 100; i++) {
        mnnvl_comm_t comm = NULL;
        if (mt_fail(create(t, "many", rank, size, &comm), rank, "comm_create")) {
            fprintf(stderr, "rank %d: creating communicator %d of 100 failed\n", rank, i);
            return 1;
        }
        int32_t mine[2] = {i, rank};
        int32_t *all = calloc((size_t)size, sizeof(mine));
        int bad = mt_fail(mnnvl_comm_allgather(comm, mine, all, sizeof(mine)), rank, "allgather");
        for (int r = 0; !bad && r < size; r++) {
            if (all[2 * r] != i || all[2 * r + 1] != r) {
                fprintf(stderr, "rank %d: communicator %d got (%d, %d) from rank %d\n", rank, i,
                        all[2 * r], all[2 * r + 1], r);
                bad = 1;
            }
        }
        free(all);
        mnnvl_comm_destroy(comm);
        if (bad)
            return 1;
    }
    return 0;
}

int bk_killed_rank(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    mnnvl_comm_t comm = NULL;
    if (settle(t, "killed", rank, size, &comm))
        return 1;
    if (rank == size - 1)
        raise(SIGKILL);
    uint64_t start = mnnvl_now_ms();
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    int waited = (int)(mnnvl_now_ms() - start);
    int bad = 0;
    if (st != MNNVL_ERR_TIMEOUT && st != MNNVL_ERR_PEER_LOST) {
        fprintf(stderr,
                "rank %d: the barrier after rank %d died returned %s (%s), expected "
                "TIMEOUT or PEER_LOST\n",
                rank, size - 1, mnnvl_status_string(st), mnnvl_last_error());
        bad = 1;
    } else if (waited > t->timeout_ms + KILL_GRACE_S * 1000) {
        fprintf(stderr, "rank %d: the failure took %d ms, more than timeout_ms %d + %d s\n", rank,
                waited, t->timeout_ms, KILL_GRACE_S);
        bad = 1;
    } else {
        fprintf(stderr, "rank %d: after %d ms: %s: %s\n", rank, waited, mnnvl_status_string(st),
                mnnvl_last_error());
    }
    mnnvl_comm_destroy(comm);
    return bad;
}

/* Allgather of the parent ranks and a barrier on a shrunk communicator: child rank c must
 * hold the c-th kept parent rank. */
static int check_shrunk(mnnvl_comm_t child, int rank, const int *kept, int n_kept)
{
    int bad = 0;
    int32_t mine = rank, *all = calloc((size_t)n_kept, sizeof(*all));
    if (mnnvl_comm_size(child) != n_kept) {
        fprintf(stderr, "rank %d: the shrunk communicator has %d ranks, expected %d\n", rank,
                mnnvl_comm_size(child), n_kept);
        bad = 1;
    }
    bad = bad || mt_fail(mnnvl_comm_allgather(child, &mine, all, sizeof(mine)), rank,
                         "allgather on the shrunk communicator");
    for (int c = 0; !bad && c < n_kept; c++) {
        if (all[c] != kept[c] || (kept[c] == rank && mnnvl_comm_rank(child) != c)) {
            fprintf(stderr,
                    "rank %d (child rank %d): child rank %d holds parent rank %d, "
                    "expected %d\n",
                    rank, mnnvl_comm_rank(child), c, all[c], kept[c]);
            bad = 1;
        }
    }
    bad = bad || mt_fail(mnnvl_comm_barrier(child), rank, "barrier on the shrunk communicator");
    free(all);
    return bad;
}

int bk_shrink_killed(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    mnnvl_comm_t comm = NULL;
    if (settle(t, "shrink", rank, size, &comm))
        return 1;
    int dead = size - 1;
    if (rank == dead)
        raise(SIGKILL);
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    if (st != MNNVL_ERR_TIMEOUT && st != MNNVL_ERR_PEER_LOST) {
        fprintf(stderr,
                "rank %d: the barrier after rank %d died returned %s, expected "
                "TIMEOUT or PEER_LOST\n",
                rank, dead, mnnvl_status_string(st));
        return 1;
    }
    int kept[64];
    for (int r = 0; r < dead; r++)
        kept[r] = r;
    mnnvl_comm_t child = NULL;
    uint64_t start = mnnvl_now_ms();
    int bad = mt_fail(mnnvl_comm_shrink(comm, &dead, 1, &child), rank, "comm_shrink");
    int took = (int)(mnnvl_now_ms() - start);
    bad = bad || check_shrunk(child, rank, kept, dead);
    /* Well within the timeout: nobody waited for the dead rank. */
    if (!bad && took > t->timeout_ms) {
        fprintf(stderr, "rank %d: comm_shrink took %d ms, more than timeout_ms %d\n", rank, took,
                t->timeout_ms);
        bad = 1;
    }
    /* A child of the child (nothing excluded): backends must keep what builds children. */
    mnnvl_comm_t again = NULL;
    bad = bad || mt_fail(mnnvl_comm_shrink(child, NULL, 0, &again), rank, "second comm_shrink");
    bad = bad || check_shrunk(again, rank, kept, dead);
    mnnvl_comm_destroy(again);
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
    return bad;
}

int bk_shrink_alive(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    mnnvl_comm_t comm = NULL;
    if (settle(t, "shrink_alive", rank, size, &comm))
        return 1;
    /* Rank 1 is dropped while alive and stays out: it only destroys its communicator. */
    int dropped = size > 1 ? 1 : -1;
    int bad = 0;
    if (rank != dropped && dropped >= 0) {
        int kept[64], n = 0;
        for (int r = 0; r < size; r++)
            if (r != dropped)
                kept[n++] = r;
        mnnvl_comm_t child = NULL;
        bad = mt_fail(mnnvl_comm_shrink(comm, &dropped, 1, &child), rank, "comm_shrink");
        bad = bad || check_shrunk(child, rank, kept, n);
        mnnvl_comm_destroy(child);
    }
    mnnvl_comm_destroy(comm);
    return bad;
}

int bk_shrink_mismatch(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    mnnvl_comm_t comm = NULL;
    if (size != 4) {
        fprintf(stderr, "shrink_mismatch needs 4 ranks\n");
        return 1;
    }
    if (settle(t, "shrink_mismatch", rank, size, &comm))
        return 1;
    if (rank == 3)
        raise(SIGKILL);
    /* Rank 0 wrongly drops rank 2 instead of the dead rank 3: every survivor still gets a
     * distinct child rank of 3, so the child forms, and the lists are compared on it. */
    int exclude = rank == 0 ? 2 : 3;
    mnnvl_comm_t child = NULL;
    mnnvl_status_t st = mnnvl_comm_shrink(comm, &exclude, 1, &child);
    int bad = 0;
    if (st != MNNVL_ERR_MISMATCH || child) {
        fprintf(stderr,
                "rank %d: comm_shrink with different exclude lists returned %s (%s), "
                "expected MISMATCH and no communicator\n",
                rank, mnnvl_status_string(st), mnnvl_last_error());
        bad = 1;
    } else {
        fprintf(stderr, "rank %d: %s\n", rank, mnnvl_last_error());
    }
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
    return bad;
}

int bk_wrong_key(int rank, int size, void *target)
{
    bk_target_t t = *(const bk_target_t *)target;
    char right[sizeof(t.job_key)];
    snprintf(right, sizeof(right), "%s", t.job_key);
    if (rank == size - 1)
        t.job_key[0] = t.job_key[0] == 'x' ? 'y' : 'x';
    uint64_t start = mnnvl_now_ms();
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = create(&t, "wrong_key", rank, size, &comm);
    int waited = (int)(mnnvl_now_ms() - start);
    const char *why = mnnvl_last_error();
    int edge = rank == 0 || rank == size - 1;
    int bad = 0;
    if (st == MNNVL_SUCCESS) {
        fprintf(stderr, "rank %d: comm_create succeeded although rank %d has another job key\n",
                rank, size - 1);
        mnnvl_comm_destroy(comm);
        return 1;
    }
    if (st != MNNVL_ERR_AUTH && (edge || (st != MNNVL_ERR_PEER_LOST && st != MNNVL_ERR_TIMEOUT))) {
        fprintf(stderr, "rank %d: comm_create returned %s (%s), expected AUTH%s\n", rank,
                mnnvl_status_string(st), why, edge ? "" : ", PEER_LOST or TIMEOUT");
        bad = 1;
    }
    if (edge && !strstr(why, "job key") && !strstr(why, "job_key")) {
        fprintf(stderr, "rank %d: the sentence does not say that the job keys differ: %s\n", rank,
                why);
        bad = 1;
    }
    if (strstr(why, right + 1)) { /* both keys share everything after the first byte */
        fprintf(stderr, "rank %d: the sentence shows the job key: %s\n", rank, why);
        bad = 1;
    }
    /* The others may only learn it from rank 0's ABORT, or not at all when they came after
     * rank 0 gave up. */
    if (edge ? waited > t.timeout_ms / 2 : waited > t.timeout_ms + KILL_GRACE_S * 1000) {
        fprintf(stderr, "rank %d: the refusal took %d ms of timeout_ms %d: not at once\n", rank,
                waited, t.timeout_ms);
        bad = 1;
    }
    if (!bad)
        fprintf(stderr, "rank %d: after %d ms: %s: %s\n", rank, waited, mnnvl_status_string(st),
                why);
    return bad;
}

/* ---------------------------------------------------------------------------------------- */
/* Liveness                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* How long a survivor looks at its record at most (the bounds under test are shorter). */
#define LIVENESS_LOOK_MS 10000
/* How long the graceful scenario watches for a wrong report: longer than any backend takes
 * to find a death. */
#define GRACEFUL_WATCH_MS 2000
/* How long the last survivor of a liveness scenario watches the others leave. */
#define AFTER_WATCH_MS 1000

/* Polls comm's record until it holds `want` ranks or `until` passed (mnnvl_now_ms time);
 * the list into `list`, its length returned (-1: the call failed). */
static int await_record(mnnvl_comm_t comm, int rank, int want, uint64_t until,
                        mnnvl_rank_failure_t *list, int capacity)
{
    int count = 0;
    for (;;) {
        if (mt_fail(mnnvl_comm_failed_ranks(comm, list, capacity, &count), rank, "failed_ranks"))
            return -1;
        if (count >= want || mnnvl_now_ms() >= until)
            return count;
        usleep(2000); /* a poll of the record, not a wait for an event */
    }
}

/* Nothing failed yet, and mnnvl_comm_failed_ranks checks its arguments. */
static int check_clean_record(mnnvl_comm_t comm, int rank)
{
    int count = -1;
    mnnvl_rank_failure_t list[1];
    if (mt_fail(mnnvl_comm_failed_ranks(comm, list, 1, &count), rank, "failed_ranks") ||
        count != 0 ||
        mnnvl_comm_failed_ranks(comm, NULL, 1, &count) != MNNVL_ERR_INVALID_ARGUMENT ||
        mnnvl_comm_failed_ranks(comm, list, -1, &count) != MNNVL_ERR_INVALID_ARGUMENT ||
        mnnvl_comm_failed_ranks(comm, NULL, 0, &count) != MNNVL_SUCCESS || count != 0) {
        fprintf(stderr, "rank %d: failed ranks before any fault, or wrong argument checks\n", rank);
        return 1;
    }
    return 0;
}

/* The record of `what` must list exactly the ranks in dead[] (n, ascending), reason
 * CONNECTION, recorded at or after wall_ms (mnnvl_wall_ms) and within bound_ms of t0. */
static int check_record(mnnvl_comm_t comm, int rank, const char *what, const int *dead, int n,
                        uint64_t t0, int64_t wall_ms, int bound_ms)
{
    mnnvl_rank_failure_t list[8];
    int count = await_record(comm, rank, n, t0 + LIVENESS_LOOK_MS, list, 8);
    int took = (int)(mnnvl_now_ms() - t0);
    if (count < 0)
        return 1;
    int bad = count != n || took > bound_ms;
    for (int i = 0; !bad && i < n; i++)
        bad = list[i].rank != dead[i] || list[i].reason != MNNVL_FAILURE_CONNECTION ||
              list[i].since_ms < wall_ms - 50 || list[i].since_ms > wall_ms + took + 50;
    fprintf(stderr, "rank %d: %s: %d of %d deaths recorded after %d ms (bound %d ms)%s\n", rank,
            what, count, n, took, bound_ms, bad ? ": WRONG" : "");
    for (int i = 0; bad && i < count && i < 8; i++)
        fprintf(stderr, "rank %d:   entry %d: rank %d, reason %d, %lld ms after the barrier\n",
                rank, i, list[i].rank, (int)list[i].reason,
                (long long)(list[i].since_ms - wall_ms));
    return bad;
}

int bk_liveness(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    int first = bk_scenario_rank(t->scenario, "first", size);
    int second = bk_scenario_rank(t->scenario, "second", size);
    /* A child has its own links and watcher; when rank 0 dies, tcp's child cannot tell
     * (its root lived in rank 0's process). */
    int with_child = first != 0;
    mnnvl_comm_t comm = NULL, child = NULL;
    if (mt_fail(create_settled(t, t->scenario, rank, size, &comm), rank, "comm_create") ||
        (with_child && mt_fail(mnnvl_comm_shrink(comm, NULL, 0, &child), rank, "comm_shrink")) ||
        check_clean_record(comm, rank) ||
        (child && mt_fail(mnnvl_comm_barrier(child), rank, "barrier on the child")) ||
        mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    uint64_t t0 = mnnvl_now_ms();
    int64_t wall_ms = mnnvl_wall_ms();
    if (rank == first)
        raise(SIGKILL);
    if (rank == second) {
        mnnvl_rank_failure_t seen;
        if (await_record(comm, rank, 1, t0 + LIVENESS_LOOK_MS, &seen, 1) != 1) {
            fprintf(stderr, "rank %d: the first death was not recorded\n", rank);
            return 1;
        }
        raise(SIGKILL);
    }
    int n = second >= 0 ? 2 : 1;
    int dead[2] = {first < second || n == 1 ? first : second, first < second ? second : first};
    int bad = check_record(comm, rank, "communicator", dead, n, t0, wall_ms, n * t->liveness_ms);
    if (child)
        bad |= check_record(child, rank, "child", dead, n, t0, wall_ms, n * t->liveness_ms);
    mnnvl_status_t st = mnnvl_comm_barrier(comm);
    if (st != MNNVL_ERR_PEER_LOST) {
        fprintf(stderr, "rank %d: the barrier after the deaths returned %s\n", rank,
                mnnvl_status_string(st));
        bad = 1;
    }
    /* The other survivors leave now, after that failure, and gracefully: the lowest one
     * stays a while and must not record them as dead. */
    int keeper = 0;
    while (keeper == first || keeper == second)
        keeper++;
    if (rank == keeper) {
        mnnvl_rank_failure_t list[8];
        int count = await_record(comm, rank, n + 1, mnnvl_now_ms() + AFTER_WATCH_MS, list, 8);
        if (count != n) {
            fprintf(stderr, "rank %d: %d deaths recorded once the other survivors left, not %d\n",
                    rank, count, n);
            bad = 1;
        }
    }
    mnnvl_comm_destroy(child);
    mnnvl_comm_destroy(comm);
    return bad;
}

int bk_graceful(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    int leaver = bk_scenario_rank(t->scenario, "leaver", size);
    mnnvl_comm_t comm = NULL;
    if (mt_fail(create_settled(t, t->scenario, rank, size, &comm), rank, "comm_create") ||
        mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    if (rank == leaver) {
        /* tcp's rank 0 waits for the others' leaving (its root serves them), not for their
         * timeout. */
        uint64_t t0 = mnnvl_now_ms();
        mnnvl_comm_destroy(comm);
        int took = (int)(mnnvl_now_ms() - t0);
        if (took > GRACEFUL_WATCH_MS + KILL_GRACE_S * 1000) {
            fprintf(stderr, "rank %d: destroy took %d ms\n", rank, took);
            return 1;
        }
        return 0; /* and the process ends: its connections close */
    }
    mnnvl_rank_failure_t list[8];
    int count = await_record(comm, rank, 1, mnnvl_now_ms() + GRACEFUL_WATCH_MS, list, 8);
    if (count > 0)
        fprintf(stderr,
                "rank %d: rank %d recorded as failed (reason %d) after rank %d left "
                "gracefully\n",
                rank, list[0].rank, (int)list[0].reason, leaver);
    mnnvl_comm_destroy(comm);
    return count != 0;
}

int bk_measure(int rank, int size, void *target)
{
    const bk_target_t *t = target;
    uint64_t start = mnnvl_now_ms();
    mnnvl_comm_t comm = NULL;
    if (mt_fail(create(t, "measure", rank, size, &comm), rank, "comm_create"))
        return 1;
    uint64_t created = mnnvl_now_ms();
    uint8_t mine[64];
    memset(mine, rank, sizeof(mine));
    uint8_t *all = malloc(sizeof(mine) * (size_t)size);
    int bad = mt_fail(mnnvl_comm_allgather(comm, mine, all, sizeof(mine)), rank, "allgather") ||
              mt_fail(mnnvl_comm_barrier(comm), rank, "barrier");
    uint64_t done = mnnvl_now_ms();
    if (!bad && rank == 0)
        printf("%s: %d ranks: comm_create %llu ms, allgather(64 B) + barrier %llu ms\n", t->backend,
               size, (unsigned long long)(created - start), (unsigned long long)(done - created));
    free(all);
    mnnvl_comm_destroy(comm);
    return bad;
}

#define NONE (-1)
#define LAST (-2) /* the last rank */

/* The scenarios by name, with the ranks that play a part in them. */
static const struct {
    const char *name;
    bk_scenario_fn fn;
    int first, second; /* ranks that kill themselves: at once, and after the first died */
    int leaver;        /* the rank that leaves gracefully */
} scenarios[] = {
    {"collectives", bk_collectives, NONE, NONE, NONE},
    {"many", bk_many_comms, NONE, NONE, NONE},
    {"killed", bk_killed_rank, LAST, NONE, NONE},
    {"wrong_key", bk_wrong_key, NONE, NONE, NONE},
    {"measure", bk_measure, NONE, NONE, NONE},
    {"shrink", bk_shrink_killed, LAST, NONE, NONE},
    {"shrink_alive", bk_shrink_alive, NONE, NONE, NONE},
    {"shrink_mismatch", bk_shrink_mismatch, LAST, NONE, NONE},
    {"liveness", bk_liveness, LAST, NONE, NONE},
    {"liveness_root", bk_liveness, 0, NONE, NONE},
    {"liveness_two", bk_liveness, LAST, 1, NONE},
    {"graceful", bk_graceful, NONE, NONE, LAST},
    {"graceful_root", bk_graceful, NONE, NONE, 0},
};

static int scenario_index(const char *name)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (strcmp(name, scenarios[i].name) == 0)
            return (int)i;
    return -1;
}

bk_scenario_fn bk_scenario(const char *name)
{
    int i = scenario_index(name);
    return i < 0 ? NULL : scenarios[i].fn;
}

int bk_scenario_rank(const char *name, const char *part, int size)
{
    int i = scenario_index(name);
    if (i < 0)
        return NONE;
    int r = strcmp(part, "first") == 0    ? scenarios[i].first
            : strcmp(part, "second") == 0 ? scenarios[i].second
                                          : scenarios[i].leaver;
    return r == LAST ? size - 1 : r;
}

int bk_victim(const char *name, int rank, int size)
{
    return rank == bk_scenario_rank(name, "first", size) ||
           rank == bk_scenario_rank(name, "second", size);
}

int bk_run_scenario(const char *name, int rank, int size, bk_target_t *t)
{
    bk_scenario_fn fn = bk_scenario(name);
    snprintf(t->scenario, sizeof(t->scenario), "%s", name);
    return fn ? fn(rank, size, t) : -1;
}
