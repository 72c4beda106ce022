/* The bootstrap interface: how ranks move small blobs between processes before (and beside)
 * the GPU path. One backend per file; backends with an external dependency (mpi, ucx, ofi)
 * live in plugins that libmnnvl loads with dlopen, so this header is all they share with the
 * library: they must not call libmnnvl's internal functions, and report errors through
 * args->set_error instead.
 *
 * Contract for every collective below: every rank of the bootstrap calls it, in the same
 * order; every wait ends within timeout_ms (TIMEOUT); a rank that dies or aborts makes the
 * others' pending and later calls fail with PEER_LOST. Calls on one bootstrap are not made
 * from two threads at once, except abort, which may come from any thread at any time, and
 * poll_lost, which one watcher thread may call beside the other calls (see there).
 */
#ifndef MNNVL_BOOTSTRAP_H
#define MNNVL_BOOTSTRAP_H

#include <stddef.h>

#include "mnnvl.h"

/* Bumped when the struct layout changes; a plugin built for another version is refused. */
#define MNNVL_BOOTSTRAP_ABI_VERSION 1

/* What the library hands a backend when it creates one. */
typedef struct mnnvl_bootstrap_args {
    int abi_version; /* MNNVL_BOOTSTRAP_ABI_VERSION of the caller */
    int rank;
    int size;
    int timeout_ms;
    const char *job_key;   /* never NULL; "" when unset */
    const char *comm_name; /* never NULL */
    /* Reads any config key ("root", "store", ...); returns "" for an unset key. */
    const char *(*config_get)(const void *config, const char *key);
    const void *config;
    /* Records the sentence of a failure (plugins cannot reach mnnvl_error). */
    void (*set_error)(mnnvl_status_t status, const char *sentence);
    /* Logs one line at the given level. */
    void (*log)(mnnvl_log_level_t level, const char *line);
} mnnvl_bootstrap_args_t;

typedef struct mnnvl_bootstrap mnnvl_bootstrap_t;

struct mnnvl_bootstrap {
    int abi_version;
    int rank;
    int size;
    const char *name; /* "tcp", "torch-store", ... */

    /* recv holds size*bytes; rank r's block lands at r*bytes. bytes may be 0 (a barrier).
     * Ranks passing different byte counts get MISMATCH where the backend can tell. */
    mnnvl_status_t (*allgather)(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                size_t bytes);
    mnnvl_status_t (*broadcast)(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root);
    mnnvl_status_t (*barrier)(mnnvl_bootstrap_t *bs);
    /* MPI_Comm_split semantics: ranks with the same color form a child, ordered by
     * (key, parent rank). Collective over the parent. */
    mnnvl_status_t (*split)(mnnvl_bootstrap_t *bs, int color, int key, mnnvl_bootstrap_t **child);
    /* Makes blocked and later calls fail and tells the peers (they see PEER_LOST). Any
     * thread. */
    void (*abort)(mnnvl_bootstrap_t *bs);
    /* Leaves gracefully and frees everything. Local. */
    void (*destroy)(mnnvl_bootstrap_t *bs);

    void *state; /* the backend's own */

    /* Liveness, optional: NULL when the backend cannot tell (then a dead rank is found only
     * by the per-peer bound of fault-tolerant kernels). Waits at most wait_ms (0: returns at
     * once) for news of ranks that died or aborted (a rank that left with destroy is not
     * reported), and writes up to `capacity` of the ranks newly known to be lost into
     * `ranks`, their number into *count; each rank is reported once. Returns SUCCESS (also
     * with *count 0), or an error after which the backend can tell no more (aborted; the
     * hub is gone and with it the knowledge of who is alive): the caller stops calling it.
     * Threads: one watcher thread of the library calls it, at any time, beside the owner's
     * calls on this bootstrap; never two calls of it at once, and never at the same time as
     * destroy or after it. It must not hold up the owner's calls longer than a poll, and must
     * not take messages that a collective of the owner waits for. */
    mnnvl_status_t (*poll_lost)(mnnvl_bootstrap_t *bs, int wait_ms, int *ranks, int capacity,
                                int *count);
};

/* Every backend's entry point has this type. Plugins export it as
 * "mnnvl_bootstrap_plugin_create". */
typedef mnnvl_status_t (*mnnvl_bootstrap_create_fn)(const mnnvl_bootstrap_args_t *args,
                                                    mnnvl_bootstrap_t **out);

/* Built-in backends. */
mnnvl_status_t mnnvl_bootstrap_tcp_create(const mnnvl_bootstrap_args_t *args,
                                          mnnvl_bootstrap_t **out);
mnnvl_status_t mnnvl_bootstrap_torch_store_create(const mnnvl_bootstrap_args_t *args,
                                                  mnnvl_bootstrap_t **out);

/* Creates the backend named by args' config key "bootstrap": built-ins directly, plugins
 * through dlopen (UNSUPPORTED with the plugin path and dlerror() when absent). */
mnnvl_status_t mnnvl_bootstrap_create(const mnnvl_bootstrap_args_t *args,
                                      mnnvl_bootstrap_t **out);

/* mnnvl_bootstrap_available(name), declared in mnnvl.h, lives in bootstrap.c too. */

#endif
