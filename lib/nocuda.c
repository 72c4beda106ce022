/* The GPU entry points of a build configured --without-cuda: every one fails with
 * UNSUPPORTED and says why, so scheduler hosts without a CUDA toolkit still get the
 * mapping, config, bootstrap and planning parts. */
#include "comm_state.h"
#include "device.h"
#include "device_barrier.h"
#include "error.h"
#include "fault_state.h"

static mnnvl_status_t no_cuda(const char *what)
{
    return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                       "%s: this libmnnvl was built without CUDA (configure --without-cuda); "
                       "only CPU-only communicators (device -1) work",
                       what);
}

mnnvl_status_t mnnvl_device_setup(mnnvl_comm_t comm)
{
    return no_cuda("comm_create");
}

void mnnvl_device_teardown(mnnvl_comm_t comm)
{
}

mnnvl_status_t mnnvl_device_async_error(mnnvl_comm_t comm, mnnvl_status_t *async_error)
{
    *async_error = MNNVL_SUCCESS;
    return MNNVL_SUCCESS;
}

void mnnvl_device_abort(mnnvl_comm_t comm)
{
}

mnnvl_status_t mnnvl_device_check_not_capturing(mnnvl_comm_t comm, const char *what)
{
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_device_barrier_setup(mnnvl_comm_t comm)
{
    return no_cuda("comm_create");
}

void mnnvl_device_barrier_teardown(mnnvl_comm_t comm)
{
}

mnnvl_status_t mnnvl_device_barrier(mnnvl_comm_t comm, void *stream)
{
    return no_cuda("comm_device_barrier");
}

/* Never called: a communicator of this build has no device side. */
void mnnvl_fault_device_setup(mnnvl_comm_t comm, mnnvl_fault_state_t *f)
{
}

void mnnvl_fault_device_teardown(mnnvl_comm_t comm, mnnvl_fault_state_t *f)
{
}

MNNVL_API mnnvl_status_t mnnvl_mem_alloc(mnnvl_comm_t comm, size_t bytes, mnnvl_mem_t *mem)
{
    if (mem)
        *mem = NULL;
    return no_cuda("mem_alloc");
}

MNNVL_API void *mnnvl_mem_base(const mnnvl_mem_t mem)
{
    return NULL;
}

MNNVL_API size_t mnnvl_mem_stride(const mnnvl_mem_t mem)
{
    return 0;
}

MNNVL_API size_t mnnvl_mem_size(const mnnvl_mem_t mem)
{
    return 0;
}

MNNVL_API void *mnnvl_mem_ptr(const mnnvl_mem_t mem, int peer)
{
    return NULL;
}

MNNVL_API mnnvl_status_t mnnvl_mem_retain(mnnvl_mem_t mem)
{
    return mem ? no_cuda("mem_retain") : MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_mem_release(mnnvl_mem_t mem)
{
    return mem ? no_cuda("mem_release") : MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_create(mnnvl_comm_t comm,
                                                const mnnvl_allreduce_params_t *params,
                                                mnnvl_allreduce_t *allreduce)
{
    if (allreduce)
        *allreduce = NULL;
    return no_cuda("allreduce_create");
}

MNNVL_API mnnvl_status_t mnnvl_allreduce(mnnvl_allreduce_t allreduce, const void *in, void *out,
                                         size_t count, void *stream)
{
    return no_cuda("allreduce");
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_residual_rmsnorm(
    mnnvl_allreduce_t allreduce, const void *in, const void *residual_in, const void *gamma,
    float eps, size_t tokens, size_t hidden, void *residual_out, void *norm_out, void *stream)
{
    return no_cuda("allreduce_residual_rmsnorm");
}

MNNVL_API mnnvl_status_t mnnvl_allreduce_destroy(mnnvl_allreduce_t allreduce)
{
    return allreduce ? no_cuda("allreduce_destroy") : MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_moe_a2a_params_t *params,
                                              mnnvl_moe_a2a_t *a2a)
{
    if (a2a)
        *a2a = NULL;
    return no_cuda("moe_a2a_create");
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_dispatch(mnnvl_moe_a2a_t a2a,
                                                const int32_t *token_selected_experts,
                                                const void *const *payloads, int local_num_tokens,
                                                int runtime_max_tokens, void *stream)
{
    return no_cuda("moe_a2a_dispatch");
}

MNNVL_API void *mnnvl_moe_a2a_recv_buffer(const mnnvl_moe_a2a_t a2a, int index)
{
    return NULL;
}

MNNVL_API const int32_t *mnnvl_moe_a2a_recv_counts(const mnnvl_moe_a2a_t a2a)
{
    return NULL;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_sanitize(mnnvl_moe_a2a_t a2a, int index, void *stream)
{
    return no_cuda("moe_a2a_sanitize");
}

MNNVL_API void *mnnvl_moe_a2a_combine_buffer(const mnnvl_moe_a2a_t a2a)
{
    return NULL;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_combine(mnnvl_moe_a2a_t a2a, const void *expert_out,
                                               void *out, void *stream)
{
    return no_cuda("moe_a2a_combine");
}

MNNVL_API const uint8_t *mnnvl_moe_a2a_lost_tokens(const mnnvl_moe_a2a_t a2a)
{
    return NULL;
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_retain(mnnvl_moe_a2a_t a2a)
{
    return no_cuda("moe_a2a_retain");
}

MNNVL_API mnnvl_status_t mnnvl_moe_a2a_destroy(mnnvl_moe_a2a_t a2a)
{
    return a2a ? no_cuda("moe_a2a_destroy") : MNNVL_SUCCESS;
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_dcp_a2a_params_t *params,
                                              mnnvl_dcp_a2a_t *dcp)
{
    if (dcp)
        *dcp = NULL;
    return no_cuda("dcp_a2a_create");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                       const void *stats, int entries, void *out_o, void *out_stats,
                                       void *stream)
{
    return no_cuda("dcp_a2a");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_lse_reduce(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                                  const void *stats, int entries, void *out,
                                                  void *out_lse, void *stream)
{
    return no_cuda("dcp_a2a_lse_reduce");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_destroy(mnnvl_dcp_a2a_t dcp)
{
    return dcp ? no_cuda("dcp_a2a_destroy") : MNNVL_SUCCESS;
}
