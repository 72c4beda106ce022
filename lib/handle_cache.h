/* The cache of operation handles that a communicator keeps, so that creating an operation
 * with the same parameters again returns the same handle. Below the communicator: it knows
 * handles only as pointers and keys as bytes. */
#ifndef MNNVL_HANDLE_CACHE_H
#define MNNVL_HANDLE_CACHE_H

#include <pthread.h>
#include <stddef.h>

#include "mnnvl.h"

/* Operation kinds in the cache. */
enum { MNNVL_CACHED_ALLREDUCE = 1, MNNVL_CACHED_MOE_A2A = 2, MNNVL_CACHED_DCP_A2A = 3 };

/* The entries do not hold references: a handle removes itself when it is destroyed. */
typedef struct mnnvl_handle_cache {
    pthread_mutex_t lock;
    struct mnnvl_cached_op *head;
} mnnvl_handle_cache_t;

/* An empty cache. Local. */
void mnnvl_handle_cache_init(mnnvl_handle_cache_t *cache);

/* Frees the entries that are left (handles are not touched) and the lock. Local. */
void mnnvl_handle_cache_fini(mnnvl_handle_cache_t *cache);

/* The handle entered earlier with the same kind and key bytes, or NULL. The caller adds its
 * reference while the lock is held by passing `retain`, so a concurrent destroy cannot free
 * the handle in between. Local, thread-safe. */
void *mnnvl_handle_cache_find(mnnvl_handle_cache_t *cache, int kind, const void *key,
                              size_t key_len, void (*retain)(void *handle));

/* Enters `handle` under (kind, key). NO_MEMORY. Local, thread-safe. */
mnnvl_status_t mnnvl_handle_cache_add(mnnvl_handle_cache_t *cache, int kind, const void *key,
                                      size_t key_len, void *handle);

/* Removes `handle`'s entry, if any. Local, thread-safe. */
void mnnvl_handle_cache_remove(mnnvl_handle_cache_t *cache, void *handle);

#endif
