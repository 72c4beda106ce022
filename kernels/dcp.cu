/* Decode-context-parallel (Helix) all-to-all on the symmetric workspace: the transpose of
 * the cp axis, and the same exchange fused with the LSE-weighted merge of the partials.
 *
 * One kernel per call, `channels` blocks; block c owns the entries e with e % channels == c
 * and talks only to block c of every rank, so no block ever waits for another block of its
 * own rank. Block c of rank q, in call k (epoch k, parity b = k & 1):
 *   1. push: for every rank r, the rows [e, r, :] of partial_o and stats of its entries go
 *      straight into r's receive slots [b][q][e] (16-byte stores through the unified VA);
 *   2. signal: a system-scope fence, then a release store of (k << 32 | entries) into flag
 *      [b][q][c] of every rank r;
 *   3. wait: acquire flag [b][p][c] of its own workspace until it carries epoch k, for every
 *      source p (bounded: timeout_ms and the abort flag); an entry count different from its
 *      own is MISMATCH (recorded against that peer, on every rank since every rank sees a
 *      peer that differs), and nothing is read then;
 *   4. read its slots [b][p][e] into the caller's outputs, or merge them (lse_reduce);
 *   5. advance its own epoch counter in device memory (so graph replays advance it too).
 * Regions are laid out for max_entries and every rank reads and writes only rows below its
 * own entry count (<= max_entries, checked on the host), so a disagreement can never make a
 * rank read or write out of bounds.
 *
 * Why two receive buffers are enough: rank p writes buffer b(k) = k & 1 of rank r again in
 * call k+2. p starts call k+2 only after its call k+1 kernel ended (calls on a handle are
 * stream-ordered), which required r's call-(k+1) flag; r raises that flag only in its call
 * k+1 kernel, which starts after its call-k kernel, the last reader of buffer b(k), ended.
 * The same chain holds per channel, and for the flags themselves: flag [b][p][c] is rewritten
 * at call k+2, after r's block c has passed its wait of call k. Epochs only grow and waits
 * compare them with a signed difference, so 2^32 calls wrap safely.
 *
 * Every block waits on other ranks' blocks, so the grid is at most the smallest SM count of
 * the ranks (the host chooses `channels` so). Results are deterministic: the transpose moves
 * bytes; the merge sums sources in ascending rank order in fp32.
 *
 * Fault tolerance (FT = true, kernels/fault.cuh): a transpose or merge without one rank is a
 * wrong answer, so a block reads (and writes outputs) only when every rank arrived. A dead
 * rank in the mask at the start: the block still pushes to and signals the live ranks (a
 * survivor that has not heard of the death then blames the dead rank, not this one), records
 * PEER_LOST against the dead rank, waits for nobody and writes no output. A death found
 * while waiting ends the wait (the peer marked, PEER_LOST recorded) and the block writes
 * nothing. Entries of blocks that did complete hold the right values. The epochs advance as
 * always, so the flags stay in step among the live ranks. FT = false is the code without
 * fault tolerance. */
#include <math.h>

#include "kernels/device_wait.cuh"
#include "kernels/elem.cuh"
#include "kernels/fault.cuh"
#include "kernels/load.cuh"

#define FULL_MASK 0xffffffffu

enum { THREADS = 512, WARPS = THREADS / 32 };

static __device__ __forceinline__ void store_release_sys_u64(uint64_t *p, uint64_t v)
{
    asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

static __device__ __forceinline__ uint64_t load_acquire_sys_u64(const uint64_t *p)
{
    uint64_t v;
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

/* Flag [parity][src][channel] in `owner`'s workspace. */
static __device__ __forceinline__ uint64_t *flag_at(const mnnvl_dcp_args_t &a, int owner,
                                                    uint32_t parity, int src, int channel)
{
    uint64_t *flags = reinterpret_cast<uint64_t *>(a.peers[owner] + a.flags_offset);
    return flags + ((size_t)parity * a.cp_size + src) * MNNVL_DCP_CHANNELS + channel;
}

/* Receive slot [parity][src][entry] in `owner`'s workspace. */
static __device__ __forceinline__ uint4 *slot_at(const mnnvl_dcp_args_t &a, int owner,
                                                 uint32_t parity, int src, int entry)
{
    uint4 *slots = reinterpret_cast<uint4 *>(a.peers[owner] + a.data_offset);
    return slots + (((size_t)parity * a.cp_size + src) * a.max_entries + entry) * a.row_vectors;
}

/* Entries of this call that channel c owns. */
static __device__ __forceinline__ int local_entries(const mnnvl_dcp_args_t &a, int c)
{
    return a.entries > c ? (a.entries - c + a.channels - 1) / a.channels : 0;
}

/* Stats vector k (lanes 4k .. 4k+3) of one (entry, rank) row, zero past stats_lanes. */
static __device__ __forceinline__ uint4 stats_vector(const float *row, int lanes, int k)
{
    float f[4];
#pragma unroll
    for (int i = 0; i < 4; i++)
        f[i] = 4 * k + i < lanes ? row[4 * k + i] : 0.f;
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]),
                      __float_as_uint(f[3]));
}

/* Step 1: one warp per (destination, entry), lanes over the row's vectors. Destinations
 * start after this rank so that not every rank hits the same peer first. */
static __device__ void push(const mnnvl_dcp_args_t &a, int c, int n, uint32_t parity)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int cp = a.cp_size, ov = a.o_vectors;
    const uint4 *in = static_cast<const uint4 *>(a.in_o);
    for (int u = warp; u < cp * n; u += WARPS) {
        const int peer = (a.rank + 1 + u / n) % cp;
        const int e = c + (u % n) * a.channels;
        const size_t row = (size_t)e * cp + peer;
        uint4 *dst = slot_at(a, peer, parity, a.rank, e);
        for (int v = lane; v < a.row_vectors; v += 32) {
            if (v < ov)
                dst[v] = in[row * ov + v];
            else
                dst[v] = stats_vector(a.in_stats + row * a.stats_lanes, a.stats_lanes, v - ov);
        }
    }
}

/* Steps 2 and 3. Returns whether every source arrived with this rank's entry count. */
static __device__ bool signal_and_wait(const mnnvl_dcp_args_t &a, int c, uint32_t epoch)
{
    __shared__ int all_ok;
    const uint32_t parity = epoch & 1u;
    const int op = a.reduce ? MNNVL_OP_DCP_LSE_REDUCE : MNNVL_OP_DCP_A2A;
    if (threadIdx.x == 0)
        all_ok = 1;
    __syncthreads();
    if (threadIdx.x == 0)
        __threadfence_system(); /* every thread's rows (fences are cumulative) before the flags */
    __syncthreads();
    const uint64_t word = (uint64_t)epoch << 32 | (uint32_t)a.entries;
    for (int r = threadIdx.x; r < a.cp_size; r += blockDim.x)
        store_release_sys_u64(flag_at(a, r, parity, a.rank, c), word);
    for (int p = threadIdx.x; p < a.cp_size; p += blockDim.x) {
        const uint64_t *flag = flag_at(a, a.rank, parity, p, c);
        mnnvl_waiter_t w = mnnvl_wait_begin();
        uint64_t seen;
        bool arrived = true;
        while ((int32_t)((uint32_t)((seen = load_acquire_sys_u64(flag)) >> 32) - epoch) < 0) {
            if (mnnvl_wait_should_stop(&a.wait, &w, op, p)) {
                arrived = false;
                break;
            }
        }
        if (!arrived) {
            all_ok = 0;
        } else if ((uint32_t)seen != (uint32_t)a.entries) {
            mnnvl_record_error(a.wait.control, MNNVL_ERR_MISMATCH, op, p);
            all_ok = 0;
        }
    }
    __syncthreads();
    return all_ok != 0;
}

/* The fault-tolerant steps 1-3 (FT = true): as push and signal_and_wait, without the dead
 * ranks. Separate functions, so that the kernel without fault tolerance calls the ones above
 * unchanged (its code stays identical, instruction for instruction). */
template <bool FT>
static __device__ void push_live(const mnnvl_dcp_args_t &a, int c, int n, uint32_t parity,
                                 unsigned long long dead)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int cp = a.cp_size, ov = a.o_vectors;
    const uint4 *in = static_cast<const uint4 *>(a.in_o);
    for (int u = warp; u < cp * n; u += WARPS) {
        const int peer = (a.rank + 1 + u / n) % cp;
        if (FT && mnnvl_ft_is_dead(dead, peer))
            continue;
        const int e = c + (u % n) * a.channels;
        const size_t row = (size_t)e * cp + peer;
        uint4 *dst = slot_at(a, peer, parity, a.rank, e);
        for (int v = lane; v < a.row_vectors; v += 32) {
            if (v < ov)
                dst[v] = in[row * ov + v];
            else
                dst[v] = stats_vector(a.in_stats + row * a.stats_lanes, a.stats_lanes, v - ov);
        }
    }
}

/* Steps 2 and 3. Returns whether every source arrived with this rank's entry count. */
template <bool FT>
static __device__ bool signal_and_wait_live(const mnnvl_dcp_args_t &a, int c, uint32_t epoch,
                                            unsigned long long dead)
{
    __shared__ int all_ok;
    const uint32_t parity = epoch & 1u;
    const int op = a.reduce ? MNNVL_OP_DCP_LSE_REDUCE : MNNVL_OP_DCP_A2A;
    if (threadIdx.x == 0)
        all_ok = 1;
    __syncthreads();
    if (threadIdx.x == 0)
        __threadfence_system(); /* every thread's rows (fences are cumulative) before the flags */
    __syncthreads();
    const uint64_t word = (uint64_t)epoch << 32 | (uint32_t)a.entries;
    for (int r = threadIdx.x; r < a.cp_size; r += blockDim.x)
        if (!FT || !mnnvl_ft_is_dead(dead, r))
            store_release_sys_u64(flag_at(a, r, parity, a.rank, c), word);
    if (FT && dead != 0) {
        if (c == 0 && threadIdx.x == 0)
            mnnvl_ft_report(&a.wait, op, dead);
        return false; /* every block returns alike: `dead` is the block's, all_ok unused */
    }
    for (int p = threadIdx.x; p < a.cp_size; p += blockDim.x) {
        const uint64_t *flag = flag_at(a, a.rank, parity, p, c);
        uint64_t seen;
        bool arrived = true;
        if (FT) {
            arrived = mnnvl_ft_wait(&a.wait, op, p, true, 1, [&] {
                seen = load_acquire_sys_u64(flag);
                return (int32_t)((uint32_t)(seen >> 32) - epoch) >= 0;
            });
        } else {
            mnnvl_waiter_t w = mnnvl_wait_begin();
            while ((int32_t)((uint32_t)((seen = load_acquire_sys_u64(flag)) >> 32) - epoch) < 0) {
                if (mnnvl_wait_should_stop(&a.wait, &w, op, p)) {
                    arrived = false;
                    break;
                }
            }
        }
        if (!arrived) {
            all_ok = 0;
        } else if ((uint32_t)seen != (uint32_t)a.entries) {
            mnnvl_record_error(a.wait.control, MNNVL_ERR_MISMATCH, op, p);
            all_ok = 0;
        }
    }
    __syncthreads();
    return all_ok != 0;
}

/* Step 4, transpose: one warp per (source, entry). Slots are read through L2 (__ldcg): peers
 * wrote them from other GPUs, which L1 does not see. */
static __device__ void read_transpose(const mnnvl_dcp_args_t &a, int c, int n, uint32_t parity)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int cp = a.cp_size, ov = a.o_vectors;
    uint4 *out = static_cast<uint4 *>(a.out_o);
    for (int u = warp; u < cp * n; u += WARPS) {
        const int p = u / n;
        const int e = c + (u % n) * a.channels;
        const size_t row = (size_t)e * cp + p;
        const uint4 *src = slot_at(a, a.rank, parity, p, e);
        for (int v = lane; v < a.row_vectors; v += 32) {
            const uint4 x = __ldcg(src + v);
            if (v < ov) {
                out[row * ov + v] = x;
            } else {
                float *stats = a.out_stats + row * a.stats_lanes;
                const uint32_t f[4] = {x.x, x.y, x.z, x.w};
                const int k = v - ov;
#pragma unroll
                for (int i = 0; i < 4; i++)
                    if (4 * k + i < a.stats_lanes)
                        stats[4 * k + i] = __uint_as_float(f[i]);
            }
        }
    }
}

/* Step 4, merge: one warp per entry. Lane p (and p + 32) computes source p's weight; every
 * lane then accumulates its vectors over the sources in ascending order. A weight of 0 (an
 * LSE of -inf, or one so far below the maximum that it underflows) skips the source, so a
 * NaN in an empty source's O cannot leak in. */
template <typename T>
static __device__ void read_merge(const mnnvl_dcp_args_t &a, int c, int n, uint32_t parity)
{
    constexpr int NV = vec<T>::NV;
    __shared__ float weights[WARPS][MNNVL_DCP_MAX_RANKS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int cp = a.cp_size, ov = a.o_vectors;
    uint4 *out = static_cast<uint4 *>(a.out_o);
    for (int j = warp; j < n; j += WARPS) {
        const int e = c + j * a.channels;
        float lse[2], top = -INFINITY;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int p = lane + 32 * h;
            lse[h] = -INFINITY;
            if (p < cp)
                lse[h] =
                    __ldcg(reinterpret_cast<const float *>(slot_at(a, a.rank, parity, p, e) + ov));
            top = fmaxf(top, lse[h]);
        }
#pragma unroll
        for (int d = 16; d > 0; d >>= 1)
            top = fmaxf(top, __shfl_xor_sync(FULL_MASK, top, d));
        const bool empty = top == -INFINITY;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int p = lane + 32 * h;
            if (p < cp)
                weights[warp][p] = empty || lse[h] == -INFINITY ? 0.f
                                   : a.lse_base2                ? exp2f(lse[h] - top)
                                                                : expf(lse[h] - top);
        }
        __syncwarp();
        float total = 0.f;
        for (int p = 0; p < cp; p++)
            total += weights[warp][p];
        for (int v = lane; v < ov; v += 32) {
            float acc[NV];
#pragma unroll
            for (int i = 0; i < NV; i++)
                acc[i] = 0.f;
            /* Ascending rank order, loads of up to four sources in flight. */
            for (int p0 = 0; p0 < cp; p0 += 4) {
                vec<T> x[4];
#pragma unroll
                for (int g = 0; g < 4; g++)
                    if (p0 + g < cp && weights[warp][p0 + g] != 0.f)
                        x[g].raw = __ldcg(slot_at(a, a.rank, parity, p0 + g, e) + v);
#pragma unroll
                for (int g = 0; g < 4; g++) {
                    if (p0 + g >= cp || weights[warp][p0 + g] == 0.f)
                        continue;
                    const float wp = weights[warp][p0 + g];
#pragma unroll
                    for (int i = 0; i < NV; i++)
                        acc[i] += wp * elem<T>::to_float(x[g].e[i]);
                }
            }
            vec<T> r;
#pragma unroll
            for (int i = 0; i < NV; i++)
                r.e[i] = elem<T>::from_float(empty ? 0.f : acc[i] / total);
            out[(size_t)e * ov + v] = r.raw;
        }
        if (lane == 0 && a.out_stats)
            a.out_stats[e] = empty ? -INFINITY : top + (a.lse_base2 ? log2f(total) : logf(total));
        __syncwarp(); /* weights[warp] is rewritten by the next entry */
    }
}

template <typename T, bool FT>
static __global__ void __launch_bounds__(THREADS) dcp_kernel(mnnvl_dcp_args_t a)
{
    const int c = blockIdx.x;
    const uint32_t epoch = a.control->epoch[c] + 1;
    const uint32_t parity = epoch & 1u;
    const int n = local_entries(a, c);
    const unsigned long long dead = FT ? mnnvl_ft_block_mask(&a.wait) : 0ull;
    if (FT)
        push_live<true>(a, c, n, parity, dead);
    else
        push(a, c, n, parity);
    if (FT ? signal_and_wait_live<true>(a, c, epoch, dead) : signal_and_wait(a, c, epoch)) {
        if (a.reduce)
            read_merge<T>(a, c, n, parity);
        else
            read_transpose(a, c, n, parity);
    }
    __syncthreads();
    if (threadIdx.x == 0)
        a.control->epoch[c] = epoch;
}

extern "C" int mnnvl_launch_dcp(const mnnvl_dcp_args_t *a, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    const int blocks = a->channels < 1 ? 1 : a->channels;
    const bool ft = a->wait.dead != NULL;
    switch (a->dtype) {
    case MNNVL_DTYPE_FP16:
        if (ft)
            dcp_kernel<__half, true><<<blocks, THREADS, 0, s>>>(*a);
        else
            dcp_kernel<__half, false><<<blocks, THREADS, 0, s>>>(*a);
        break;
    case MNNVL_DTYPE_BF16:
        if (ft)
            dcp_kernel<__nv_bfloat16, true><<<blocks, THREADS, 0, s>>>(*a);
        else
            dcp_kernel<__nv_bfloat16, false><<<blocks, THREADS, 0, s>>>(*a);
        break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int mnnvl_load_dcp_kernels(void)
{
    return mnnvl_load(dcp_kernel<__half, false>, dcp_kernel<__half, true>,
                      dcp_kernel<__nv_bfloat16, false>, dcp_kernel<__nv_bfloat16, true>);
}
