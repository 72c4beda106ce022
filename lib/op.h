/* The skeleton every operation handle (all-reduce, MoE all-to-all, DCP all-to-all) shares:
 * the common part of the handle (references, communicator, workspace), the prologue of
 * create (argument and CPU-only checks, the plan's outcome agreed, no capture, the cache
 * lookup), the cache insertion, the entry check of every call, and the release. An
 * operation's own file keeps only what differs: its plan, its device setup and its calls. */
#ifndef MNNVL_OP_H
#define MNNVL_OP_H

#include <stdatomic.h>

#include "comm.h"

typedef struct mnnvl_op_handle mnnvl_op_handle_t;

/* The first member of every handle struct, so that a handle pointer is an mnnvl_op_handle_t
 * pointer too. */
struct mnnvl_op_handle {
    atomic_int refs;
    mnnvl_comm_t comm; /* retained */
    mnnvl_mem_t mem;   /* the workspace, released with the handle; NULL when there is none */
    /* Frees what the operation added (device memory, tables), after the device was
     * synchronised and before the workspace is released. Must cope with a partly built
     * handle. NULL when there is nothing. */
    void (*free_resources)(mnnvl_op_handle_t *op);
};

/* The start of every create, before its plan: `*out` (a handle pointer, called `name` in
 * the sentence when it is NULL) is set to NULL, the communicator checked (NULL, ABORTED) and
 * required to have a GPU (INVALID_USAGE otherwise, naming the rank). Local. */
mnnvl_status_t mnnvl_op_create_check(mnnvl_comm_t comm, void *out, const char *what,
                                     const char *name);

/* The rest of the prologue, after the local plan: the plan's status `planned` is agreed
 * (parameters are equal on every rank in a correct program; one wrong rank must not strand
 * the others in the allocation that follows), the device made current, the absence of a
 * stream capture agreed; then the cache: `*found` receives the handle created earlier with
 * the same kind and key, with one more reference, or NULL. Every rank looks up the same key,
 * so every rank takes the same branch. Collective. */
mnnvl_status_t mnnvl_op_create_prepare(mnnvl_comm_t comm, mnnvl_status_t planned, int kind,
                                       const void *key, size_t key_len, void **found,
                                       const char *what);

/* Makes the zeroed `op` a handle with one reference that holds one on `comm`. */
void mnnvl_op_init(mnnvl_op_handle_t *op, mnnvl_comm_t comm,
                   void (*free_resources)(mnnvl_op_handle_t *op));

/* Enters a newly built handle into its communicator's cache; on failure frees it. Local. */
mnnvl_status_t mnnvl_op_cache_add(mnnvl_op_handle_t *op, int kind, const void *key, size_t key_len);

/* Frees a handle that is not (or no longer) in the cache, whatever its references:
 * synchronises the context (kernels may still use the workspace), free_resources, the
 * workspace, the communicator reference, the handle. NULL-safe. */
void mnnvl_op_free(mnnvl_op_handle_t *op);

/* Adds a reference (the caller holds one already, so the handle cannot go meanwhile):
 * what a binding's view takes to keep the handle's device regions alive. Local. */
void mnnvl_op_retain(mnnvl_op_handle_t *op);

/* Drops a reference; the last one removes the handle from the cache and frees it. NULL is
 * a no-op. Local. */
mnnvl_status_t mnnvl_op_release(mnnvl_op_handle_t *op);

/* The entry check of every call on a handle: INVALID_ARGUMENT when it is NULL (the sentence
 * names `name`), the communicator's check (ABORTED), the device made current. */
mnnvl_status_t mnnvl_op_enter(const mnnvl_op_handle_t *op, const char *what, const char *name);

#endif
