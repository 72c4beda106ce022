#ifndef MNNVL_COMM_H
#define MNNVL_COMM_H

#include <pthread.h>
#include <stdatomic.h>

#include "bootstrap/bootstrap.h"
#include "mnnvl.h"

typedef struct mnnvl_device_state mnnvl_device_state_t;
typedef struct mnnvl_fault_state mnnvl_fault_state_t;

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
    mnnvl_fault_state_t *fault;    /* dead ranks and the liveness watcher (lib/fault.c) */
    /* Operation handles created on this communicator, found again by their parameters. The
     * entries do not hold references: a handle removes itself when it is destroyed. */
    pthread_mutex_t ops_lock;
    struct mnnvl_cached_op *ops;
};

/* Operation kinds in the cache. */
enum { MNNVL_CACHED_ALLREDUCE = 1, MNNVL_CACHED_MOE_A2A = 2, MNNVL_CACHED_DCP_A2A = 3 };

/* The handle created earlier with the same kind and key bytes, or NULL. The caller adds its
 * reference while the lock is held by passing `retain`, so a concurrent destroy cannot free
 * the handle in between. */
void *mnnvl_comm_cache_find(mnnvl_comm_t comm, int kind, const void *key, size_t key_len,
                            void (*retain)(void *handle));
mnnvl_status_t mnnvl_comm_cache_add(mnnvl_comm_t comm, int kind, const void *key, size_t key_len,
                                    void *handle);
void mnnvl_comm_cache_remove(mnnvl_comm_t comm, void *handle);

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
