/*
 * libmnnvl — cross-GPU workspaces and the kernels that run on them.
 *
 * This is the library's one public header. It needs no CUDA header: device pointers and
 * CUDA streams cross the ABI as `void *` (a `cudaStream_t` / `CUstream` cast to `void *`;
 * NULL is the legacy default stream).
 *
 * Conventions that hold for every function below unless its comment says otherwise:
 * - A function that can fail returns `mnnvl_status_t`. On failure, `mnnvl_last_error()` on
 *   the same thread holds one sentence naming the values involved.
 * - "Collective": every rank of the communicator must call it, in the same order relative to
 *   the other collective calls on that communicator. A collective call agrees on its outcome:
 *   when one rank fails locally, every rank returns an error instead of waiting forever.
 * - "Capture-safe": may be called while a CUDA stream is being captured into a graph (the
 *   work is recorded and runs at each replay). Calls that are not capture-safe and need the
 *   GPU return MNNVL_ERR_GRAPH_CAPTURE when they detect an active capture.
 * - destroy/release of NULL is a no-op that returns MNNVL_SUCCESS.
 * - Handles may be used from any thread, but a handle must not be used by two threads at
 *   once. Several communicators and several ranks (one thread each) may live in one process.
 */
#ifndef MNNVL_H
#define MNNVL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the library are hidden unless marked with MNNVL_API. */
#if defined(MNNVL_BUILDING_LIBRARY) && defined(__GNUC__)
#define MNNVL_API __attribute__((visibility("default")))
#else
#define MNNVL_API
#endif

/* ---------------------------------------------------------------------------------------- */
/* Version                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* The single source of the version: configure.ac reads these three lines. */
#define MNNVL_VERSION_MAJOR 0
#define MNNVL_VERSION_MINOR 1
#define MNNVL_VERSION_PATCH 0
#define MNNVL_VERSION_CODE \
    (MNNVL_VERSION_MAJOR * 10000 + MNNVL_VERSION_MINOR * 100 + MNNVL_VERSION_PATCH)

/* The version of the library loaded at run time, as MNNVL_VERSION_CODE computes it.
 * Compare with MNNVL_VERSION_CODE to detect a header/library mismatch. Never fails. */
MNNVL_API unsigned mnnvl_version(void);

/* The same version as "MAJOR.MINOR.PATCH" (static storage). Never fails. */
MNNVL_API const char *mnnvl_version_string(void);

/* ---------------------------------------------------------------------------------------- */
/* Status and errors                                                                        */
/* ---------------------------------------------------------------------------------------- */

typedef enum mnnvl_status {
    MNNVL_SUCCESS = 0,
    MNNVL_ERR_INVALID_ARGUMENT = -1, /* a value passed in is out of range or inconsistent */
    MNNVL_ERR_INVALID_USAGE = -2,    /* calls in the wrong order or on the wrong handle */
    MNNVL_ERR_NO_MEMORY = -3,        /* host or device allocation failed */
    MNNVL_ERR_CUDA = -4,             /* a CUDA call failed; the sentence names it */
    MNNVL_ERR_NO_DEVICE = -5,        /* no usable GPU or driver */
    MNNVL_ERR_UNSUPPORTED = -6,      /* not built in, or not possible on this system */
    MNNVL_ERR_BOOTSTRAP = -7,        /* the bootstrap backend failed (network, protocol) */
    MNNVL_ERR_TIMEOUT = -8,          /* a wait exceeded timeout_ms */
    MNNVL_ERR_PEER_LOST = -9,        /* another rank died or left */
    MNNVL_ERR_GRAPH_CAPTURE = -10,   /* not allowed while a CUDA graph is being captured */
    MNNVL_ERR_ABORTED = -11,         /* the communicator was aborted or saw an async error */
    MNNVL_ERR_MISMATCH = -12,        /* ranks disagree on a value that must be equal */
    MNNVL_ERR_AUTH = -13,            /* a peer did not prove the job key */
    MNNVL_ERR_INTERNAL = -14         /* a bug in libmnnvl; please report it */
} mnnvl_status_t;

/* The name of a status ("MNNVL_ERR_TIMEOUT"); "MNNVL_ERR_UNKNOWN" for values outside the
 * enum. Static storage. Never fails. */
MNNVL_API const char *mnnvl_status_string(mnnvl_status_t status);

/* The sentence describing the last failure on the calling thread, e.g.
 * "mem_alloc: rank 1 asked for 1048576 bytes but rank 0 asked for 2097152".
 * Thread-local; valid until the next libmnnvl call on this thread. "" when nothing failed. */
MNNVL_API const char *mnnvl_last_error(void);

/* ---------------------------------------------------------------------------------------- */
/* Logging                                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef enum mnnvl_log_level {
    MNNVL_LOG_NONE = 0,
    MNNVL_LOG_ERROR = 1,
    MNNVL_LOG_WARN = 2, /* the default */
    MNNVL_LOG_INFO = 3,
    MNNVL_LOG_DEBUG = 4,
    MNNVL_LOG_TRACE = 5
} mnnvl_log_level_t;

/* Receives each log line at or below the current level (without a trailing newline). May be
 * called from any thread, including libmnnvl's own background threads. */
typedef void (*mnnvl_log_fn)(mnnvl_log_level_t level, const char *message, void *user_data);

/* Sets the process-wide log level. The initial level comes from MNNVL_LOG_LEVEL
 * (none|error|warn|info|debug|trace), default warn. A communicator created with the config
 * key log_level sets it too. Never fails. */
MNNVL_API void mnnvl_set_log_level(mnnvl_log_level_t level);
MNNVL_API mnnvl_log_level_t mnnvl_get_log_level(void);

/* Sends log lines to `fn` instead of stderr; NULL restores stderr. Never fails. */
MNNVL_API void mnnvl_set_log_callback(mnnvl_log_fn fn, void *user_data);

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                            */
/* ---------------------------------------------------------------------------------------- */

typedef struct mnnvl_config_s *mnnvl_config_t;

/* Creates a configuration holding every key's default, overridden by the environment
 * variable MNNVL_<KEY> (upper case) where set. Keys and defaults:
 *   bootstrap     tcp | torch-store | mpi | ucx | ofi           default tcp
 *   root          host:port of the TCP root (the job's unique id)  no default
 *   root_mode     rank0 (rank 0 listens on `root`) | external (a root already runs there,
 *                 e.g. tools/mnnvl-store or mnnvl_root_start())  default rank0
 *   comm_name     name distinguishing communicators that share one root   default world
 *   job_key       secret every connection must prove             default "" (no secret)
 *                 empty, or at least 16 bytes (shorter is refused: make one with
 *                 `mnnvl-store --new-key`). tcp, ucx and ofi prove it on every
 *                 connection and authenticate every frame with it; mpi refuses it (the
 *                 MPI job is the trust boundary); torch-store tags every value it keeps in the
 * store with it (README, Security). handle_type   auto | fabric | posix-fd default auto timeout_ms
 * bound on every wait, host and device, in ms    default 120000 peer_timeout_ms  per-peer bound of
 * fault-tolerant operations' waits, in ms (see "Fault tolerance" below; an operation's params may
 * override it)   default 1000 log_level     none | error | warn | info | debug | trace     default:
 * the process level store         host:port of a PyTorch TCPStore (torch-store)  no default
 *   store_prefix  key prefix inside that store                   default mnnvl
 *   mpi_comm      MPI Fortran communicator handle (mpi; e.g. mpi4py's comm.py2f())
 *                                                                default "" (MPI_COMM_WORLD)
 *   mpi_init      1: the mpi plugin calls MPI_Init/MPI_Finalize itself      default 0
 *   ofi_provider  libfabric provider list (ofi)                  default "" (tcp;ofi_rxm)
 *   allreduce_oneshot_max  message bytes up to which AUTO all-reduce uses one-shot
 *                                                                default 0 (built-in table)
 *   external_buffers  1 allows caller-provided all-reduce workspaces      default 0
 * Returns INVALID_ARGUMENT when an MNNVL_<KEY> variable holds a bad value, NO_MEMORY. */
MNNVL_API mnnvl_status_t mnnvl_config_create(mnnvl_config_t *config);

/* Sets one key. Returns INVALID_ARGUMENT for an unknown key or a bad value, with a sentence
 * naming both (a job_key under 16 bytes: its length, never its value); the configuration is
 * unchanged then. */
MNNVL_API mnnvl_status_t mnnvl_config_set(mnnvl_config_t config, const char *key,
                                          const char *value);

/* The current value of a key (owned by the configuration, valid until it changes), or NULL
 * for an unknown key (with a sentence). Keys without a value read as "". */
MNNVL_API const char *mnnvl_config_get(const mnnvl_config_t config, const char *key);

MNNVL_API mnnvl_status_t mnnvl_config_destroy(mnnvl_config_t config);

/* ---------------------------------------------------------------------------------------- */
/* Parallel mapping                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* How the ranks of a job are split into parallel groups. Rank order: tp fastest, then cp,
 * then pp: rank = pp_rank*(cp*tp) + cp_rank*tp + tp_rank. The MoE groups subdivide each TP
 * group, moe_ep fastest: tp_rank = moe_tp_rank*moe_ep + moe_ep_rank.
 * Always fill with mnnvl_mapping_init() first, then change fields: like every public struct
 * it begins with its size, new fields come at the end with defaults, and a library reads a
 * struct from an older header (a smaller struct_size) with the missing fields defaulted and
 * refuses one from a newer header (a larger struct_size) with a sentence. (Programs built
 * against libmnnvl 0.1, whose mapping had no struct_size, keep working: they are linked to
 * the MNNVL_0.1 versions of the mapping functions, which read the old layout.) */
typedef struct mnnvl_mapping {
    uint32_t struct_size; /* set by init: sizeof at build time */
    int world_size;
    int rank;
    int gpus_per_node;
    int tp;     /* tensor parallel */
    int pp;     /* pipeline parallel */
    int cp;     /* context parallel */
    int moe_tp; /* MoE tensor parallel, inside a TP group */
    int moe_ep; /* MoE expert parallel, inside a TP group */
} mnnvl_mapping_t;

typedef enum mnnvl_group {
    MNNVL_GROUP_WORLD = 0,
    MNNVL_GROUP_TP = 1,
    MNNVL_GROUP_PP = 2,
    MNNVL_GROUP_CP = 3,
    MNNVL_GROUP_MOE_TP = 4,
    MNNVL_GROUP_MOE_EP = 5
} mnnvl_group_t;

/* Fills a mapping of pure tensor parallelism: struct_size = sizeof(mnnvl_mapping_t),
 * tp = moe_tp = world_size, every other degree 1, gpus_per_node = world_size. Never fails (a
 * NULL mapping is ignored). */
MNNVL_API void mnnvl_mapping_init(mnnvl_mapping_t *mapping, int world_size, int rank);

/* Checks every rule: struct_size as above; world_size >= 1; 0 <= rank < world_size; every degree >=
 * 1; gpus_per_node >= 1; tp*pp*cp == world_size; moe_tp*moe_ep == tp; when the job spans several
 * nodes, world_size is a multiple of gpus_per_node. Returns INVALID_ARGUMENT with one sentence per
 * broken rule. Local; never touches a GPU. */
MNNVL_API mnnvl_status_t mnnvl_mapping_validate(const mnnvl_mapping_t *mapping);

/* Lists, in ascending order, the world ranks of the `group` that contains mapping->rank.
 * `ranks` receives at most `capacity` entries (it may be NULL when capacity is 0); `count`
 * receives the group's size and `index` (may be NULL) the position of mapping->rank in it.
 * Returns INVALID_ARGUMENT for an invalid mapping or group, or when capacity < the size. */
MNNVL_API mnnvl_status_t mnnvl_mapping_group(const mnnvl_mapping_t *mapping, mnnvl_group_t group,
                                             int *ranks, int capacity, int *count, int *index);

/* Whether the bootstrap backend `name` (tcp, torch-store, mpi, ucx, ofi) can be used here:
 * 1 when it is built in or its plugin loads, else 0 with the reason in mnnvl_last_error()
 * (e.g. the plugin path and the dlopen error). Local; never fails otherwise. */
MNNVL_API int mnnvl_bootstrap_available(const char *name);

/* ---------------------------------------------------------------------------------------- */
/* TCP root (the rendezvous server of the tcp bootstrap)                                     */
/* ---------------------------------------------------------------------------------------- */

typedef struct mnnvl_root_s *mnnvl_root_t;

/* Starts a TCP root on a background thread of this process, listening on `listen_address`
 * ("host:port"; port 0 picks a free port; NULL means this host's name and a free port).
 * Its address, from mnnvl_root_address(), is the job's unique id: pass it to every rank and
 * create the communicators with root=<address> and root_mode=external. It serves any number
 * of jobs and communicators until stopped; every connection must prove `config`'s job_key.
 * Local. Returns INVALID_ARGUMENT (bad address), BOOTSTRAP (cannot listen), NO_MEMORY. */
MNNVL_API mnnvl_status_t mnnvl_root_start(const mnnvl_config_t config, const char *listen_address,
                                          mnnvl_root_t *root);

/* The "host:port" the root listens on, owned by the root. NULL for a NULL root. */
MNNVL_API const char *mnnvl_root_address(const mnnvl_root_t root);

/* Stops the root: ranks still connected to it fail with PEER_LOST. */
MNNVL_API mnnvl_status_t mnnvl_root_stop(mnnvl_root_t root);

/* ---------------------------------------------------------------------------------------- */
/* Communicator                                                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct mnnvl_comm_s *mnnvl_comm_t;

/* Creates the communicator of `size` ranks; this is rank `rank`. Collective. Not
 * capture-safe. `device` is the CUDA device this rank uses, or -1 for a CPU-only
 * communicator (bootstrap collectives only). With a device it also agrees on the memory
 * handle type (config handle_type) and sets up the device-side error word, abort flag and
 * barrier signals. Returns INVALID_ARGUMENT (also: job_key set with bootstrap=mpi),
 * BOOTSTRAP, AUTH (job key refused: on the refused rank and, with ucx and ofi, on rank 0;
 * the others of that communicator get PEER_LOST), TIMEOUT, PEER_LOST, NO_DEVICE, CUDA,
 * UNSUPPORTED (no handle type all ranks share, or built without CUDA and device >= 0),
 * GRAPH_CAPTURE, NO_MEMORY.
 *
 * Ranks may share a device: several processes, or several threads of one process with one
 * communicator each, may pass the same `device`. That is correct, not fast: the kernels of
 * different processes time-slice the GPU, so spin-waits on peers make progress, but timings
 * mean nothing (the test suite runs every multi-rank GPU test this way on one GPU). Threads of
 * one process share the device's context and run their kernels side by side instead, so the
 * ranks of this communicator that are threads of one process on one device each fill only a
 * share of its SMs (tests/gpu/test_threads). Such threads must enqueue on non-blocking streams,
 * copy through pinned host memory, and must not synchronise the whole context
 * (cudaDeviceSynchronize, cudaFree, copies on the legacy stream or from pageable memory) while
 * a peer thread's collective may wait for their next launch: that waits for the peer's
 * kernel, which waits for this thread, until the device-side TIMEOUT ends it (never a hang).
 * The first launch of a kernel does the same under CUDA's lazy loading (the default since
 * CUDA 12.2): this call loads every libmnnvl kernel, but the caller's own kernels must be
 * launched once before the first collective, or the process run with
 * CUDA_MODULE_LOADING=EAGER. */
MNNVL_API mnnvl_status_t mnnvl_comm_create(const mnnvl_config_t config, int rank, int size,
                                           int device, mnnvl_comm_t *comm);

/* Creates the communicator of the mapping group that contains this rank, e.g. the EP group
 * for MoE all-to-all. Collective over `parent`: every parent rank calls it with the same
 * mapping fields (only `rank` differs, and must equal the parent rank) and the same group.
 * The new communicator uses the parent's device and configuration. Returns the statuses of
 * mnnvl_comm_create, plus INVALID_ARGUMENT when the mapping is invalid or does not match
 * the parent's size and rank. */
MNNVL_API mnnvl_status_t mnnvl_comm_split(mnnvl_comm_t parent, const mnnvl_mapping_t *mapping,
                                          mnnvl_group_t group, mnnvl_comm_t *comm);

/* Creates the communicator of the ranks of `comm` that are not in exclude_ranks (n_exclude
 * distinct parent ranks), e.g. the survivors after a rank died; like ncclCommShrink. Child
 * ranks keep the parent order: parent rank p becomes the number of kept ranks below p.
 * Collective over the survivors only: the excluded ranks do not call it and are neither
 * waited for nor sent anything, so it works after `comm` returned PEER_LOST or TIMEOUT, and
 * after mnnvl_comm_abort(comm). Every survivor must pass the same set (in any order) and
 * have made the same splits and shrinks of `comm` before. The new communicator uses the
 * parent's device and configuration, with the device setup of mnnvl_comm_create; `comm`
 * stays as it was (destroy it when done). Not capture-safe.
 *
 * Recovery after a rank died: mnnvl_comm_get_async_error / a failed call names it; destroy
 * the operation handles and memory of `comm`; mnnvl_comm_shrink(comm, {dead}, 1, &next);
 * mnnvl_comm_destroy(comm); create new workspaces and operations on `next`.
 *
 * Returns INVALID_ARGUMENT (a rank out of range or listed twice, n_exclude not in
 * [0, size)), INVALID_USAGE (this rank is in the list), MISMATCH (the survivors' lists
 * differ, where the child still formed), TIMEOUT (the lists differ so that the child cannot
 * form, or a survivor never called), the statuses of mnnvl_comm_create, NO_MEMORY. Backends:
 * tcp needs its root alive (with root_mode=rank0, parent rank 0); mpi cannot outlive a dead
 * process (mpirun ends the job), so there it only drops ranks that are alive, and blocks
 * until every survivor called it (MPI_Comm_create_group has no timeout). */
MNNVL_API mnnvl_status_t mnnvl_comm_shrink(mnnvl_comm_t comm, const int *exclude_ranks,
                                           int n_exclude, mnnvl_comm_t *out);

/* Rank, size and CUDA device (-1 when CPU-only) of a communicator; -1 for NULL. Never fail. */
MNNVL_API int mnnvl_comm_rank(const mnnvl_comm_t comm);
MNNVL_API int mnnvl_comm_size(const mnnvl_comm_t comm);
MNNVL_API int mnnvl_comm_device(const mnnvl_comm_t comm);

/* The memory handle type the ranks agreed on: "fabric", "posix-fd", or "none" for a CPU-only
 * communicator; NULL for NULL. Never fails. */
MNNVL_API const char *mnnvl_comm_handle_type(const mnnvl_comm_t comm);

/* Host-side collectives over the bootstrap. Collective. `bytes` must be equal on every rank
 * (allgather: `recv` holds size*bytes, rank r's block at r*bytes; broadcast: from `root`).
 * Return TIMEOUT, PEER_LOST, BOOTSTRAP, MISMATCH (ranks passed different byte counts),
 * ABORTED, INVALID_ARGUMENT. */
MNNVL_API mnnvl_status_t mnnvl_comm_allgather(mnnvl_comm_t comm, const void *send, void *recv,
                                              size_t bytes);
MNNVL_API mnnvl_status_t mnnvl_comm_broadcast(mnnvl_comm_t comm, void *buffer, size_t bytes,
                                              int root);
MNNVL_API mnnvl_status_t mnnvl_comm_barrier(mnnvl_comm_t comm);

/* Enqueues on `stream` a barrier across the GPUs of the communicator: the kernel returns on
 * each GPU once every rank's kernel has arrived. Collective (in stream order). Capture-safe:
 * a captured barrier works at every replay. If a peer does not arrive within timeout_ms, or
 * the communicator is aborted, the kernel records the failure in the async error (see
 * below) and exits without trapping. Returns INVALID_USAGE (CPU-only communicator),
 * ABORTED, CUDA. */
MNNVL_API mnnvl_status_t mnnvl_comm_device_barrier(mnnvl_comm_t comm, void *stream);

/* Reads, without synchronizing, the error a kernel of this communicator recorded
 * (MNNVL_SUCCESS while none). When it is not success, mnnvl_last_error() names the
 * operation and the peer, and every later call on the communicator returns ABORTED.
 * Local. Capture-safe. Returns INVALID_ARGUMENT for NULL arguments. */
MNNVL_API mnnvl_status_t mnnvl_comm_get_async_error(mnnvl_comm_t comm, mnnvl_status_t *async_error);

/* ---------------------------------------------------------------------------------------- */
/* Fault tolerance                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* An operation created with `fault_tolerant = 1` in its params (MoE all-to-all, all-reduce,
 * DCP all-to-all) bounds every wait on a peer by a per-peer limit (params peer_timeout_ms, 0
 * meaning the config key peer_timeout_ms, default 1000 ms) and by the communicator's
 * liveness: where the bootstrap can tell (tcp, ucx, ofi), a watcher thread of the communicator
 * learns within milliseconds that a rank's connection dropped. A rank that misses the bound, or
 * whose connection dropped, is marked dead in a device-resident mask of the communicator,
 * for good; every launch reads the mask, so a CUDA graph captured before the death skips the
 * dead rank at every later replay. Then:
 * - MoE: dispatch sends nothing to dead ranks, combine sums the live ranks' contributions
 *   only and flags each token that lost one (mnnvl_moe_a2a_lost_tokens); a token whose
 *   experts all sit on dead ranks comes back as zeros. The survivors go on without limit.
 * - all-reduce and DCP: a sum or merge over fewer ranks is a wrong answer, so the call ends
 *   promptly without writing a partial result (an element, a fused row, a DCP entry is either
 *   right or not written), and so does every later call of the handle.
 * In both cases the async error becomes PEER_LOST naming the dead rank, and the process
 * stays usable. Unlike other async errors, PEER_LOST does not abort the communicator:
 * fault-tolerant operations keep running on it, every other call on it returns PEER_LOST,
 * and the recovery calls (mnnvl_comm_failed_ranks, the shrink, destroy, abort) work.
 * The bootstrap's liveness also turns a lost rank into PEER_LOST for operations without the
 * option: their kernels end at once instead of after timeout_ms.
 *
 * Recovery, on every survivor:
 *   1. n = 0; mnnvl_comm_failed_ranks(comm, list, MAX, &n): who died (all survivors see the
 *      same ranks, each within about peer_timeout_ms of the others);
 *   2. shrink: mnnvl_comm_shrink(comm, ranks of list, n, &smaller), collective over the
 *      survivors only (the dead are excluded, not waited for);
 *   3. create the operations again on `smaller` (workspaces sized for the survivors; for MoE
 *      redistribute the experts), destroy the old handles and `comm`, and go on.
 * docs/fault-tolerance.md has the details, including what the driver does with the memory a
 * dead process exported.
 *
 * With fault_tolerant = 0 (the default) the kernels are exactly those without the option:
 * no mask is read, no wait is bounded per peer. */

/* Why a rank is listed as failed. */
typedef enum mnnvl_failure_reason {
    MNNVL_FAILURE_CONNECTION = 1,  /* the bootstrap saw its connection drop (it died) */
    MNNVL_FAILURE_PEER_TIMEOUT = 2 /* a fault-tolerant kernel waited longer than the per-peer
                                      bound for it (stopped, hung, or very slow) */
} mnnvl_failure_reason_t;

typedef struct mnnvl_rank_failure {
    int rank;                      /* in this communicator */
    mnnvl_failure_reason_t reason; /* the first way this rank learned of it */
    int64_t since_ms;              /* when this rank learned it: CLOCK_REALTIME, ms since
                                      1970 (within ~10 ms where the bootstrap has liveness,
                                      else at the first call that looked after a kernel
                                      marked it) */
} mnnvl_rank_failure_t;

/* The ranks of `comm` this rank knows to be dead, in ascending rank order: up to `capacity`
 * entries into `failures` (which may be NULL when capacity is 0), their total number into
 * `count` (0 while nobody failed, and on a communicator without a fault). Local; reads host
 * memory only (no synchronisation, capture-safe); works on an aborted communicator and on a
 * CPU-only one (there only the bootstrap's liveness reports). Returns INVALID_ARGUMENT (NULL
 * comm or count, capacity < 0, NULL failures with capacity > 0). */
MNNVL_API mnnvl_status_t mnnvl_comm_failed_ranks(const mnnvl_comm_t comm,
                                                 mnnvl_rank_failure_t *failures, int capacity,
                                                 int *count);

/* Aborts the communicator after an error: running and future kernels exit with ABORTED,
 * blocked host calls on other threads return, peers are told (their calls fail with
 * PEER_LOST). Local; safe to call at any time, also from another thread while the owner is
 * inside a call, but not concurrently with mnnvl_comm_destroy of the same communicator:
 * let the aborting thread return first. The communicator must still be destroyed. */
MNNVL_API mnnvl_status_t mnnvl_comm_abort(mnnvl_comm_t comm);

/* Waits until every rank has called finalize, so that destroying afterwards cannot make a
 * peer's pending call fail. Collective. Returns the statuses of mnnvl_comm_barrier. */
MNNVL_API mnnvl_status_t mnnvl_comm_finalize(mnnvl_comm_t comm);

/* Drops the caller's reference. Local. The communicator lives on while symmetric memory or
 * an operation created on it still holds a reference. */
MNNVL_API mnnvl_status_t mnnvl_comm_destroy(mnnvl_comm_t comm);

/* ---------------------------------------------------------------------------------------- */
/* Symmetric memory                                                                         */
/* ---------------------------------------------------------------------------------------- */

typedef struct mnnvl_mem_s *mnnvl_mem_t;

/* Allocates `bytes` of device memory on every rank and maps all ranks' pieces into one
 * reserved virtual range on every GPU: rank p's piece starts at base + p*stride, the same
 * address on every rank. Collective; every rank must ask for the same size. Not
 * capture-safe. The memory holds a reference to the communicator. Contents start
 * undefined. Returns MISMATCH (sizes differ; on every rank), INVALID_ARGUMENT (bytes 0),
 * INVALID_USAGE (CPU-only communicator), NO_MEMORY, CUDA, GRAPH_CAPTURE, TIMEOUT,
 * PEER_LOST, ABORTED, UNSUPPORTED (built without CUDA). */
MNNVL_API mnnvl_status_t mnnvl_mem_alloc(mnnvl_comm_t comm, size_t bytes, mnnvl_mem_t *mem);

/* Device address of rank 0's piece; NULL for NULL. Never fails. */
MNNVL_API void *mnnvl_mem_base(const mnnvl_mem_t mem);
/* Distance in bytes between consecutive ranks' pieces (>= size); 0 for NULL. */
MNNVL_API size_t mnnvl_mem_stride(const mnnvl_mem_t mem);
/* Bytes requested at allocation; 0 for NULL. */
MNNVL_API size_t mnnvl_mem_size(const mnnvl_mem_t mem);
/* Device address of `peer`'s piece (base + peer*stride); NULL for NULL or a peer out of
 * range. Never fails. */
MNNVL_API void *mnnvl_mem_ptr(const mnnvl_mem_t mem, int peer);

/* Adds a reference. Local. */
MNNVL_API mnnvl_status_t mnnvl_mem_retain(mnnvl_mem_t mem);
/* Drops a reference; the last one unmaps the range and frees this rank's piece. Local: a
 * peer's piece stays valid for the peers that still map it. Not capture-safe. */
MNNVL_API mnnvl_status_t mnnvl_mem_release(mnnvl_mem_t mem);

/* ---------------------------------------------------------------------------------------- */
/* Element types                                                                            */
/* ---------------------------------------------------------------------------------------- */

typedef enum mnnvl_dtype {
    MNNVL_DTYPE_FP32 = 0,
    MNNVL_DTYPE_FP16 = 1,
    MNNVL_DTYPE_BF16 = 2
} mnnvl_dtype_t;

/* Bytes per element of a dtype; 0 for values outside the enum. Never fails. */
MNNVL_API size_t mnnvl_dtype_size(mnnvl_dtype_t dtype);

/* ---------------------------------------------------------------------------------------- */
/* All-reduce                                                                               */
/* ---------------------------------------------------------------------------------------- */

typedef struct mnnvl_allreduce_s *mnnvl_allreduce_t;

typedef enum mnnvl_allreduce_strategy {
    MNNVL_ALLREDUCE_AUTO = 0,    /* by size and world size (config: allreduce_oneshot_max) */
    MNNVL_ALLREDUCE_ONESHOT = 1, /* every rank pushes everything to every peer: latency */
    MNNVL_ALLREDUCE_TWOSHOT = 2  /* reduce-scatter then all-gather: bandwidth */
} mnnvl_allreduce_strategy_t;

/* Parameters of an all-reduce handle. Always fill with mnnvl_allreduce_params_init() first,
 * then change fields: new fields are added at the end with defaults, so code built against
 * this header keeps working with later libraries (struct_size rules as for
 * mnnvl_mapping_t). */
typedef struct mnnvl_allreduce_params {
    uint32_t struct_size;                /* set by init: sizeof at build time */
    mnnvl_dtype_t dtype;                 /* default BF16 */
    size_t max_count;                    /* the largest message (elements) the caller plans;
                                            larger ones still work, in chunks. Default 1<<20 */
    mnnvl_allreduce_strategy_t strategy; /* default AUTO */
    int rmsnorm_weight_bias;             /* 1: norm_out = y*rsqrt(...)*(1+gamma). Default 0 */
    /* Explicit opt-in to workspace memory the caller allocated elsewhere (e.g. PyTorch
     * symmetric memory): external_buffers[p] is rank p's buffer as mapped on this GPU, every
     * one external_buffer_bytes long. Needs config external_buffers=1 as well. Never chosen
     * automatically. Default NULL: libmnnvl's own symmetric memory. */
    void *const *external_buffers;
    int external_buffer_count;
    size_t external_buffer_bytes;
    /* 1: fault-tolerant (see "Fault tolerance"): a dead rank ends the call promptly with
     * PEER_LOST instead of TIMEOUT after timeout_ms; at most MNNVL_FT_MAX_RANKS ranks.
     * Default 0. */
    int fault_tolerant;
    int peer_timeout_ms; /* per-peer bound; 0 (default): the config key peer_timeout_ms */
} mnnvl_allreduce_params_t;

/* The most ranks of a communicator whose operations are fault-tolerant. */
#define MNNVL_FT_MAX_RANKS 64

/* Fills the defaults. Never fails (a NULL pointer is ignored). */
MNNVL_API void mnnvl_allreduce_params_init(mnnvl_allreduce_params_t *params);

/* Bytes of workspace each rank needs for these parameters on `world_size` ranks (pure CPU:
 * for planning memory). 0 with a sentence for invalid parameters. */
MNNVL_API size_t mnnvl_allreduce_workspace_size(const mnnvl_allreduce_params_t *params,
                                                int world_size);

/* Creates the all-reduce of `comm`, or returns the cached handle with the same parameters
 * (with one more reference). Collective. Not capture-safe (create before capture; calls
 * inside it). Returns INVALID_ARGUMENT (dtype, max_count, external buffers wrong in count
 * or size), INVALID_USAGE (CPU-only communicator, external buffers without the config
 * opt-in), NO_MEMORY, CUDA, GRAPH_CAPTURE, TIMEOUT, PEER_LOST, ABORTED. */
MNNVL_API mnnvl_status_t mnnvl_allreduce_create(mnnvl_comm_t comm,
                                                const mnnvl_allreduce_params_t *params,
                                                mnnvl_allreduce_t *allreduce);

/* out = sum over ranks of in, `count` elements of the handle's dtype, enqueued on `stream`.
 * Collective (in stream order); in == out is allowed; any count (0 is a no-op; messages
 * larger than the workspace go in chunks). Every rank gets bit-identical results: sums run
 * in rank order in fp32. Capture-safe. No host synchronisation. in and out must be aligned
 * to the element size. Returns INVALID_ARGUMENT (NULL or misaligned pointers), ABORTED,
 * CUDA. A peer that stops calling makes this rank's kernel end with TIMEOUT in the
 * communicator's async error. */
MNNVL_API mnnvl_status_t mnnvl_allreduce(mnnvl_allreduce_t allreduce, const void *in, void *out,
                                         size_t count, void *stream);

/* Fused all-reduce + residual + RMSNorm over [tokens, hidden] rows of the handle's dtype:
 *   y = allreduce(in) + residual_in;  residual_out = y;
 *   norm_out = y * rsqrt(mean(y^2) + eps) * (gamma, or 1 + gamma with rmsnorm_weight_bias)
 * where allreduce(in) is rounded to the dtype exactly as mnnvl_allreduce returns it (so the
 * fused call equals the all-reduce followed by a residual+RMSNorm kernel, whatever the
 * strategy) and the rest of the math is fp32. gamma has `hidden` elements. residual_out may
 * equal residual_in; in must not alias an output.
 * Collective, capture-safe, as mnnvl_allreduce. Returns INVALID_ARGUMENT (NULL pointers,
 * hidden 0, larger than 32768 or not a multiple of 16 bytes; misalignment; in aliasing an
 * output), ABORTED, CUDA. */
MNNVL_API mnnvl_status_t mnnvl_allreduce_residual_rmsnorm(
    mnnvl_allreduce_t allreduce, const void *in, const void *residual_in, const void *gamma,
    float eps, size_t tokens, size_t hidden, void *residual_out, void *norm_out, void *stream);

/* Drops a reference; the last one frees the workspace (local; synchronizes the device like
 * cudaFree). Not capture-safe. */
MNNVL_API mnnvl_status_t mnnvl_allreduce_destroy(mnnvl_allreduce_t allreduce);

/* ---------------------------------------------------------------------------------------- */
/* MoE all-to-all (expert parallelism)                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Dispatch moves each token's payload rows to the ranks that own its top-k experts; after
 * the experts ran, combine brings the per-rank partial results back and sums them. Expert e
 * belongs to rank r when e is in r's contiguous block; with E experts on n ranks the first
 * E % n ranks own E/n + 1 experts, the others E/n. */

typedef struct mnnvl_moe_a2a_s *mnnvl_moe_a2a_t;

#define MNNVL_MOE_MAX_PAYLOADS 8
#define MNNVL_MOE_MAX_TOP_K 32
#define MNNVL_MOE_MAX_RANKS 64

/* Fill with mnnvl_moe_a2a_params_init(), then set the fields (new fields come at the end;
 * struct_size rules as for mnnvl_mapping_t). */
typedef struct mnnvl_moe_a2a_params {
    uint32_t struct_size;    /* set by init */
    int ep_size;             /* ranks of the EP group: must equal the communicator's size */
    int num_experts;         /* >= ep_size */
    int top_k;               /* 1 .. MNNVL_MOE_MAX_TOP_K */
    int max_tokens_per_rank; /* the largest local_num_tokens and runtime R of any call */
    int num_payloads;        /* dispatch payloads, 1 .. MNNVL_MOE_MAX_PAYLOADS */
    int hidden;              /* elements per combine row */
    mnnvl_dtype_t combine_dtype;
    /* Fixed arrays come last, so a later header can add scalar fields after them without
     * moving the scalars (libmnnvl 0.1 had this array before hidden: programs built against
     * it are linked to the MNNVL_0.1 versions of the moe functions, which read that layout). */
    size_t payload_bytes[MNNVL_MOE_MAX_PAYLOADS]; /* bytes per token row; multiples of 4 */
    /* 1: fault-tolerant (see "Fault tolerance"): dispatch and combine go on over the live
     * ranks; combine flags the tokens that lost a contribution. Default 0. */
    int fault_tolerant;
    int peer_timeout_ms; /* per-peer bound; 0 (default): the config key peer_timeout_ms */
} mnnvl_moe_a2a_params_t;

/* Defaults: everything 0 except struct_size, top_k 1, num_payloads 1, combine BF16 (so not
 * fault-tolerant). Never fails (a NULL pointer is ignored). */
MNNVL_API void mnnvl_moe_a2a_params_init(mnnvl_moe_a2a_params_t *params);

/* Bytes of symmetric workspace each rank needs for these parameters. Pure CPU, for planning
 * memory without a GPU. 0 with a sentence for invalid parameters. */
MNNVL_API size_t mnnvl_moe_a2a_workspace_size(const mnnvl_moe_a2a_params_t *params);

/* Creates the all-to-all of `comm`, which must be the EP group (see mnnvl_comm_split), or
 * returns the cached handle with equal parameters (one more reference). Collective; ends
 * with a barrier, so no rank dispatches into a peer that is not ready. Not capture-safe.
 * Returns INVALID_ARGUMENT (parameters; ep_size differing from the communicator's size),
 * INVALID_USAGE (CPU-only communicator), NO_MEMORY, CUDA, GRAPH_CAPTURE, TIMEOUT, PEER_LOST,
 * ABORTED. */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_moe_a2a_params_t *params,
                                              mnnvl_moe_a2a_t *a2a);

/* Dispatch. token_selected_experts: device int32 [local_num_tokens, top_k]; an id that is
 * negative or >= num_experts means "no expert". payloads: a host array of num_payloads
 * device pointers, payload i a [local_num_tokens, payload_bytes[i]] row-major array (16-byte
 * aligned rows go faster). Each token goes at most once to each rank that owns one of its
 * experts; on the receiver its rows land at [source rank][slot] of that payload's region
 * [ep_size, R, payload_bytes[i]] (mnnvl_moe_a2a_recv_buffer), slots in token order.
 * runtime_max_tokens (R) must be the same on every rank and at least every rank's
 * local_num_tokens; local_num_tokens may be 0 (on any or every rank). A rank whose R differs
 * makes every rank's kernel record MISMATCH in the async error. Collective (in stream
 * order), capture-safe. Must alternate with combine. Returns INVALID_ARGUMENT (sizes, NULL
 * pointers), INVALID_USAGE (dispatch twice without combine), ABORTED, CUDA. */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_dispatch(mnnvl_moe_a2a_t a2a,
                                                const int32_t *token_selected_experts,
                                                const void *const *payloads, int local_num_tokens,
                                                int runtime_max_tokens, void *stream);

/* Device address of payload `index`'s receive region [ep_size, R, payload_bytes[index]] for
 * the R of the last dispatch (row [s][j] holds source s's j-th token for j < the count of
 * s). NULL for a bad index or before the first dispatch. Never fails otherwise. */
MNNVL_API void *mnnvl_moe_a2a_recv_buffer(const mnnvl_moe_a2a_t a2a, int index);

/* Device address of int32 [ep_size]: how many tokens each source sent to this rank in the
 * last dispatch (valid in stream order after it). NULL for NULL. */
MNNVL_API const int32_t *mnnvl_moe_a2a_recv_counts(const mnnvl_moe_a2a_t a2a);

/* In the received payload `index`, which must hold top_k int32 expert ids per row: every
 * slot past its source's count and every id this rank does not own becomes -1. Local,
 * capture-safe, after dispatch and before combine. Returns INVALID_ARGUMENT (index, or a
 * row that is not top_k int32), INVALID_USAGE (no dispatch pending), ABORTED, CUDA. */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_sanitize(mnnvl_moe_a2a_t a2a, int index, void *stream);

/* Device address of this rank's combine region [ep_size, R, hidden] (combine_dtype) for the
 * R of the last dispatch: write the expert output of each valid received slot there and
 * pass NULL (or this address) to combine to skip the staging copy. NULL for NULL. */
MNNVL_API void *mnnvl_moe_a2a_combine_buffer(const mnnvl_moe_a2a_t a2a);

/* Combine: expert_out [ep_size, R, hidden] holds, for each valid received slot, this rank's
 * weighted sum over its own experts of that token (rows of invalid slots are ignored);
 * NULL means it is already in mnnvl_moe_a2a_combine_buffer(). out [local_num_tokens, hidden]
 * receives, per token, the sum of the partials of the ranks it was sent to, in ascending
 * rank order in fp32 (bit-identical run after run; a token with no expert gets zeros).
 * Collective (in stream order), capture-safe. Returns INVALID_ARGUMENT (NULL out with
 * tokens), INVALID_USAGE (no dispatch pending), ABORTED, CUDA. */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_combine(mnnvl_moe_a2a_t a2a, const void *expert_out,
                                               void *out, void *stream);

/* Fault-tolerant handles only: device address of uint8 [max_tokens_per_rank], written by
 * every combine (valid in stream order after it, graph replays included): entry t is 1 when
 * token t of that combine missed the contribution of a dead rank (its output is the sum of
 * the live ranks' partials only), else 0. NULL for NULL or a handle without fault_tolerant.
 * Never fails otherwise. */
MNNVL_API const uint8_t *mnnvl_moe_a2a_lost_tokens(const mnnvl_moe_a2a_t a2a);

/* Adds a reference, for holders of the regions above (a binding's tensor views): the
 * workspace stays mapped until every reference is dropped with mnnvl_moe_a2a_destroy. Local,
 * capture-safe (no CUDA call). Returns INVALID_ARGUMENT (NULL), UNSUPPORTED (built without
 * CUDA). */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_retain(mnnvl_moe_a2a_t a2a);

/* Drops a reference; the last frees the workspace (local; synchronizes like cudaFree). */
MNNVL_API mnnvl_status_t mnnvl_moe_a2a_destroy(mnnvl_moe_a2a_t a2a);

/* ---------------------------------------------------------------------------------------- */
/* Decode-context-parallel (Helix) all-to-all                                               */
/* ---------------------------------------------------------------------------------------- */

/* With decode context parallelism every rank of the CP group holds a slice of each
 * sequence's KV cache, so every rank computes a partial attention output for every entry
 * (an entry is one (token, head) row: entries = the product of the leading dimensions) and
 * every destination rank's heads. The all-to-all gives each rank the partials of its own
 * heads from every rank: a transpose of the cp axis. Input and output layout, row-major:
 *   partial_o [entries, cp_size, head_dim]   of the handle's dtype (FP16 or BF16)
 *   stats     [entries, cp_size, stats_lanes] fp32 (softmax statistics, e.g. the LSE)
 * mnnvl_dcp_a2a_lse_reduce also merges the partials into the final attention output.
 * The workspace is always libmnnvl's own symmetric memory (mnnvl_mem_alloc): peers write
 * into it at base + peer*stride, which plain per-rank memory cannot serve. */

typedef struct mnnvl_dcp_a2a_s *mnnvl_dcp_a2a_t;

#define MNNVL_DCP_MAX_RANKS 64      /* largest cp_size */
#define MNNVL_DCP_MAX_STATS_LANES 8 /* stats_lanes is 1 .. this */
#define MNNVL_DCP_MAX_ENTRIES (1 << 24)

/* The base of the log-sum-exp values in the stats (lse_reduce reads and writes them so). */
typedef enum mnnvl_lse_base {
    MNNVL_LSE_BASE_E = 0, /* LSE = ln(sum exp(s)) */
    MNNVL_LSE_BASE_2 = 1  /* LSE = log2(sum 2^s), as kernels that fold log2(e) into the scale */
} mnnvl_lse_base_t;

/* Fill with mnnvl_dcp_a2a_params_init(), then set the fields. New fields are only ever added
 * at the end: a struct from an older (smaller) header is accepted, the missing fields taking
 * their defaults; a struct_size larger than this library knows is refused. */
typedef struct mnnvl_dcp_a2a_params {
    uint32_t struct_size;      /* set by init: sizeof at build time */
    int cp_size;               /* ranks of the CP group: must equal the communicator's size */
    int max_entries;           /* capacity: the largest entry count any call passes, in
                                  [1, MNNVL_DCP_MAX_ENTRIES]. A decode-sized workspace
                                  refuses a prefill batch: size it for the largest call */
    int head_dim;              /* D: 64, 128, 256, 512, or any multiple of 8 up to 1024 */
    mnnvl_dtype_t dtype;       /* of partial_o and the merged output: FP16 or BF16 (default) */
    int stats_lanes;           /* S: fp32 values per (entry, rank), 1 .. 8; default 2 */
    mnnvl_lse_base_t lse_base; /* for lse_reduce; default MNNVL_LSE_BASE_E */
    /* 1: fault-tolerant (see "Fault tolerance"): a dead rank ends the call promptly with
     * PEER_LOST, no output entry written without every rank's part. Default 0. */
    int fault_tolerant;
    int peer_timeout_ms; /* per-peer bound; 0 (default): the config key peer_timeout_ms */
} mnnvl_dcp_a2a_params_t;

/* Defaults: cp_size 0 and max_entries 0 (both must be set), head_dim 128, BF16, stats_lanes
 * 2, LSE base e. Never fails (a NULL pointer is ignored). */
MNNVL_API void mnnvl_dcp_a2a_params_init(mnnvl_dcp_a2a_params_t *params);

/* Bytes of symmetric workspace each rank needs for these parameters (receive slots for
 * max_entries rows from every rank, twice, plus the flags). Pure CPU, also in builds
 * without CUDA: for planning memory. 0 with a sentence for invalid parameters. */
MNNVL_API size_t mnnvl_dcp_a2a_workspace_size(const mnnvl_dcp_a2a_params_t *params);

/* Creates the DCP all-to-all of `comm`, which must be the CP group (mnnvl_comm_split(parent,
 * &mapping, MNNVL_GROUP_CP, &cp_comm)), or returns the cached handle with equal parameters
 * (one more reference). Allocates the workspace with mnnvl_mem_alloc and ends with a
 * barrier, so no rank writes into a peer that is not ready. Collective. Not capture-safe
 * (create before the capture; the calls may be captured). Every rank must pass equal
 * parameters. Returns INVALID_ARGUMENT (parameters; cp_size differing from the
 * communicator's size, on every rank), MISMATCH (ranks passed different parameters, on every
 * rank), INVALID_USAGE (CPU-only communicator), NO_MEMORY, CUDA, GRAPH_CAPTURE, TIMEOUT,
 * PEER_LOST, ABORTED, UNSUPPORTED (built without CUDA). */
MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_dcp_a2a_params_t *params,
                                              mnnvl_dcp_a2a_t *dcp);

/* The transpose of the cp axis, into caller-provided outputs, for `entries` entries:
 *   out_o[e, p, :] on rank r = partial_o[e, r, :] of rank p
 *   out_stats[e, p, :] on rank r = stats[e, r, :] of rank p
 * Bytes are moved exactly (no arithmetic). cp_size 1 is the identity. entries 0 moves
 * nothing but still synchronises with the peers (every rank must make the same calls).
 * Every rank must pass the same entries; a rank that differs makes every rank's kernel
 * record MISMATCH in the async error (outputs are then undefined), never a hang.
 * partial_o and out_o must be 16-byte aligned, stats and out_stats 4-byte aligned; no
 * output may overlap an input. Collective (in stream order: calls on one handle must be
 * ordered, e.g. on one stream), capture-safe, no host synchronisation, deterministic.
 * Returns INVALID_ARGUMENT (entries < 0 or > max_entries, NULL or misaligned buffers),
 * ABORTED, CUDA. A peer that stops calling makes this rank's kernel end with TIMEOUT naming
 * that peer in the async error, after timeout_ms. */
MNNVL_API mnnvl_status_t mnnvl_dcp_a2a(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                       const void *stats, int entries, void *out_o, void *out_stats,
                                       void *stream);

/* The exchange fused with the merge of the partial attention outputs: rank r receives, for
 * each of its entries, the partials O_p and LSE_p of every rank p (LSE_p is stats lane 0 of
 * [e, r, :] on rank p; the other lanes are ignored) and writes
 *   out[e, :]     = sum_p w_p * O_p / sum_p w_p,  w_p = exp(LSE_p - LSE_max) (2^(...) in
 *                   base 2), LSE_max = max_p LSE_p
 *   out_lse[e]    = LSE_max + log(sum_p w_p) (log2 in base 2)
 * out is [entries, head_dim] of the dtype, out_lse [entries] fp32. The math is fp32, ranks
 * summed in ascending order, so results are bit-identical run after run. A source whose LSE
 * is -inf (no KV for that entry there) contributes nothing, even when its O holds NaN; an
 * entry whose every source is -inf gets zeros and LSE -inf, never NaN. LSE values must be
 * finite or -inf (+inf or NaN give unspecified values). out_lse may be NULL.
 * Alignment, entries, MISMATCH, TIMEOUT, collective, capture-safe and statuses as
 * mnnvl_dcp_a2a (out 16-byte aligned, out_lse 4-byte aligned). */
MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_lse_reduce(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                                  const void *stats, int entries, void *out,
                                                  void *out_lse, void *stream);

/* Drops a reference; the last frees the workspace (local; synchronizes like cudaFree). Not
 * capture-safe. */
MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_destroy(mnnvl_dcp_a2a_t dcp);

#ifdef __cplusplus
}
#endif

#endif /* MNNVL_H */
