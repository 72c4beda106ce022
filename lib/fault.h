/* Fault tolerance, host side (lib/fault.c): the communicator's record of dead ranks, the
 * liveness watcher that feeds it from the bootstrap, the device mask the fault-tolerant
 * kernels read (kernels/fault.cuh), and the rules by which a PEER_LOST async error leaves the
 * communicator usable for fault-tolerant operations. comm.c calls setup, teardown and the two
 * check helpers; the operations call the rest. */
#ifndef MNNVL_FAULT_H
#define MNNVL_FAULT_H

#include "comm.h"
#include "kernels/launch.h"
#include "op.h"

typedef struct mnnvl_fault_state mnnvl_fault_state_t;

/* Sets up comm->fault after the device side (when there is one): the dead-rank record, the
 * device mask, and the watcher thread when the bootstrap has liveness (poll_lost) and the
 * communicator more than one rank. Local. Never fails the communicator: without memory or a
 * thread it logs why and goes on without (fault-tolerant creates then refuse, or only the
 * per-peer bound applies). */
void mnnvl_fault_setup(mnnvl_comm_t comm);

/* Stops the watcher (before the bootstrap is destroyed) and frees comm->fault. NULL-safe. */
void mnnvl_fault_teardown(mnnvl_comm_t comm);

/* 1 when `async` is an async error that leaves the communicator usable (PEER_LOST, written
 * by the watcher or a fault-tolerant kernel), so mnnvl_comm_check must not abort it. */
int mnnvl_fault_tolerated(mnnvl_comm_t comm, mnnvl_status_t async);

/* The status of a call without fault tolerance on a communicator that lost a rank:
 * PEER_LOST with a sentence naming the dead ranks and `what`. */
mnnvl_status_t mnnvl_fault_refuse(mnnvl_comm_t comm, const char *what);

/* The async error sentence of a PEER_LOST record {op, peer} (device.c's describer). */
mnnvl_status_t mnnvl_fault_describe(mnnvl_comm_t comm, const char *op_name, int op, int peer);

/* The create-time check of an operation's fault fields: fault_tolerant 0 or 1, peer_timeout_ms
 * >= 0 (0: the config key), at most MNNVL_FT_MAX_RANKS ranks and a device mask. Writes the
 * bound in effect into *peer_timeout_ms (0 when not fault-tolerant), for the cache key.
 * Local. INVALID_ARGUMENT, NO_MEMORY. */
mnnvl_status_t mnnvl_fault_params(mnnvl_comm_t comm, int fault_tolerant, int *peer_timeout_ms,
                                  const char *what);

/* The entry check of every call of an operation handle: mnnvl_op_enter without fault
 * tolerance; with it the same, except that a PEER_LOST async error lets the call through. */
mnnvl_status_t mnnvl_fault_op_enter(const mnnvl_op_handle_t *op, int fault_tolerant,
                                    const char *what, const char *name);

/* Fills the fault fields of a kernel's wait parameters: the device mask and the per-peer
 * bound for a fault-tolerant operation (peer_timeout_ms as mnnvl_fault_params wrote it),
 * NULL and 0 otherwise (the kernels without fault tolerance run). */
void mnnvl_fault_wait_args(mnnvl_comm_t comm, int fault_tolerant, int peer_timeout_ms,
                           mnnvl_wait_params_t *wait);

/* Records `rank` as dead for `reason` (MNNVL_DEAD_*) if it is not yet: the host record, the
 * control block's byte, and PEER_LOST in the async error word when it is empty. Local;
 * thread-safe. What the watcher calls; exposed for the unit tests of the bookkeeping. */
void mnnvl_fault_note(mnnvl_comm_t comm, int rank, int reason);

#endif
