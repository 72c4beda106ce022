/* The only door between lib/ and kernels/: plain structs and extern "C" launchers. Every
 * launcher enqueues on the given stream (a cudaStream_t as void *), never synchronizes, and
 * returns 0 or the cudaError_t of the launch. The limits the public API states (mnnvl.h's
 * MNNVL_MOE_MAX_*, MNNVL_DCP_MAX_*) are used from there, not mirrored; the constants that
 * only the protocols define (MNNVL_INLINE_PEERS, MNNVL_DCP_CHANNELS) are defined here. */
#ifndef MNNVL_KERNELS_LAUNCH_H
#define MNNVL_KERNELS_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "mnnvl.h"

#ifdef __CUDACC__
#define MNNVL_HOST_DEVICE __host__ __device__
#else
#define MNNVL_HOST_DEVICE
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Which operation recorded an async error. */
typedef enum mnnvl_op {
    MNNVL_OP_NONE = 0,
    MNNVL_OP_DEVICE_BARRIER = 1,
    MNNVL_OP_ALLREDUCE = 2,
    MNNVL_OP_MOE_DISPATCH = 3,
    MNNVL_OP_MOE_COMBINE = 4,
    MNNVL_OP_DCP_A2A = 5,
    MNNVL_OP_DCP_LSE_REDUCE = 6,
    MNNVL_OP_LIVENESS = 7 /* the host's liveness watcher (lib/fault.c), not a kernel */
} mnnvl_op_t;

/* Fault tolerance (lib/fault.c, kernels/fault.cuh): the most ranks a fault-tolerant
 * operation's communicator may have (one bit each in the device mask; mirrors mnnvl.h's
 * MNNVL_FT_MAX_RANKS), and why a rank was marked dead (the byte the marker writes into
 * mnnvl_device_control_t.dead; the values of mnnvl_failure_reason_t). */
#define MNNVL_FT_RANKS 64
enum { MNNVL_DEAD_CONNECTION = 1, MNNVL_DEAD_PEER_TIMEOUT = 2 };

/* A communicator's control block, in host memory mapped into the device, so the host reads
 * it without synchronizing and a kernel stuck on a dead peer can be told to stop.
 * `error` packs one record into a single 64-bit word so that a reader never sees half of
 * two writers' records: bits 0-7 the negated mnnvl_status_t, 8-15 the mnnvl_op_t, 32-63
 * the peer. 0 means no error; the first writer wins (kernels check before writing). */
typedef struct mnnvl_device_control {
    uint64_t error;
    int32_t abort; /* set by the host (mnnvl_comm_abort) */
    int32_t pad;
    /* Dead ranks, one byte each (0 alive, else an MNNVL_DEAD_* reason), written by the host's
     * liveness watcher and by fault-tolerant kernels that gave up on a peer: plain byte
     * stores, so two writers never lose each other's update (no atomics on host memory). */
    uint8_t dead[MNNVL_FT_RANKS];
} mnnvl_device_control_t;

static inline MNNVL_HOST_DEVICE uint64_t mnnvl_error_pack(int status, int op, int peer)
{
    return (uint64_t)(uint8_t)(-status) | (uint64_t)(uint8_t)op << 8 |
           (uint64_t)(uint32_t)peer << 32;
}

static inline MNNVL_HOST_DEVICE void mnnvl_error_unpack(uint64_t word, int *status, int *op,
                                                        int *peer)
{
    *status = -(int)(word & 0xff);
    *op = (int)(word >> 8 & 0xff);
    *peer = (int)(int32_t)(word >> 32);
}

/* What every waiting kernel needs to give up cleanly. */
typedef struct mnnvl_wait_params {
    mnnvl_device_control_t *control; /* device address of the control block */
    uint64_t timeout_ns;
    /* Fault tolerance, read only by the fault-tolerant instantiations (kernels/fault.cuh):
     * the communicator's device-resident mask of dead ranks (bit r: rank r), NULL when the
     * operation is not fault-tolerant, and the per-peer bound. Last, so that the other
     * instantiations see every field they use at the offsets they always had. */
    unsigned long long *dead;
    uint64_t peer_timeout_ns;
} mnnvl_wait_params_t;

/* Barrier across the ranks of a communicator. `signals` is the communicator's symmetric
 * signal area: rank p's flags start at signals + p*stride, one uint32_t per source rank;
 * `epoch` is this rank's barrier counter in device memory (so graph replays advance it). */
typedef struct mnnvl_barrier_args {
    char *signals;
    size_t stride;
    uint32_t *epoch;
    int rank;
    int size;
    mnnvl_wait_params_t wait;
} mnnvl_barrier_args_t;

int mnnvl_launch_barrier(const mnnvl_barrier_args_t *args, void *stream);

/* Each kernel file's loader: loads every kernel the file may launch, now instead of at its
 * first launch (kernels/load.cuh says why), on the current device. Returns 0 or the first
 * cudaError_t. lib/device.c calls every one when a communicator is created. */
int mnnvl_load_barrier_kernels(void);
int mnnvl_load_reset_kernels(void);
int mnnvl_load_allreduce_kernels(void);
int mnnvl_load_moe_kernels(void);
int mnnvl_load_dcp_kernels(void);

/* Resets of protocol state (kernels/reset.cu), launched by lib/ when an operation is set up,
 * so that what "empty" means stays with the kernels that poll for it. */

/* Fills `bytes` at `buf` with the Lamport empty mark of `dtype` (mnnvl_dtype_t): the element
 * type's negative zero, the value all-reduce's buffers start from. `bytes` is a multiple of
 * the element size and `buf` aligned to it. */
int mnnvl_launch_lamport_reset(void *buf, size_t bytes, int dtype, void *stream);

/* Zeroes `bytes` at `buf`: flags, counters and control blocks, whose reset value is 0. */
int mnnvl_launch_zero_reset(void *buf, size_t bytes, void *stream);

/* All-reduce protocol state in device memory, one set per protocol (one-shot and two-shot
 * never share a counter: switching between them must not desynchronise either). */
typedef struct mnnvl_allreduce_control {
    uint32_t epoch;   /* the buffer in use is epoch % 3 */
    uint32_t arrived; /* blocks done with this call; the last one advances epoch */
} mnnvl_allreduce_control_t;

/* One all-reduce launch: at most one workspace-sized chunk. Sizes are in 16-byte vectors.
 * Workspace of rank p (peers[p], as mapped on this GPU):
 *   one-shot buffer b (b = epoch % 3): [size source ranks][oneshot_slot_vectors]
 *   two-shot buffer b: A = [size source ranks][twoshot_part_vectors], then
 *                      B = [size * twoshot_part_vectors] (the whole reduced message) */
/* Up to this many ranks, the workspace bases travel in the kernel's parameters: reading them
 * from a device table would put a dependent load before the first store. */
#define MNNVL_INLINE_PEERS 16

typedef struct mnnvl_allreduce_args {
    int dtype; /* mnnvl_dtype_t */
    int rank;
    int size;
    int twoshot;
    char *const *peers;                     /* device array of `size` workspace bases */
    char *inline_peers[MNNVL_INLINE_PEERS]; /* the same, when size <= MNNVL_INLINE_PEERS */
    size_t oneshot_offset;
    size_t oneshot_slot_vectors;
    size_t twoshot_offset;
    size_t twoshot_part_vectors;        /* capacity of one rank's share */
    mnnvl_allreduce_control_t *control; /* this protocol's control, device memory */
    const void *in;
    void *out;
    size_t count; /* elements in this chunk */
    /* Fused residual + RMSNorm (rows of `hidden` elements) when residual_out != NULL. */
    const void *residual_in;
    const void *gamma;
    void *residual_out;
    void *norm_out;
    size_t hidden;
    float eps;
    int weight_bias;
    int sm_count; /* the grid never exceeds what is co-resident on this many SMs */
    mnnvl_wait_params_t wait;
} mnnvl_allreduce_args_t;

int mnnvl_launch_allreduce(const mnnvl_allreduce_args_t *args, void *stream);

/* MoE all-to-all, within mnnvl.h's MNNVL_MOE_MAX_* limits. */

/* The first expert rank r owns (r = ep_size gives num_experts): the kernels' routing rule,
 * which the host may read too. */
static inline MNNVL_HOST_DEVICE int mnnvl_moe_first_expert(int rank, int num_experts, int ep_size)
{
    int base = num_experts / ep_size, extra = num_experts % ep_size;
    return rank * base + (rank < extra ? rank : extra);
}

/* Local (not symmetric) device state of one all-to-all. */
typedef struct mnnvl_moe_control {
    uint32_t dispatch_epoch;
    uint32_t combine_epoch;
    uint32_t dispatch_arrived; /* blocks done; the last one signals the peers */
    uint32_t combine_arrived;
    int32_t send_counts[MNNVL_MOE_MAX_RANKS]; /* tokens this rank sends to each rank */
} mnnvl_moe_control_t;

typedef struct mnnvl_moe_args {
    int rank;
    int ep_size;
    int num_experts;
    int top_k;
    int tokens; /* local_num_tokens of this call */
    int r;      /* runtime max tokens per rank (row pitch of a source's block) */
    int max_tokens;
    char *peers[MNNVL_MOE_MAX_RANKS]; /* every rank's workspace base as mapped here */
    /* Workspace layout (byte offsets), planned by the host (mnnvl_moe_layout_t). */
    size_t dispatch_flags, combine_flags, recv_counts, recv_r;
    int num_payloads;
    size_t payload_offset[MNNVL_MOE_MAX_PAYLOADS];
    size_t payload_bytes[MNNVL_MOE_MAX_PAYLOADS];
    size_t combine_offset;
    size_t combine_row_bytes;
    int combine_dtype; /* mnnvl_dtype_t */
    /* Per call. */
    const int32_t *experts; /* [tokens, top_k] */
    const void *payload_src[MNNVL_MOE_MAX_PAYLOADS];
    const void *expert_out; /* combine staging source, or NULL */
    void *out;              /* combine output [tokens, hidden] */
    int sanitize_index;
    /* Routing of this rank's tokens, written by dispatch and read by combine: token t goes
     * to route_n[t] ranks, route_dest[t*top_k + j] (ascending), at route_slot[...]. */
    int8_t *route_dest;
    int32_t *route_slot;
    uint8_t *route_n;
    mnnvl_moe_control_t *control;
    int sm_count;
    mnnvl_wait_params_t wait;
    /* Fault-tolerant combine only: lost[t] = 1 when token t missed the contribution of a
     * dead rank, else 0 (local device memory, [max_tokens]). */
    uint8_t *lost;
} mnnvl_moe_args_t;

int mnnvl_launch_moe_dispatch(const mnnvl_moe_args_t *args, void *stream);
int mnnvl_launch_moe_sanitize(const mnnvl_moe_args_t *args, void *stream);
int mnnvl_launch_moe_combine(const mnnvl_moe_args_t *args, void *stream);

/* Decode-context-parallel all-to-all, for up to mnnvl.h's MNNVL_DCP_MAX_RANKS ranks.
 * A call runs `channels` blocks; block c moves the entries e with e % channels == c, to and
 * from every rank, and never waits on another block of its own rank.
 *
 * Workspace of rank r (peers[r]), parity b = epoch & 1 of the call:
 *   flags at flags_offset: uint64 [2][cp_size][MNNVL_DCP_CHANNELS], flag [b][p][c] written
 *     by rank p's block c: (epoch << 32) | entries of p's call
 *   slots at data_offset:  [2][cp_size][max_entries] rows of row_vectors 16-byte vectors:
 *     row [b][p][e] holds p's partial_o[e, r, :] (o_vectors), then its stats[e, r, :]
 *     (stats_lanes fp32, zero-padded to 16 bytes) */
#define MNNVL_DCP_CHANNELS 64

/* Device-local state of one handle: each channel counts its own calls. */
typedef struct mnnvl_dcp_control {
    uint32_t epoch[MNNVL_DCP_CHANNELS];
} mnnvl_dcp_control_t;

typedef struct mnnvl_dcp_args {
    int rank;
    int cp_size;
    int channels;  /* blocks of every call, equal on every rank */
    int dtype;     /* mnnvl_dtype_t: FP16 or BF16 */
    int lse_base2; /* 1: base-2 LSE */
    int reduce;    /* 0: transpose into out_o/out_stats; 1: merge into out/out_lse */
    int entries;   /* this call's entry count */
    int max_entries;
    int o_vectors; /* 16-byte vectors of one head_dim row */
    int stats_lanes;
    int row_vectors;                  /* of one receive slot: o_vectors + 1 or 2 for the stats */
    char *peers[MNNVL_DCP_MAX_RANKS]; /* every rank's workspace base as mapped here */
    size_t flags_offset;
    size_t data_offset;
    const void *in_o;      /* [entries, cp_size, head_dim] */
    const float *in_stats; /* [entries, cp_size, stats_lanes] */
    void *out_o; /* transpose: [entries, cp_size, head_dim]; reduce: [entries, head_dim] */
    float
        *out_stats; /* transpose: [entries, cp_size, stats_lanes]; reduce: LSE [entries] or NULL */
    mnnvl_dcp_control_t *control;
    mnnvl_wait_params_t wait;
} mnnvl_dcp_args_t;

int mnnvl_launch_dcp(const mnnvl_dcp_args_t *args, void *stream);

#ifdef __cplusplus
}
#endif

#endif
