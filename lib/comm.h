#ifndef MNNVL_COMM_H
#define MNNVL_COMM_H

#include <stdatomic.h>

#include "bootstrap/bootstrap.h"
#include "mnnvl.h"

typedef struct mnnvl_device_state mnnvl_device_state_t;

struct mnnvl_comm_s {
    atomic_int refs;
    int rank;
    int size;
    int device; /* -1: CPU-only */
    mnnvl_config_t config; /* private copy */
    mnnvl_bootstrap_t *bs;
    atomic_int aborted;            /* set by abort, or once an async error was seen */
    mnnvl_device_state_t *dev;     /* NULL when CPU-only */
    const char *handle_type;       /* "none", "posix-fd" or "fabric" */
};

/* Entry check of every call on a communicator: INVALID_ARGUMENT for NULL, ABORTED once the
 * communicator was aborted or a kernel reported an error. */
mnnvl_status_t mnnvl_comm_check(mnnvl_comm_t comm, const char *what);

/* Makes the outcome of a local step collective: every rank contributes its status, and when
 * any rank failed, every rank returns an error (the failing rank keeps its own status and
 * sentence; the others get the first failing rank's status and its sentence, prefixed by
 * its rank). Collective. */
mnnvl_status_t mnnvl_comm_agree(mnnvl_comm_t comm, mnnvl_status_t local, const char *what);

void mnnvl_comm_retain(mnnvl_comm_t comm);

#endif
