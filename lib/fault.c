/* Fault tolerance, host side: which ranks of a communicator are dead, since when and why;
 * the liveness watcher; mnnvl_comm_failed_ranks; the PEER_LOST rules of mnnvl_comm_check.
 * The device mask and the operations' entry check are in fault_device.c (CUDA builds).
 *
 * Where a death is recorded (see also kernels/fault.cuh):
 * - `dead`: one byte per rank (0 alive, else the MNNVL_DEAD_* reason), the control block's
 *   host-mapped bytes on a communicator with a device (so kernels read what the watcher
 *   wrote, and the watcher reads what kernels wrote, without any CUDA call), plain memory on
 *   a CPU-only one. Ranks beyond MNNVL_FT_RANKS have no byte (no fault-tolerant operation
 *   runs on such a communicator); the watcher still records them.
 * - `seen`: per rank, when this process first saw the death and why, under `lock`. Filled by
 *   note() (the watcher) and by scan() (a kernel wrote the byte), which the watcher runs
 *   every tick and mnnvl_comm_failed_ranks on every call.
 *
 * The watcher thread calls the bootstrap's poll_lost (tcp, ucx and ofi have it), the one
 * bootstrap call that may run beside the owner's calls (bootstrap/bootstrap.h); nothing else
 * of the bootstrap. It is
 * stopped and joined before the bootstrap is destroyed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "deadline.h"
#include "error.h"
#include "fault.h"
#include "fault_state.h"
#include "log.h"

/* How long one poll_lost call may wait: also the watcher's delay in noticing a stop. */
#define WATCH_POLL_MS 10
/* Most ranks one poll_lost call reports. */
#define WATCH_BATCH 64

static const char *reason_text(int reason)
{
    return reason == MNNVL_DEAD_CONNECTION
               ? "its connection dropped"
               : "it missed the per-peer bound of a fault-tolerant wait";
}

/* Enters a death into `seen` (under lock). 1 when it is new. */
static int remember(mnnvl_fault_state_t *f, int rank, int reason)
{
    if (f->seen[rank].reason != 0)
        return 0;
    f->seen[rank].reason = reason;
    f->seen[rank].since_ms = mnnvl_wall_ms();
    f->failed++;
    return 1;
}

/* Takes in the deaths kernels marked in the bytes (under lock). */
static void scan(mnnvl_comm_t comm, mnnvl_fault_state_t *f)
{
    for (int r = 0; r < f->byte_ranks; r++) {
        int reason = ((volatile uint8_t *)f->dead)[r];
        if (reason != 0 && remember(f, r, reason))
            MNNVL_WARN("rank %d: rank %d of the communicator is dead: %s", comm->rank, r,
                       reason_text(reason));
    }
}

void mnnvl_fault_note(mnnvl_comm_t comm, int rank, int reason)
{
    mnnvl_fault_state_t *f = comm->fault;
    if (!f || rank < 0 || rank >= comm->size || rank == comm->rank)
        return;
    pthread_mutex_lock(&f->lock);
    if (remember(f, rank, reason))
        MNNVL_WARN("rank %d: rank %d of the communicator is dead: %s", comm->rank, rank,
                   reason_text(reason));
    if (rank < f->byte_ranks && ((volatile uint8_t *)f->dead)[rank] == 0)
        ((volatile uint8_t *)f->dead)[rank] = (uint8_t)reason;
    /* Kernels without fault tolerance stop at once on it; fault-tolerant ones read it as
     * "look at the mask". The first record wins, as in kernels/device_wait.cuh. */
    if (f->error_word && *f->error_word == 0)
        *f->error_word = mnnvl_error_pack(MNNVL_ERR_PEER_LOST, MNNVL_OP_LIVENESS, rank);
    pthread_mutex_unlock(&f->lock);
}

static void *watch(void *arg)
{
    mnnvl_comm_t comm = arg;
    mnnvl_fault_state_t *f = comm->fault;
    int ranks[WATCH_BATCH];
    int live = 1; /* the bootstrap can still tell */
    while (!atomic_load(&f->stop)) {
        if (live) {
            int n = 0;
            mnnvl_status_t st =
                comm->bs->ops->poll_lost(comm->bs, WATCH_POLL_MS, ranks, WATCH_BATCH, &n);
            for (int i = 0; i < n && i < WATCH_BATCH; i++)
                mnnvl_fault_note(comm, ranks[i], MNNVL_DEAD_CONNECTION);
            if (st != MNNVL_SUCCESS) {
                live = 0;
                if (!atomic_load(&f->stop))
                    MNNVL_INFO("rank %d: the %s bootstrap can no longer tell which ranks are "
                               "alive (%s): only the per-peer bound of fault-tolerant "
                               "operations applies from now on",
                               comm->rank, comm->bs->ops->name, mnnvl_last_error());
            }
        } else {
            struct timespec pause = {0, WATCH_POLL_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        pthread_mutex_lock(&f->lock);
        scan(comm, f);
        pthread_mutex_unlock(&f->lock);
    }
    return NULL;
}

void mnnvl_fault_setup(mnnvl_comm_t comm)
{
    mnnvl_fault_state_t *f = calloc(1, sizeof(*f));
    mnnvl_rank_seen_t *seen = calloc((size_t)comm->size, sizeof(*seen));
    if (!f || !seen) {
        free(f);
        free(seen);
        MNNVL_WARN("rank %d: out of memory for the fault record: no liveness, and "
                   "fault-tolerant operations refuse to be created",
                   comm->rank);
        return;
    }
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->stop, 0);
    f->seen = seen;
    f->peer_timeout_ms = atoi(mnnvl_config_value(comm->config, "peer_timeout_ms"));
    f->byte_ranks = comm->size < MNNVL_FT_RANKS ? comm->size : MNNVL_FT_RANKS;
    f->dead = f->own_bytes;
    comm->fault = f;
    if (comm->dev)
        mnnvl_fault_device_setup(comm, f); /* the control block's bytes, the error word, mask */
    if (comm->size < 2 || !MNNVL_BOOTSTRAP_HAS_OP(comm->bs, poll_lost))
        return;
    if (pthread_create(&f->watcher, NULL, watch, comm) != 0) {
        MNNVL_WARN("rank %d: cannot start the liveness watcher thread: a dead rank is found "
                   "by the per-peer bound of fault-tolerant operations only",
                   comm->rank);
        return;
    }
    f->watching = 1;
}

void mnnvl_fault_teardown(mnnvl_comm_t comm)
{
    mnnvl_fault_state_t *f = comm->fault;
    if (!f)
        return;
    if (f->watching) {
        atomic_store(&f->stop, 1);
        pthread_join(f->watcher, NULL);
    }
    if (comm->dev)
        mnnvl_fault_device_teardown(comm, f);
    pthread_mutex_destroy(&f->lock);
    free(f->seen);
    free(f);
    comm->fault = NULL;
}

int mnnvl_fault_tolerated(mnnvl_comm_t comm, mnnvl_status_t async)
{
    return comm->fault && async == MNNVL_ERR_PEER_LOST;
}

/* The dead ranks as "2, 5" into buf, from the record; their number. */
static int list_failed(mnnvl_comm_t comm, char *buf, size_t len)
{
    mnnvl_fault_state_t *f = comm->fault;
    size_t at = 0;
    int n = 0;
    buf[0] = 0;
    pthread_mutex_lock(&f->lock);
    scan(comm, f);
    for (int r = 0; r < comm->size && at + 16 < len; r++) {
        if (f->seen[r].reason == 0)
            continue;
        at += (size_t)snprintf(buf + at, len - at, "%s%d", n ? ", " : "", r);
        n++;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

mnnvl_status_t mnnvl_fault_refuse(mnnvl_comm_t comm, const char *what)
{
    char who[256];
    int n = list_failed(comm, who, sizeof(who));
    return mnnvl_error(MNNVL_ERR_PEER_LOST,
                       "%s: rank %d's communicator lost %s%s; only fault-tolerant operations "
                       "run on it now: find the dead with mnnvl_comm_failed_ranks, shrink the "
                       "communicator to the survivors and create the operations again",
                       what, comm->rank,
                       n == 0   ? "a rank"
                       : n == 1 ? "rank "
                                : "ranks ",
                       who);
}

mnnvl_status_t mnnvl_fault_describe(mnnvl_comm_t comm, const char *op_name, int op, int peer)
{
    if (op == MNNVL_OP_LIVENESS)
        return mnnvl_error(MNNVL_ERR_PEER_LOST,
                           "rank %d: the bootstrap lost the connection to rank %d (it died or "
                           "left); see mnnvl_comm_failed_ranks",
                           comm->rank, peer);
    return mnnvl_error(MNNVL_ERR_PEER_LOST,
                       "%s: rank %d's fault-tolerant kernel found rank %d dead (its connection "
                       "dropped, or it missed peer_timeout_ms); see mnnvl_comm_failed_ranks",
                       op_name, comm->rank, peer);
}

mnnvl_status_t mnnvl_fault_params(mnnvl_comm_t comm, int fault_tolerant, int *peer_timeout_ms,
                                  const char *what)
{
    if (fault_tolerant != 0 && fault_tolerant != 1)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: fault_tolerant is %d; it must be 0 or 1", what, fault_tolerant);
    if (*peer_timeout_ms < 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: peer_timeout_ms is %d; it must be >= 0 (0: the config key "
                           "peer_timeout_ms)",
                           what, *peer_timeout_ms);
    if (!fault_tolerant) {
        *peer_timeout_ms = 0; /* meaningless then: handles that differ only in it are one */
        return MNNVL_SUCCESS;
    }
    if (comm->size > MNNVL_FT_MAX_RANKS)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: fault_tolerant needs a communicator of at most %d ranks, this "
                           "one has %d",
                           what, MNNVL_FT_MAX_RANKS, comm->size);
    if (!comm->fault || (comm->dev && !comm->fault->mask))
        return mnnvl_error(MNNVL_ERR_NO_MEMORY,
                           "%s: rank %d has no dead-rank mask (its allocation failed when the "
                           "communicator was created)",
                           what, comm->rank);
    if (*peer_timeout_ms == 0)
        *peer_timeout_ms = comm->fault->peer_timeout_ms;
    return MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_comm_failed_ranks(const mnnvl_comm_t comm,
                                                 mnnvl_rank_failure_t *failures, int capacity,
                                                 int *count)
{
    if (!comm || !count)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "comm_failed_ranks: comm or count is NULL");
    if (capacity < 0 || (capacity > 0 && !failures))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_failed_ranks: capacity %d with failures %p; it must be >= 0, "
                           "and failures non-NULL when it is > 0",
                           capacity, (void *)failures);
    *count = 0;
    mnnvl_fault_state_t *f = comm->fault;
    if (!f)
        return MNNVL_SUCCESS;
    pthread_mutex_lock(&f->lock);
    scan(comm, f);
    int n = 0;
    for (int r = 0; r < comm->size; r++) {
        if (f->seen[r].reason == 0)
            continue;
        if (n < capacity) {
            failures[n].rank = r;
            failures[n].reason = (mnnvl_failure_reason_t)f->seen[r].reason;
            failures[n].since_ms = f->seen[r].since_ms;
        }
        n++;
    }
    pthread_mutex_unlock(&f->lock);
    *count = n;
    return MNNVL_SUCCESS;
}
