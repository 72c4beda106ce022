#ifndef MNNVL_COMM_H
#define MNNVL_COMM_H

#include <stdatomic.h>

#include "agree.h"
#include "bootstrap/bootstrap.h"
#include "handle_cache.h"
#include "mnnvl.h"

typedef struct mnnvl_device_state mnnvl_device_state_t;

struct mnnvl_comm_s {
    atomic_int refs;
    int rank;
    int size;
    int device; /* -1: CPU-only */
    mnnvl_config_t config; /* private copy */
    mnnvl_bootstrap_t *bs;
    int timeout_ms;                /* the config's timeout_ms, parsed once (comm_finish) */
    atomic_int aborted;            /* set by abort, or once an async error was seen */
    mnnvl_device_state_t *dev;     /* NULL when CPU-only */
    const char *handle_type;       /* "none", "posix-fd" or "fabric" */
    /* Operation handles created on this communicator, found again by their parameters. */
    mnnvl_handle_cache_t ops;
};

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

#endif
