/* The mpi bootstrap plugin (libmnnvl-bootstrap-mpi.so): collectives on a duplicate of an
 * MPI communicator that the application hands over. libmnnvl loads it with dlopen, so the
 * library itself never links MPI; a plugin is built against one MPI implementation (MPI_Comm
 * is an int in MPICH-ABI implementations and a pointer in Open MPI).
 *
 * Config keys (read from the config, else from MNNVL_<KEY> in the environment):
 *   mpi_comm  the communicator as a Fortran handle (MPI_Fint, what mpi4py's comm.py2f()
 *             and MPI_Comm_c2f give; any language can pass an int). Default MPI_COMM_WORLD.
 *   mpi_init  1: call MPI_Init_thread when MPI is not initialised yet (and MPI_Finalize at
 *             exit). Default 0: MPI belongs to the application, which must initialise it.
 *
 * Timeouts: every collective is the non-blocking MPI-3 call (MPI_Iallgather, MPI_Ibcast,
 * MPI_Ibarrier, MPI_Comm_idup) polled with MPI_Test until timeout_ms, so that no call blocks
 * forever. A collective cannot be cancelled: after a TIMEOUT the communicator is unusable.
 *
 * Peer loss: MPI-3 has no way to fail a collective on other ranks short of MPI_Abort, which
 * ends the whole job. abort() therefore fails this rank's pending and later calls (ABORTED)
 * but cannot tell the peers: they see TIMEOUT. A rank that dies is mpirun's to handle; Open
 * MPI's mpirun ends the job.
 *
 * Trust: the MPI job is the trust boundary. This plugin authenticates nothing itself: its
 * traffic is MPI's, and whoever MPI lets into the communicator (mpirun's launch, its
 * transports' own security) is trusted. So a job_key cannot be honoured here, and setting
 * one is refused (INVALID_ARGUMENT) rather than silently ignored: a user who sets a key
 * expects every connection to prove it.
 */
#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap/bootstrap.h"
#include "deadline.h" /* base/: the one clock */

#define EXPORT __attribute__((visibility("default")))

typedef struct mpi_state {
    mnnvl_bootstrap_t bs;
    MPI_Comm comm;
    atomic_int aborted;
    int broken; /* a collective is still pending on comm: nothing more may run on it */
    int timeout_ms;
    void (*set_error)(mnnvl_status_t status, const char *sentence);
    void (*log)(mnnvl_log_level_t level, const char *line);
} mpi_state_t;

static mnnvl_status_t fail(void (*set_error)(mnnvl_status_t, const char *), mnnvl_status_t s,
                           const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static mnnvl_status_t fail(void (*set_error)(mnnvl_status_t, const char *), mnnvl_status_t s,
                           const char *fmt, ...)
{
    char sentence[512] = "mpi bootstrap: ";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sentence + strlen(sentence), sizeof(sentence) - strlen(sentence), fmt, ap);
    va_end(ap);
    set_error(s, sentence);
    return s;
}

static void mpi_error_text(int code, char *buf, size_t len)
{
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, text, &n) != MPI_SUCCESS)
        snprintf(text, sizeof(text), "MPI error %d", code);
    snprintf(buf, len, "%s", text);
}

/* Polls a request until it completes, the deadline passes or abort() is called. Spins a
 * little, then yields between polls: CI machines run many ranks per core. */
static mnnvl_status_t wait_request(mpi_state_t *st, MPI_Request *req, const char *what)
{
    uint64_t start = mnnvl_now_ms();
    for (unsigned spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            int cls = 0;
            mpi_error_text(rc, text, sizeof(text));
            MPI_Error_class(rc, &cls);
            return fail(st->set_error,
                        cls == MPI_ERR_TRUNCATE ? MNNVL_ERR_MISMATCH : MNNVL_ERR_BOOTSTRAP,
                        "%s on rank %d failed: %s", what, st->bs.rank, text);
        }
        if (done)
            return MNNVL_SUCCESS;
        if (atomic_load(&st->aborted)) {
            st->broken = 1;
            return fail(st->set_error, MNNVL_ERR_ABORTED,
                        "%s on rank %d was interrupted: the communicator was aborted", what,
                        st->bs.rank);
        }
        int waited = (int)(mnnvl_now_ms() - start);
        if (waited >= st->timeout_ms) {
            st->broken = 1;
            return fail(st->set_error, MNNVL_ERR_TIMEOUT,
                        "%s on rank %d of %d timed out after %d ms (timeout_ms %d): a rank did "
                        "not call it; MPI cannot tell this plugin which",
                        what, st->bs.rank, st->bs.size, waited, st->timeout_ms);
        }
        if (spins > 1000) {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
        } else if (spins > 100) {
            sched_yield();
        }
    }
}

static mnnvl_status_t check_usable(mpi_state_t *st, const char *what)
{
    if (atomic_load(&st->aborted))
        return fail(st->set_error, MNNVL_ERR_ABORTED, "%s on rank %d: the communicator was aborted",
                    what, st->bs.rank);
    if (st->broken)
        return fail(st->set_error, MNNVL_ERR_BOOTSTRAP,
                    "%s on rank %d: an earlier collective timed out or was aborted and is "
                    "still pending in MPI; destroy this communicator",
                    what, st->bs.rank);
    return MNNVL_SUCCESS;
}

/* Starts a non-blocking collective (the call's return code) and waits for it. */
static mnnvl_status_t finish(mpi_state_t *st, int rc, MPI_Request *req, const char *what)
{
    if (rc != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        mpi_error_text(rc, text, sizeof(text));
        return fail(st->set_error, MNNVL_ERR_BOOTSTRAP, "%s on rank %d could not start: %s", what,
                    st->bs.rank, text);
    }
    return wait_request(st, req, what);
}

static mnnvl_status_t mpi_allgather(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                    size_t bytes)
{
    mpi_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "allgather of %zu bytes", bytes);
    mnnvl_status_t s = check_usable(st, what);
    if (s != MNNVL_SUCCESS)
        return s;
    if (bytes > INT_MAX)
        return fail(st->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "%s: MPI counts stop at %d bytes per rank", what, INT_MAX);
    MPI_Request req;
    int rc = bytes == 0 ? MPI_Ibarrier(st->comm, &req)
                        : MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE,
                                         st->comm, &req);
    return finish(st, rc, &req, what);
}

static mnnvl_status_t mpi_broadcast(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root)
{
    mpi_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "broadcast of %zu bytes from rank %d", bytes, root);
    mnnvl_status_t s = check_usable(st, what);
    if (s != MNNVL_SUCCESS)
        return s;
    if (bytes > INT_MAX || root < 0 || root >= bs->size)
        return fail(st->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "%s: the root is not in 0..%d or the size exceeds MPI's %d", what, bs->size - 1,
                    INT_MAX);
    MPI_Request req;
    return finish(st, MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, st->comm, &req), &req, what);
}

static mnnvl_status_t mpi_barrier(mnnvl_bootstrap_t *bs)
{
    mpi_state_t *st = bs->state;
    mnnvl_status_t s = check_usable(st, "barrier");
    if (s != MNNVL_SUCCESS)
        return s;
    MPI_Request req;
    return finish(st, MPI_Ibarrier(st->comm, &req), &req, "barrier");
}

static void mpi_abort(mnnvl_bootstrap_t *bs)
{
    mpi_state_t *st = bs->state;
    atomic_store(&st->aborted, 1);
}

static void mpi_destroy(mnnvl_bootstrap_t *bs)
{
    if (!bs)
        return;
    mpi_state_t *st = bs->state;
    int finalized = 0;
    MPI_Finalized(&finalized);
    /* Freeing marks the communicator for release once pending operations end, so it is
     * safe after a timeout too. */
    if (!finalized && st->comm != MPI_COMM_NULL)
        MPI_Comm_free(&st->comm);
    free(st);
}

static mnnvl_status_t wrap_comm(mpi_state_t *parent, MPI_Comm dup, int timeout_ms,
                                mnnvl_bootstrap_t **out);

/* MPI_Comm_create_group: collective over the members alone, in their order. It blocks (MPI
 * has no non-blocking form to bound by timeout_ms): for a split the library calls it right
 * after two rounds on the parent that every member passed, so the members are there; for a
 * shrink a survivor that never calls it leaves the others blocked, and a dead process ends
 * the whole job under mpirun anyway (see the top of this file). */
static mnnvl_status_t mpi_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                                mnnvl_bootstrap_t **out)
{
    mpi_state_t *st = bs->state;
    *out = NULL;
    MPI_Group all = MPI_GROUP_NULL, members = MPI_GROUP_NULL;
    MPI_Comm sub = MPI_COMM_NULL;
    int rc = MPI_Comm_group(st->comm, &all);
    if (rc == MPI_SUCCESS)
        rc = MPI_Group_incl(all, child->size, child->members, &members);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_create_group(st->comm, members, (int)(child->tag & 0x7fff), &sub);
    if (members != MPI_GROUP_NULL)
        MPI_Group_free(&members);
    if (all != MPI_GROUP_NULL)
        MPI_Group_free(&all);
    if (rc != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        mpi_error_text(rc, text, sizeof(text));
        return fail(st->set_error, MNNVL_ERR_BOOTSTRAP, "child of %d ranks on rank %d: %s",
                    child->size, bs->rank, text);
    }
    return wrap_comm(st, sub, st->timeout_ms, out);
}

static const mnnvl_bootstrap_ops_t mpi_ops = {
    .size = sizeof(mnnvl_bootstrap_ops_t),
    .name = "mpi",
    .allgather = mpi_allgather,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .child = mpi_child,
    .abort = mpi_abort,
    .destroy = mpi_destroy,
};

static mnnvl_status_t wrap_comm(mpi_state_t *like, MPI_Comm comm, int timeout_ms,
                                mnnvl_bootstrap_t **out)
{
    mpi_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        MPI_Comm_free(&comm);
        return fail(like->set_error, MNNVL_ERR_NO_MEMORY, "out of memory");
    }
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    st->comm = comm;
    atomic_init(&st->aborted, 0);
    st->timeout_ms = timeout_ms;
    st->set_error = like->set_error;
    st->log = like->log;
    mnnvl_bootstrap_t *bs = &st->bs;
    bs->ops = &mpi_ops;
    MPI_Comm_rank(comm, &bs->rank);
    MPI_Comm_size(comm, &bs->size);
    bs->state = st;
    *out = bs;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Create                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* A config key ("" when unset); MNNVL_<KEY> in the environment is applied by the config. */
static const char *setting(const mnnvl_bootstrap_args_t *args, const char *key)
{
    const char *v = args->config_get(args->config, key);
    return v ? v : "";
}

static void finalize_at_exit(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}

/* Open MPI's own components are shared objects that need libmpi's symbols globally; a
 * plugin loaded RTLD_LOCAL would hide them, so libmpi is promoted to RTLD_GLOBAL. */
static void make_mpi_global(void)
{
    Dl_info info;
    if (dladdr((void *)MPI_Init, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

static mnnvl_status_t ensure_initialized(const mnnvl_bootstrap_args_t *args)
{
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized)
        return fail(args->set_error, MNNVL_ERR_INVALID_USAGE,
                    "MPI was already finalized in this process");
    if (initialized)
        return MNNVL_SUCCESS;
    if (strcmp(setting(args, "mpi_init"), "1") != 0)
        return fail(args->set_error, MNNVL_ERR_INVALID_USAGE,
                    "MPI is not initialized: call MPI_Init in the application first, or set "
                    "mpi_init=1 (MNNVL_MPI_INIT=1) to let the plugin initialize and finalize "
                    "it");
    make_mpi_global();
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
        return fail(args->set_error, MNNVL_ERR_BOOTSTRAP, "MPI_Init_thread failed (%d)", rc);
    atexit(finalize_at_exit);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t user_comm(const mnnvl_bootstrap_args_t *args, MPI_Comm *comm)
{
    const char *handle = setting(args, "mpi_comm");
    *comm = MPI_COMM_WORLD;
    if (!handle[0])
        return MNNVL_SUCCESS;
    char *end;
    long f = strtol(handle, &end, 10);
    if (*end || end == handle || f < INT_MIN || f > INT_MAX)
        return fail(args->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "mpi_comm '%s' is not a Fortran communicator handle (an integer, e.g. "
                    "from mpi4py's comm.py2f())",
                    handle);
    *comm = MPI_Comm_f2c((MPI_Fint)f);
    if (*comm == MPI_COMM_NULL)
        return fail(args->set_error, MNNVL_ERR_INVALID_ARGUMENT, "mpi_comm %ld is MPI_COMM_NULL",
                    f);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t mpi_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    if (!args || !out || args->abi_version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return MNNVL_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (args->job_key && args->job_key[0])
        return fail(args->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "job_key is set, but bootstrap=mpi cannot prove one: the MPI job is the "
                    "trust boundary (whoever mpirun starts is trusted); unset job_key "
                    "(MNNVL_JOB_KEY) for mpi, or use bootstrap=tcp, ucx or ofi, which "
                    "authenticate every connection with it");
    mnnvl_status_t s = ensure_initialized(args);
    MPI_Comm comm = MPI_COMM_NULL;
    if (s == MNNVL_SUCCESS)
        s = user_comm(args, &comm);
    if (s != MNNVL_SUCCESS)
        return s;
    int rank = -1, size = -1;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return fail(args->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "mpi_comm '%s' is not a valid communicator", setting(args, "mpi_comm"));
    if (rank != args->rank || size != args->size)
        return fail(args->set_error, MNNVL_ERR_INVALID_ARGUMENT,
                    "asked for rank %d of %d, but the MPI communicator (mpi_comm '%s') has "
                    "this process as rank %d of %d",
                    args->rank, args->size, setting(args, "mpi_comm"), rank, size);
    /* A duplicate keeps our traffic apart from the application's. */
    mpi_state_t tmp = {
        .set_error = args->set_error, .log = args->log, .timeout_ms = args->timeout_ms};
    tmp.bs.rank = rank;
    tmp.bs.size = size;
    atomic_init(&tmp.aborted, 0);
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request req;
    s = finish(&tmp, MPI_Comm_idup(comm, &dup, &req), &req, "MPI_Comm_idup of mpi_comm");
    if (s != MNNVL_SUCCESS)
        return s;
    return wrap_comm(&tmp, dup, args->timeout_ms, out);
}

EXPORT const mnnvl_bootstrap_plugin_t mnnvl_bootstrap_plugin_v2 = {
    .version = MNNVL_BOOTSTRAP_ABI_VERSION,
    .size = sizeof(mnnvl_bootstrap_plugin_t),
    .name = "mpi",
    .create = mpi_create,
};
