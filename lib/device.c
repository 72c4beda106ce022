/* The GPU side of a communicator: context, handle-type agreement in one round, and the
 * host-mapped control block that kernels report errors into. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "comm_state.h"
#include "config.h"
#include "device.h"
#include "device_state.h"
#include "error.h"
#include "fault.h"
#include "hash.h"
#include "log.h"

mnnvl_status_t mnnvl_device_enter(mnnvl_comm_t comm, const char *what)
{
    MNNVL_CU(what, comm->dev->cu->cuCtxSetCurrent(comm->dev->ctx));
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_device_launched(int err, const char *what)
{
    if (err != 0)
        return mnnvl_error(MNNVL_ERR_CUDA, "%s: kernel launch failed with CUDA runtime error %d",
                           what, err);
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_device_check_not_capturing(mnnvl_comm_t comm, const char *what)
{
    const mnnvl_cuda_driver_t *cu = comm->dev->cu;
    /* Querying the legacy stream fails with STREAM_CAPTURE_IMPLICIT while a blocking stream
     * captures; the per-thread stream covers code built for it. */
    CUstream streams[] = {CU_STREAM_LEGACY, CU_STREAM_PER_THREAD};
    for (size_t i = 0; i < 2; i++) {
        CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
        CUresult res = cu->cuStreamIsCapturing(streams[i], &status);
        if (res == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT || status != CU_STREAM_CAPTURE_STATUS_NONE)
            return mnnvl_error(MNNVL_ERR_GRAPH_CAPTURE,
                               "%s: a CUDA graph is being captured on device %d; collective "
                               "setup calls allocate and synchronize, so make them before "
                               "capture (they are cached) and call the operations inside it",
                               what, comm->device);
    }
    return MNNVL_SUCCESS;
}

/* A real allocation with a FABRIC handle, exported: the device attribute alone can say 1
 * where the IMEX channel is missing (CUDA_ERROR_NOT_PERMITTED on our H200 machines). */
static int probe_fabric(const mnnvl_cuda_driver_t *cu, CUdevice dev)
{
    int supported = 0;
    if (cu->cuDeviceGetAttribute(&supported, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED,
                                 dev) != CUDA_SUCCESS ||
        !supported)
        return 0;
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .requestedHandleTypes = CU_MEM_HANDLE_TYPE_FABRIC,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev}};
    size_t gran = 0;
    if (cu->cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
        CUDA_SUCCESS)
        return 0;
    CUmemGenericAllocationHandle handle;
    CUresult res = cu->cuMemCreate(&handle, gran, &prop, 0);
    if (res != CUDA_SUCCESS) {
        MNNVL_INFO("device %d: FABRIC allocation failed (%d): using another handle type", (int)dev,
                   (int)res);
        return 0;
    }
    CUmemFabricHandle fabric;
    res = cu->cuMemExportToShareableHandle(&fabric, handle, CU_MEM_HANDLE_TYPE_FABRIC, 0);
    cu->cuMemRelease(handle);
    return res == CUDA_SUCCESS;
}

/* Hostname plus boot id: two containers on one host share the boot id but may differ in
 * hostname and cannot share abstract sockets unless they share a network namespace, so
 * both must match for POSIX fds. */
static uint64_t host_identity(void)
{
    char buf[512] = {0};
    gethostname(buf, 255);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        size_t used = strlen(buf);
        if (!fgets(buf + used, (int)(sizeof(buf) - used), f))
            buf[used] = 0;
        fclose(f);
    }
    return mnnvl_hash_str(MNNVL_HASH_SEED, buf);
}

typedef struct rank_info {
    uint64_t host;
    int32_t pid;
    int32_t fabric;
    int32_t device; /* the ordinal: comparable between ranks of one process only */
    int32_t sms;
} rank_info_t;

/* The SMs this rank's kernels may fill. Kernels of different processes time-slice a GPU, but
 * kernels of one process (one context) run side by side: when k ranks of this communicator
 * are threads of one process on one device, a spin-waiting kernel of one can hold every SM
 * while it waits for another's kernel, which then never becomes resident (seen on the H200:
 * two thread ranks' all-reduces timed out). So each of the k gets a k-th of the SMs and the
 * k kernels fit side by side (with room to spare: see below). */
static int sm_share(const rank_info_t *info, int size, int rank)
{
    int sharing = 0;
    for (int r = 0; r < size; r++)
        sharing += info[r].host == info[rank].host && info[r].pid == info[rank].pid &&
                   info[r].device == info[rank].device;
    if (sharing <= 1)
        return info[rank].sms;
    /* One SM per sharer stays free, for the one-block kernels (device barrier, routing) a
     * thread that is ahead enqueues beside the others' full grids. */
    int share = (info[rank].sms - sharing) / sharing;
    return share > 0 ? share : 1;
}

/* Decides the handle type from every rank's probe, as config handle_type asks. */
static mnnvl_status_t choose_handle_type(mnnvl_comm_t comm, const rank_info_t *info)
{
    const char *want = mnnvl_config_value(comm->config, "handle_type");
    int all_fabric = 1, one_host = 1;
    char lacking[256] = "";
    for (int r = 0; r < comm->size; r++) {
        one_host &= info[r].host == info[0].host;
        if (!info[r].fabric) {
            size_t used = strlen(lacking);
            if (used + 16 < sizeof(lacking))
                snprintf(lacking + used, sizeof(lacking) - used, "%s%d", all_fabric ? "" : " ", r);
            all_fabric = 0;
        }
    }
    if (strcmp(want, "fabric") == 0 || (strcmp(want, "auto") == 0 && all_fabric)) {
        if (!all_fabric)
            return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                               "comm_create: handle_type=fabric but ranks %s cannot allocate "
                               "FABRIC memory (no IMEX channel?)",
                               lacking);
        comm->dev->fabric = 1;
        return MNNVL_SUCCESS;
    }
    if (!one_host)
        return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                           "comm_create: the ranks span several hosts, which needs FABRIC "
                           "handles, but ranks %s cannot allocate FABRIC memory (check the IMEX "
                           "channel, /dev/nvidia-caps-imex-channels); POSIX fds only work "
                           "within one host",
                           lacking);
    comm->dev->fabric = 0;
    return MNNVL_SUCCESS;
}

/* The recommended allocation granularity for one handle type. */
static mnnvl_status_t query_granularity(const mnnvl_device_state_t *d, int fabric, size_t *out)
{
    CUmemAllocationProp prop = {
        .type = CU_MEM_ALLOCATION_TYPE_PINNED,
        .requestedHandleTypes =
            fabric ? CU_MEM_HANDLE_TYPE_FABRIC : CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
        .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = d->cu_device}};
    CUresult res =
        d->cu->cuMemGetAllocationGranularity(out, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
    return res == CUDA_SUCCESS
               ? MNNVL_SUCCESS
               : mnnvl_cuda_error(res, "comm_create", "cuMemGetAllocationGranularity");
}

/* Loads every kernel of the library into this device's context now. Under CUDA's lazy
 * loading a kernel's first launch may wait for every kernel running in the context, and
 * ranks that are threads of one process share it: a thread's first launch of a kernel would
 * wait for a peer thread's collective kernel that waits for this thread (all-reduces of 4
 * thread ranks timed out so on the H200). Here no kernel of this communicator waits yet, and
 * a later communicator on the device finds every kernel loaded (this is then cheap). */
static mnnvl_status_t load_kernels(const mnnvl_comm_t comm)
{
    int (*const loaders[])(void) = {mnnvl_load_barrier_kernels, mnnvl_load_reset_kernels,
                                    mnnvl_load_allreduce_kernels, mnnvl_load_moe_kernels,
                                    mnnvl_load_dcp_kernels};
    for (size_t i = 0; i < sizeof(loaders) / sizeof(loaders[0]); i++) {
        int err = loaders[i]();
        if (err != 0)
            return mnnvl_error(MNNVL_ERR_CUDA,
                               "comm_create: loading libmnnvl's kernels on device %d failed "
                               "with CUDA runtime error %d (209 means this build has no kernel "
                               "image for the GPU's architecture: see configure "
                               "--with-cuda-arch)",
                               comm->device, err);
    }
    return MNNVL_SUCCESS;
}

/* Local part of setup: context, capture check, probe, control block, and the granularity
 * of each handle type this rank may end up using (gran[0] POSIX fds, gran[1] FABRIC), so
 * that nothing can fail on one rank alone once the ranks have chosen. */
static mnnvl_status_t setup_local(mnnvl_comm_t comm, rank_info_t *mine, size_t gran[2])
{
    mnnvl_device_state_t *d = comm->dev;
    MNNVL_CHECK(mnnvl_cuda_load(&d->cu));
    int count = 0;
    MNNVL_CU("comm_create", d->cu->cuDeviceGetCount(&count));
    if (comm->device >= count)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_create: rank %d asked for device %d but this process sees %d "
                           "devices",
                           comm->rank, comm->device, count);
    MNNVL_CU("comm_create", d->cu->cuDeviceGet(&d->cu_device, comm->device));
    MNNVL_CU("comm_create", d->cu->cuDevicePrimaryCtxRetain(&d->ctx, d->cu_device));
    MNNVL_CHECK(mnnvl_device_enter(comm, "comm_create"));
    MNNVL_CHECK(mnnvl_device_check_not_capturing(comm, "comm_create"));
    MNNVL_CHECK(load_kernels(comm));
    const char *want = mnnvl_config_value(comm->config, "handle_type");
    mine->fabric = strcmp(want, "posix-fd") != 0 && probe_fabric(d->cu, d->cu_device);
    mine->host = host_identity();
    mine->pid = (int32_t)getpid();
    mine->device = comm->device;
    MNNVL_CU("comm_create",
             d->cu->cuDeviceGetAttribute(&mine->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                         d->cu_device));
    if (strcmp(want, "fabric") != 0)
        MNNVL_CHECK(query_granularity(d, 0, &gran[0]));
    if (mine->fabric)
        MNNVL_CHECK(query_granularity(d, 1, &gran[1]));
    void *host = NULL;
    MNNVL_CU("comm_create",
             d->cu->cuMemHostAlloc(&host, sizeof(mnnvl_device_control_t),
                                   CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
    d->control = host;
    memset(d->control, 0, sizeof(*d->control));
    MNNVL_CU("comm_create", d->cu->cuMemHostGetDevicePointer(&d->control_dev, host, 0));
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_device_setup(mnnvl_comm_t comm)
{
    comm->dev = calloc(1, sizeof(*comm->dev));
    rank_info_t mine = {0};
    size_t gran[2] = {0, 0};
    mnnvl_status_t st = comm->dev ? setup_local(comm, &mine, gran)
                                  : mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_create: out of memory");
    rank_info_t *info = calloc((size_t)comm->size, sizeof(*info));
    pid_t *pids = calloc((size_t)comm->size, sizeof(pid_t));
    if (st == MNNVL_SUCCESS && (!info || !pids))
        st = mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_create: out of memory");
    /* The one round: each rank's status travels with its probe, so a rank that failed
     * above makes every rank fail here instead of leaving them waiting for it. */
    st = mnnvl_agree_gather(comm->bs, st, &mine, info, sizeof(mine), "comm_create");
    if (st == MNNVL_SUCCESS) {
        for (int r = 0; r < comm->size; r++)
            pids[r] = info[r].pid;
        st = choose_handle_type(comm, info); /* every rank decides alike from the same data */
        if (comm->dev)
            comm->dev->sms = sm_share(info, comm->size, comm->rank);
    }
    free(info);
    if (!comm->dev) {
        free(pids);
        return st;
    }
    comm->dev->pids = pids;
    MNNVL_CHECK(st);
    comm->handle_type = comm->dev->fabric ? "fabric" : "posix-fd";
    comm->dev->granularity = gran[comm->dev->fabric];
    comm->dev->timeout_ns = (uint64_t)comm->timeout_ms * 1000000ull;
    return MNNVL_SUCCESS;
}

void mnnvl_device_teardown(mnnvl_comm_t comm)
{
    mnnvl_device_state_t *d = comm->dev;
    if (!d)
        return;
    if (d->ctx)
        d->cu->cuCtxSetCurrent(d->ctx);
    if (d->control)
        d->cu->cuMemFreeHost(d->control);
    if (d->ctx)
        d->cu->cuDevicePrimaryCtxRelease(d->cu_device);
    free(d->pids);
    free(d);
    comm->dev = NULL;
}

static const char *op_name(int op)
{
    switch (op) {
    case MNNVL_OP_DEVICE_BARRIER: return "device barrier";
    case MNNVL_OP_ALLREDUCE: return "all-reduce";
    case MNNVL_OP_MOE_DISPATCH: return "MoE dispatch";
    case MNNVL_OP_MOE_COMBINE: return "MoE combine";
    case MNNVL_OP_DCP_A2A: return "DCP all-to-all";
    case MNNVL_OP_DCP_LSE_REDUCE: return "DCP all-to-all LSE reduce";
    default: return "kernel";
    }
}

mnnvl_status_t mnnvl_device_async_error(mnnvl_comm_t comm, mnnvl_status_t *async_error)
{
    uint64_t word = *(volatile uint64_t *)&comm->dev->control->error;
    *async_error = MNNVL_SUCCESS;
    if (word == 0)
        return MNNVL_SUCCESS;
    int status, op, peer;
    mnnvl_error_unpack(word, &status, &op, &peer);
    *async_error = (mnnvl_status_t)status;
    if (status == MNNVL_ERR_PEER_LOST)
        mnnvl_fault_describe(comm, op_name(op), op, peer);
    else if (status == MNNVL_ERR_TIMEOUT)
        mnnvl_error(*async_error,
                    "%s: rank %d waited more than timeout_ms=%d for peer %d; that rank stopped "
                    "calling it or died",
                    op_name(op), comm->rank, comm->timeout_ms, peer);
    else
        mnnvl_error(*async_error, "%s: rank %d's kernel stopped with %s (peer %d)", op_name(op),
                    comm->rank, mnnvl_status_string(*async_error), peer);
    return MNNVL_SUCCESS;
}

void mnnvl_device_abort(mnnvl_comm_t comm)
{
    *(volatile int32_t *)&comm->dev->control->abort = 1;
}
