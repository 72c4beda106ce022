/* The one kernel-side timeout and abort helper, and the memory-ordering primitives that
 * cross GPUs. Every spin-wait in kernels/ goes through mnnvl_wait_should_stop(): it polls
 * the host's abort flag and the clock, and on expiry records {status, op, peer} in the
 * communicator's control block and tells the caller to exit. It never traps: a trap would
 * destroy the CUDA context and with it the process's other work. */
#ifndef MNNVL_DEVICE_WAIT_CUH
#define MNNVL_DEVICE_WAIT_CUH

#include <stdint.h>

#include "kernels/launch.h"
#include "mnnvl.h"

static __device__ __forceinline__ uint64_t mnnvl_globaltimer_ns(void)
{
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

static __device__ __forceinline__ uint32_t mnnvl_load_acquire_sys(const uint32_t *p)
{
    uint32_t v;
    asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

static __device__ __forceinline__ void mnnvl_store_release_sys(uint32_t *p, uint32_t v)
{
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

/* Records the first error of the communicator. Two blocks racing may both write; each
 * writes a whole record in one 64-bit store, so the host sees one of them intact. */
static __device__ __forceinline__ void mnnvl_record_error(mnnvl_device_control_t *control,
                                                          int status, int op, int peer)
{
    volatile uint64_t *word = &control->error;
    if (*word == 0)
        *word = mnnvl_error_pack(status, op, peer);
    __threadfence_system();
}

/* State of one waiting thread. */
typedef struct mnnvl_waiter {
    uint64_t start_ns;
    uint32_t spins;
} mnnvl_waiter_t;

static __device__ __forceinline__ mnnvl_waiter_t mnnvl_wait_begin(void)
{
    mnnvl_waiter_t w = {mnnvl_globaltimer_ns(), 0};
    return w;
}

/* Call once per failed poll. Returns 1 when the caller must stop waiting: the host raised
 * the abort flag, another thread already recorded an error, or timeout_ns passed (which
 * this call records as TIMEOUT against `peer`). The host-mapped words and the clock are
 * read only every 256 polls: they cost a PCIe round trip. */
static __device__ __forceinline__ int mnnvl_wait_should_stop(const mnnvl_wait_params_t *p,
                                                             mnnvl_waiter_t *w, int op, int peer)
{
    if ((++w->spins & 255u) != 0)
        return 0;
    volatile mnnvl_device_control_t *control = p->control;
    if (control->abort) {
        mnnvl_record_error(p->control, MNNVL_ERR_ABORTED, op, peer);
        return 1;
    }
    if (control->error != 0)
        return 1;
    if (mnnvl_globaltimer_ns() - w->start_ns > p->timeout_ns) {
        mnnvl_record_error(p->control, MNNVL_ERR_TIMEOUT, op, peer);
        return 1;
    }
    return 0;
}

#endif
