/* The kernel side of fault tolerance: the wait that the fault-tolerant instantiations of the
 * MoE, all-reduce and DCP kernels use instead of mnnvl_wait_should_stop() (mnnvl_ft_wait), and
 * the marking of a dead rank.
 *
 * Only instantiations with the template switch FT = true include calls to these; with it
 * off, the kernels are the ones without fault tolerance, instruction for instruction (see
 * docs/fault-tolerance.md for how that is checked).
 *
 * Where the knowledge of a death lives:
 * - wait->dead: the communicator's mask in device memory (bit r: rank r is dead), read at
 *   the start of every launch (so a graph captured before a death skips the dead rank at its
 *   next replay) and set with atomicOr by a kernel that gave up on a peer;
 * - control->dead[r]: one byte per rank in the host-mapped control block, written by the
 *   host's liveness watcher (the bootstrap saw the connection drop) and by the kernels, read
 *   by the host (mnnvl_comm_failed_ranks) and, in the slow path of a wait, by the kernels.
 * So a rank the bootstrap lost is masked as soon as a kernel waits on it (the first slow-path
 * poll, microseconds), and a rank that merely stopped (SIGSTOP, a hung GPU) after the
 * per-peer bound.
 *
 * A death is final: the rank stays in the mask until the communicator is destroyed (the
 * survivors shrink it, see mnnvl_comm_failed_ranks). A marked rank that comes back is not
 * listened to, and its writes land only in regions the survivors no longer read. */
#ifndef MNNVL_FAULT_CUH
#define MNNVL_FAULT_CUH

#include "kernels/device_wait.cuh"

/* The mask as this launch starts: one load from device memory. */
static __device__ __forceinline__ unsigned long long mnnvl_ft_mask(const mnnvl_wait_params_t *p)
{
    return *(volatile unsigned long long *)p->dead;
}

/* The same, once per block: thread 0 loads it and a barrier hands it to every thread, so that
 * the threads of a block never disagree about who is dead (a rank marked meanwhile by
 * another block is seen by the waits). Call once per kernel, from every thread. */
static __device__ __forceinline__ unsigned long long
mnnvl_ft_block_mask(const mnnvl_wait_params_t *p)
{
    __shared__ unsigned long long mask;
    if (threadIdx.x == 0)
        mask = mnnvl_ft_mask(p);
    __syncthreads();
    return mask;
}

static __device__ __forceinline__ bool mnnvl_ft_is_dead(unsigned long long mask, int rank)
{
    return (mask >> rank & 1ull) != 0;
}

/* Lowest rank set in a non-empty mask. */
static __device__ __forceinline__ int mnnvl_ft_first(unsigned long long mask)
{
    return __ffsll((long long)mask) - 1;
}

/* Marks `peer` dead: the device mask, the host's byte (unless the watcher set it already,
 * with its reason), and PEER_LOST in the async error word when it holds nothing yet. */
static __device__ __forceinline__ void mnnvl_ft_mark_dead(const mnnvl_wait_params_t *p, int op,
                                                          int peer, int reason)
{
    atomicOr(p->dead, 1ull << peer);
    volatile uint8_t *byte = &p->control->dead[peer];
    if (*byte == 0)
        *byte = (uint8_t)reason;
    mnnvl_record_error(p->control, MNNVL_ERR_PEER_LOST, op, peer);
}

/* Records PEER_LOST against the lowest dead rank of `mask` (an operation that refuses to run
 * over fewer ranks, at its start). */
static __device__ __forceinline__ void mnnvl_ft_report(const mnnvl_wait_params_t *p, int op,
                                                       unsigned long long mask)
{
    mnnvl_record_error(p->control, MNNVL_ERR_PEER_LOST, op, mnnvl_ft_first(mask));
}

/* State of one fault-tolerant waiting thread. */
typedef struct mnnvl_ft_waiter {
    uint64_t start_ns; /* of the whole wait: timeout_ns counts from here */
    uint64_t peer_ns;  /* of the per-peer bound: restarts when another rank is marked */
    unsigned long long mask;
    uint32_t spins;
} mnnvl_ft_waiter_t;

static __device__ __forceinline__ mnnvl_ft_waiter_t mnnvl_ft_begin(const mnnvl_wait_params_t *p)
{
    const uint64_t now = mnnvl_globaltimer_ns();
    mnnvl_ft_waiter_t w = {now, now, mnnvl_ft_mask(p), 0};
    return w;
}

/* What a failed poll of a wait found (mnnvl_ft_look). */
enum {
    MNNVL_FT_WAIT = 0, /* nothing yet: keep polling */
    MNNVL_FT_GONE,     /* the peer, or with `any` some rank, is in the mask already */
    MNNVL_FT_DROPPED,  /* the host's byte: the bootstrap lost the peer's connection */
    MNNVL_FT_LATE,     /* the peer missed the per-peer bound */
    MNNVL_FT_ABORTED,  /* the communicator is being aborted */
    MNNVL_FT_FAILED,   /* another error (not PEER_LOST) is recorded already */
    MNNVL_FT_TIMED_OUT /* the whole wait ran past timeout_ns */
};

/* Looks at the communicator's state after a failed poll of a wait on `peer`, and changes
 * nothing but the waiter. `any`: the operation cannot finish without every rank
 * (all-reduce, DCP), so a death anywhere ends the wait. `scale`: the per-peer bound in units
 * of peer_timeout_ns, 2 for a wait on data that the peer sends only after it heard from every
 * rank (two-shot's second phase), so that the rank that held everybody up is the one marked,
 * not the peer it held up.
 *
 * The per-peer bound restarts whenever another rank was marked dead meanwhile: a live peer
 * that itself waited out the dead rank before it could signal is late by up to one bound,
 * and must not be marked for it. Like mnnvl_wait_should_stop, the host-mapped words and the
 * clock are read only every 256 polls. */
static __device__ __forceinline__ int
mnnvl_ft_look(const mnnvl_wait_params_t *p, mnnvl_ft_waiter_t *w, int peer, bool any, int scale)
{
    if ((++w->spins & 255u) != 0)
        return MNNVL_FT_WAIT;
    volatile mnnvl_device_control_t *control = p->control;
    if (control->abort)
        return MNNVL_FT_ABORTED;
    const uint64_t error = control->error;
    if (error != 0 && (int)(error & 0xff) != -MNNVL_ERR_PEER_LOST)
        return MNNVL_FT_FAILED;
    if (control->dead[peer] != 0)
        return MNNVL_FT_DROPPED;
    const unsigned long long mask = mnnvl_ft_mask(p);
    if (mnnvl_ft_is_dead(mask, peer) || (any && mask != 0))
        return MNNVL_FT_GONE;
    const uint64_t now = mnnvl_globaltimer_ns();
    if (mask != w->mask) {
        w->mask = mask;
        w->peer_ns = now;
    }
    if (now - w->peer_ns > (uint64_t)scale * p->peer_timeout_ns)
        return MNNVL_FT_LATE;
    if (now - w->start_ns > p->timeout_ns)
        return MNNVL_FT_TIMED_OUT;
    return MNNVL_FT_WAIT;
}

/* Acts on what mnnvl_ft_look found: marks the peer dead, or records why the operation
 * stops; nothing for a rank already in the mask or an error already recorded. */
static __device__ __forceinline__ void mnnvl_ft_settle(const mnnvl_wait_params_t *p, int op,
                                                       int peer, int found)
{
    switch (found) {
    case MNNVL_FT_DROPPED: mnnvl_ft_mark_dead(p, op, peer, MNNVL_DEAD_CONNECTION); break;
    case MNNVL_FT_LATE: mnnvl_ft_mark_dead(p, op, peer, MNNVL_DEAD_PEER_TIMEOUT); break;
    case MNNVL_FT_ABORTED: mnnvl_record_error(p->control, MNNVL_ERR_ABORTED, op, peer); break;
    case MNNVL_FT_TIMED_OUT: mnnvl_record_error(p->control, MNNVL_ERR_TIMEOUT, op, peer); break;
    default: break;
    }
}

/* The fault-tolerant wait on `peer`: polls `ready()` (true once the peer's data or flag is
 * there) until it holds, or until mnnvl_ft_look finds a reason to give up; true when it
 * arrived. See mnnvl_ft_look for `any` and `scale`.
 *
 * Before giving up it looks once more, after a fence: a peer can send and then die between
 * this thread's last poll and its look at the death (ranks that share a GPU time-slice, so a
 * thread can be off the GPU for milliseconds right there). What the peer sent before it died
 * is there by the time its death is known, and it counts: the peer is not marked, and no
 * other wait of an `any` operation gives up on account of it. */
template <typename Ready>
static __device__ __forceinline__ bool mnnvl_ft_wait(const mnnvl_wait_params_t *p, int op, int peer,
                                                     bool any, int scale, Ready ready)
{
    mnnvl_ft_waiter_t w = mnnvl_ft_begin(p);
    while (!ready()) {
        const int found = mnnvl_ft_look(p, &w, peer, any, scale);
        if (found == MNNVL_FT_WAIT)
            continue;
        __threadfence_system(); /* the death seen before the last look at the data */
        if (ready())
            return true;
        mnnvl_ft_settle(p, op, peer, found);
        return false;
    }
    return true;
}

#endif
