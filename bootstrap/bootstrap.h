/* The bootstrap interface: how ranks move small blobs between processes before (and beside)
 * the GPU path. One backend per file; backends with an external dependency (mpi, ucx, ofi)
 * live in plugins that libmnnvl loads with dlopen, so this header is all they share with the
 * library: they must not call libmnnvl's internal functions, and report errors through
 * args->set_error instead.
 *
 * Version 2. A backend is one `static const mnnvl_bootstrap_ops_t` table (the operations,
 * beginning with the table's size) and instances {ops, rank, size, state}. The table is
 * append-only: a new operation goes at its end, and a caller checks that an operation lies
 * inside the table the backend was built with (MNNVL_BOOTSTRAP_HAS_OP) before calling an
 * optional one. A plugin exports one data symbol, MNNVL_BOOTSTRAP_PLUGIN_SYMBOL, whose
 * version and size the library checks before any of the plugin's code runs.
 *
 * Contract for every collective below: every rank of the bootstrap calls it, in the same
 * order; every wait ends within timeout_ms (TIMEOUT); a rank that dies or aborts makes the
 * others' pending and later calls fail with PEER_LOST. Calls on one bootstrap are not made
 * from two threads at once, except abort, which may come from any thread at any time, and
 * poll_lost, which one watcher thread may call beside the other calls (see there).
 */
#ifndef MNNVL_BOOTSTRAP_H
#define MNNVL_BOOTSTRAP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "mnnvl.h"

/* Bumped when the layout of the args, the instance or the plugin descriptor changes, or an
 * operation changes meaning; appending an operation to the table does not bump it. A plugin
 * built for another version is refused before it runs. */
#define MNNVL_BOOTSTRAP_ABI_VERSION 2

/* The one rule for timeout_ms: a positive number of milliseconds that fits an int. lib's
 * config checks the key's string with it (the communicator then parses it once and hands
 * the int over in the args below); every backend checks args->timeout_ms with it, since
 * tools and tests create backends directly. */
static inline int mnnvl_bootstrap_timeout_valid(long long timeout_ms)
{
    return timeout_ms > 0 && timeout_ms <= INT_MAX;
}

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

/* The child a backend builds for mnnvl_comm_split and mnnvl_comm_shrink. The library has
 * decided everything: the members are parent ranks in child order, this rank is
 * members[rank], and every member passes the same list and tag. */
typedef struct mnnvl_bootstrap_child {
    const int *members; /* size parent ranks, in child order */
    int size;
    int rank; /* this rank's place in members */
    /* Names the child among the children built from this parent at the same time (the
     * library passes a hash of the members for a split, a fixed value for a shrink). Every
     * member has made the same sequence of child calls on this parent, so a backend may
     * also number its children. */
    uint64_t tag;
} mnnvl_bootstrap_child_t;

typedef struct mnnvl_bootstrap_ops {
    size_t size;      /* sizeof the table the backend was compiled with: first, always */
    const char *name; /* "tcp", "torch-store", ... */

    /* recv holds size*bytes; rank r's block lands at r*bytes. bytes may be 0 (a barrier).
     * Ranks passing different byte counts get MISMATCH where the backend can tell. */
    mnnvl_status_t (*allgather)(mnnvl_bootstrap_t *bs, const void *send, void *recv, size_t bytes);
    mnnvl_status_t (*broadcast)(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root);
    mnnvl_status_t (*barrier)(mnnvl_bootstrap_t *bs);
    /* Builds the transport of a child whose ranks are child->members (see above). Called by
     * the members only, collective over them; it sends nothing to, and waits for nothing
     * from, a parent rank outside the members (which may be dead), and it works on a parent
     * that already failed with PEER_LOST or was aborted. */
    mnnvl_status_t (*child)(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                            mnnvl_bootstrap_t **out);
    /* Makes blocked and later calls fail and tells the peers (they see PEER_LOST). Any
     * thread. */
    void (*abort)(mnnvl_bootstrap_t *bs);
    /* Leaves gracefully and frees everything. Local. */
    void (*destroy)(mnnvl_bootstrap_t *bs);
    /* New operations go here, and are optional: check MNNVL_BOOTSTRAP_HAS_OP first. */

    /* Liveness, optional (tcp, and the star plugins ucx and ofi, have it): absent or NULL when
     * the backend cannot tell (torch-store, mpi: then a dead rank is found only by the
     * per-peer bound of fault-tolerant kernels). Waits at most wait_ms (0:
     * returns at once) for news of ranks that died or aborted (a rank that left with destroy is not
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
} mnnvl_bootstrap_ops_t;

/* The operations every table must hold: a table smaller than this is refused. */
#define MNNVL_BOOTSTRAP_OPS_MIN_SIZE \
    (offsetof(mnnvl_bootstrap_ops_t, destroy) + sizeof(void (*)(mnnvl_bootstrap_t *)))

/* True when `op` lies inside the table the backend was built with and is set (libfabric's
 * FI_CHECK_OP): an older backend's table simply ends before a newer operation. */
#define MNNVL_BOOTSTRAP_HAS_OP(bs, op)                                                 \
    ((bs)->ops->size >= offsetof(mnnvl_bootstrap_ops_t, op) + sizeof((bs)->ops->op) && \
     (bs)->ops->op != NULL)

struct mnnvl_bootstrap {
    const mnnvl_bootstrap_ops_t *ops; /* the backend's static table */
    int rank;
    int size;
    void *state; /* the backend's own */
};

/* Every backend's create has this type. */
typedef mnnvl_status_t (*mnnvl_bootstrap_create_fn)(const mnnvl_bootstrap_args_t *args,
                                                    mnnvl_bootstrap_t **out);

/* What a plugin exports under MNNVL_BOOTSTRAP_PLUGIN_SYMBOL, as a const object (data, not a
 * function, so that reading it runs nothing of the plugin). */
typedef struct mnnvl_bootstrap_plugin {
    uint32_t version; /* MNNVL_BOOTSTRAP_ABI_VERSION the plugin was built for */
    uint32_t size;    /* sizeof(mnnvl_bootstrap_plugin_t) of the plugin */
    const char *name;
    mnnvl_bootstrap_create_fn create;
} mnnvl_bootstrap_plugin_t;

#define MNNVL_BOOTSTRAP_PLUGIN_SYMBOL "mnnvl_bootstrap_plugin_v2"
/* The entry of version 1 plugins, looked for only to name their version when refusing. */
#define MNNVL_BOOTSTRAP_PLUGIN_SYMBOL_V1 "mnnvl_bootstrap_plugin_create"

/* Built-in backends. */
mnnvl_status_t mnnvl_bootstrap_tcp_create(const mnnvl_bootstrap_args_t *args,
                                          mnnvl_bootstrap_t **out);
mnnvl_status_t mnnvl_bootstrap_torch_store_create(const mnnvl_bootstrap_args_t *args,
                                                  mnnvl_bootstrap_t **out);

/* Creates the backend named by args' config key "bootstrap": built-ins directly, plugins
 * through dlopen (UNSUPPORTED with the plugin path and dlerror() when absent, or naming both
 * versions when the plugin speaks another interface version). */
mnnvl_status_t mnnvl_bootstrap_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out);

/* mnnvl_bootstrap_available(name), declared in mnnvl.h, lives in bootstrap.c too. */

#endif
