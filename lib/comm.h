#ifndef MNNVL_COMM_H
#define MNNVL_COMM_H

/* The communicator's functions for the layers above it (memory, operations); its struct is
 * in comm_state.h, which the layers below it (device, barrier, mappings) read. */
#include "agree.h"
#include "comm_state.h"
#include "mnnvl.h"

/* Entry check of every call on a communicator: INVALID_ARGUMENT for NULL, ABORTED once the
 * communicator was aborted or a kernel reported an error. */
mnnvl_status_t mnnvl_comm_check(mnnvl_comm_t comm, const char *what);

/* Makes the outcome of a local step collective over the communicator's ranks: mnnvl_agree
 * (agree.h) on its bootstrap. Collective. */
static inline mnnvl_status_t mnnvl_comm_agree(mnnvl_comm_t comm, mnnvl_status_t local,
                                              const char *what)
{
    return mnnvl_agree(comm->bs, local, what);
}

void mnnvl_comm_retain(mnnvl_comm_t comm);

/* Builds the communicator of `child` (members decided by the caller, see bootstrap.h) over
 * the parent's backend, with the parent's device and configuration and the device setup of
 * mnnvl_comm_create. `verify` (may be NULL) runs on the child's bootstrap before the device
 * setup; its failure destroys the child. Collective over the members only. */
mnnvl_status_t mnnvl_comm_child(mnnvl_comm_t parent, const mnnvl_bootstrap_child_t *child,
                                mnnvl_status_t (*verify)(mnnvl_bootstrap_t *bs, void *arg),
                                void *arg, mnnvl_comm_t *out);

#endif
