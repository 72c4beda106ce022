/* The communicator's struct: what every layer of lib/ reads (rank, size, bootstrap, device
 * state, config). Data only, so that the device side, the barrier and the mappings below
 * comm.c can read it without an include of comm.c's own header. */
#ifndef MNNVL_COMM_STATE_H
#define MNNVL_COMM_STATE_H

#include <stdatomic.h>

#include "bootstrap/bootstrap.h"
#include "handle_cache.h"
#include "mnnvl.h"

typedef struct mnnvl_device_state mnnvl_device_state_t;
typedef struct mnnvl_fault_state mnnvl_fault_state_t;

struct mnnvl_comm_s {
    atomic_int refs;
    int rank;
    int size;
    int device;            /* -1: CPU-only */
    mnnvl_config_t config; /* private copy */
    mnnvl_bootstrap_t *bs;
    int timeout_ms;             /* the config's timeout_ms, parsed once (comm_finish) */
    atomic_int aborted;         /* set by abort, or once an async error was seen */
    mnnvl_device_state_t *dev;  /* NULL when CPU-only */
    const char *handle_type;    /* "none", "posix-fd" or "fabric" */
    mnnvl_fault_state_t *fault; /* dead ranks and the liveness watcher (lib/fault.c) */
    /* Operation handles created on this communicator, found again by their parameters. */
    mnnvl_handle_cache_t ops;
};

#endif
