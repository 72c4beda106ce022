/* All-reduce on the symmetric workspace: one-shot and two-shot, both Lamport-style.
 *
 * Lamport buffers: every slot starts as the element type's negative zero, which real data
 * never holds (inputs' -0 become +0 before they are sent, and so do reduced values, since a
 * sum that rounds to -0 would otherwise look empty). A reader polls its own, local buffer
 * until no element of a 16-byte vector is -0; no flag or barrier is needed. Every slot is
 * read by exactly one thread, which writes -0 back right after reading it, in the same pass
 * (no separate clearing pass over memory). Three buffers rotate per call (call k uses
 * k % 3): a peer writes a slot of buffer k % 3 again only at call k+3, after it received this
 * rank's data of call k+1, which this rank sends only after its call k, and with it the
 * reset of that slot, completed. (Two buffers would do; the third is margin.)
 *
 * One-shot: every rank pushes its whole input into slot [rank] of every peer's buffer, then
 * sums the `size` slots of its own buffer in rank order.
 * Two-shot: rank r pushes the part of its input that rank j owns into rank j's buffer A at
 * slot [r] (reduce-scatter); rank j sums its A slots in rank order and pushes the reduced
 * part into every rank's buffer B (all-gather); every rank then reads B.
 *
 * Sums run in fp32 in rank order, so every rank gets bit-identical results. Every wait goes
 * through the timeout/abort helper. The grid never exceeds one block per SM: blocks poll for
 * data that other blocks (here or on peers) produce, so all of them must be resident.
 *
 * Fault tolerance (FT = true, kernels/fault.cuh): a sum over fewer ranks is a wrong answer,
 * so a death anywhere ends the call without writing anything that looks like a result.
 * When the mask already holds a dead rank at the start, the kernel still sends to the live
 * ranks (a survivor that has not heard of the death yet then blames the dead rank, not this
 * one), records PEER_LOST against the dead rank and receives nothing. A death found while
 * waiting ends every wait of the call (the peer marked, PEER_LOST recorded); an element
 * whose sum is incomplete is not written, and neither is a fused row with one. The Lamport
 * buffers are then out of step for good: every later call finds the mask set and stops at
 * once, until the survivors shrink the communicator and create a new all-reduce. FT = false
 * is the code without fault tolerance. */
#include "kernels/device_wait.cuh"
#include "kernels/elem.cuh"
#include "kernels/fault.cuh"
#include "kernels/load.cuh"

template <typename T> static __device__ __forceinline__ vec<T> empty_vec()
{
    vec<T> v;
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        v.e[i] = elem<T>::empty;
    return v;
}

template <typename T> static __device__ __forceinline__ bool is_ready(const vec<T> &v)
{
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        if (v.e[i] == elem<T>::empty)
            return false;
    return true;
}

/* -0 would read as "not arrived": send +0 instead (numerically equal). */
template <typename T> static __device__ __forceinline__ vec<T> sanitize(vec<T> v)
{
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        if (v.e[i] == elem<T>::empty)
            v.e[i] = 0;
    return v;
}

static __device__ __forceinline__ uint4 load_volatile(const uint4 *p)
{
    uint4 v;
    asm volatile("ld.volatile.global.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p)
                 : "memory");
    return v;
}

/* Vector `v` of a user array of `count` elements; elements past the end read as +0. The
 * fast path needs 16-byte alignment; the slow one only the element's. */
template <typename T>
static __device__ __forceinline__ vec<T> load_user(const void *base, size_t v, size_t count)
{
    typedef typename elem<T>::bits_t bits_t;
    vec<T> out;
    const size_t first = v * vec<T>::NV;
    if (((uintptr_t)base & 15) == 0 && first + vec<T>::NV <= count) {
        out.raw = reinterpret_cast<const uint4 *>(base)[v];
        return out;
    }
    const bits_t *p = reinterpret_cast<const bits_t *>(base);
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        out.e[i] = first + i < count ? p[first + i] : (bits_t)0;
    return out;
}

template <typename T>
static __device__ __forceinline__ void store_user(void *base, size_t v, size_t count,
                                                  const vec<T> &x)
{
    typedef typename elem<T>::bits_t bits_t;
    const size_t first = v * vec<T>::NV;
    if (((uintptr_t)base & 15) == 0 && first + vec<T>::NV <= count) {
        reinterpret_cast<uint4 *>(base)[v] = x.raw;
        return;
    }
    bits_t *p = reinterpret_cast<bits_t *>(base);
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        if (first + i < count)
            p[first + i] = x.e[i];
}

/* Polls a local Lamport slot until the vector arrived; false when the wait gave up. FT:
 * `scale` is the per-peer bound's multiple (fault.cuh). */
template <typename T, bool FT = false>
static __device__ __forceinline__ bool poll(const uint4 *slot, const mnnvl_wait_params_t *wait,
                                            int peer, vec<T> *out, int scale = 1)
{
    if (FT)
        return mnnvl_ft_wait(wait, MNNVL_OP_ALLREDUCE, peer, true, scale, [&] {
            out->raw = load_volatile(slot);
            return is_ready(*out);
        });
    mnnvl_waiter_t w = mnnvl_wait_begin();
    for (;;) {
        out->raw = load_volatile(slot);
        if (is_ready(*out))
            return true;
        if (mnnvl_wait_should_stop(wait, &w, MNNVL_OP_ALLREDUCE, peer))
            return false;
    }
}

/* Marks a slot empty again once its one reader has it. */
template <typename T> static __device__ __forceinline__ void reset(uint4 *slot)
{
    *slot = empty_vec<T>().raw;
}

template <typename T> static __device__ __forceinline__ void accumulate(float *acc, const vec<T> &x)
{
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        acc[i] += elem<T>::to_float(x.e[i]);
}

/* acc = sum over r < n, in rank order, of the vectors at slot0 + r*stride, polling each
 * until it arrived. The loads of a group of ranks are issued together: waiting for them one
 * after the other would put n memory latencies in series. */
template <typename T, bool FT>
static __device__ __forceinline__ bool sum_slots(uint4 *slot0, size_t stride, int n,
                                                 const mnnvl_wait_params_t *wait, float *acc)
{
    constexpr int GROUP = 4;
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        acc[i] = 0.f;
    for (int r0 = 0; r0 < n; r0 += GROUP) {
        vec<T> x[GROUP];
#pragma unroll
        for (int g = 0; g < GROUP; g++)
            if (r0 + g < n)
                x[g].raw = load_volatile(slot0 + (size_t)(r0 + g) * stride);
#pragma unroll
        for (int g = 0; g < GROUP; g++) {
            if (r0 + g >= n)
                break;
            if (!is_ready(x[g]) &&
                !poll<T, FT>(slot0 + (size_t)(r0 + g) * stride, wait, r0 + g, &x[g]))
                return false;
            reset<T>(slot0 + (size_t)(r0 + g) * stride);
            accumulate(acc, x[g]);
        }
    }
    return true;
}

template <typename T> static __device__ __forceinline__ vec<T> to_vec(const float *f)
{
    vec<T> v;
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        v.e[i] = elem<T>::from_float(f[i]);
    return v;
}

/* Where things live in a workspace, for one call. */
struct layout {
    size_t buffer_vectors; /* one Lamport buffer */
    size_t slot_vectors;   /* one source rank's slot in it (one-shot), or A slot (two-shot) */
    size_t a_vectors;      /* two-shot: size of region A, B follows */
};

static __device__ __forceinline__ layout make_layout(const mnnvl_allreduce_args_t &a)
{
    layout l;
    if (a.twoshot) {
        l.slot_vectors = a.twoshot_part_vectors;
        l.a_vectors = (size_t)a.size * a.twoshot_part_vectors;
        l.buffer_vectors = 2 * l.a_vectors;
    } else {
        l.slot_vectors = a.oneshot_slot_vectors;
        l.a_vectors = 0;
        l.buffer_vectors = (size_t)a.size * a.oneshot_slot_vectors;
    }
    return l;
}

static __device__ __forceinline__ uint4 *buffer_of(const mnnvl_allreduce_args_t &a, int rank,
                                                   const layout &l, uint32_t buffer)
{
    size_t offset = a.twoshot ? a.twoshot_offset : a.oneshot_offset;
    char *base = a.size <= MNNVL_INLINE_PEERS ? a.inline_peers[rank] : a.peers[rank];
    return reinterpret_cast<uint4 *>(base + offset) + (size_t)buffer * l.buffer_vectors;
}

/* The reduced vector `v` of this call, once it is here: summed from the one-shot slots, or
 * read from two-shot region B. */
template <typename T, bool FT>
static __device__ __forceinline__ bool fetch_reduced(const mnnvl_allreduce_args_t &a,
                                                     const layout &l, uint4 *mine, size_t v,
                                                     size_t part, float *acc)
{
#pragma unroll
    for (int i = 0; i < vec<T>::NV; i++)
        acc[i] = 0.f;
    if (a.twoshot) {
        vec<T> x;
        /* The owner pushes its part only after it heard from every rank: twice the bound. */
        if (!poll<T, FT>(mine + l.a_vectors + v, &a.wait, (int)(v / part), &x, 2))
            return false;
        reset<T>(mine + l.a_vectors + v);
        accumulate(acc, x);
        return true;
    }
    return sum_slots<T, FT>(mine + v, l.slot_vectors, a.size, &a.wait, acc);
}

/* Sum of `x` over the block (blockDim.x a multiple of 32), returned to every thread. */
static __device__ float block_sum(float x)
{
    __shared__ float partial[32];
#pragma unroll
    for (int d = 16; d > 0; d >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, d);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); /* partial[] may still be read by the previous row */
    if (lane == 0)
        partial[warp] = x;
    __syncthreads();
    float total = 0.f;
    for (int i = 0; i < (int)(blockDim.x / 32); i++)
        total += partial[i];
    return total;
}

/* The fused epilogue, one row per block iteration: y = reduced + residual_in,
 * residual_out = y, norm_out = y * rsqrt(mean(y^2) + eps) * gamma (or 1 + gamma). */
template <typename T, int VPT, bool FT>
static __device__ void residual_rmsnorm_rows(const mnnvl_allreduce_args_t &a, const layout &l,
                                             uint4 *mine, size_t part)
{
    constexpr int NV = vec<T>::NV;
    const size_t per_row = a.hidden / NV;
    const size_t rows = a.count / a.hidden;
    for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
        float y[VPT][NV];
        float squares = 0.f;
        bool complete = true; /* FT: every vector of this thread arrived */
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            const size_t c = threadIdx.x + (size_t)k * blockDim.x;
            if (c >= per_row)
                continue;
            const size_t v = row * per_row + c;
            /* On failure: garbage, error set (FT: not written, below). */
            const bool got = fetch_reduced<T, FT>(a, l, mine, v, part, y[k]);
            if (FT)
                complete = complete && got;
            vec<T> res = load_user<T>(a.residual_in, v, a.count);
            /* The all-reduce result in the element type, exactly as mnnvl_allreduce returns
             * it (two-shot already carries it so): the fused op equals the unfused pair. */
            const vec<T> reduced = to_vec<T>(y[k]);
#pragma unroll
            for (int i = 0; i < NV; i++) {
                y[k][i] = elem<T>::to_float(reduced.e[i]) + elem<T>::to_float(res.e[i]);
                squares += y[k][i] * y[k][i];
            }
            if (!FT || complete)
                store_user<T>(a.residual_out, v, a.count, to_vec<T>(y[k]));
        }
        /* FT: a row with a missing vector anywhere gets no norm_out (its scale is wrong). */
        const bool row_complete = !FT || !__syncthreads_or(!complete);
        const float scale = rsqrtf(block_sum(squares) / (float)a.hidden + a.eps);
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            const size_t c = threadIdx.x + (size_t)k * blockDim.x;
            if (c >= per_row)
                continue;
            vec<T> g = load_user<T>(a.gamma, c, a.hidden);
            float n[NV];
#pragma unroll
            for (int i = 0; i < NV; i++)
                n[i] = y[k][i] * scale * (elem<T>::to_float(g.e[i]) + (a.weight_bias ? 1.f : 0.f));
            if (row_complete)
                store_user<T>(a.norm_out, row * per_row + c, a.count, to_vec<T>(n));
        }
    }
}

/* VPT: 0 for the plain all-reduce; otherwise the fused epilogue with VPT vectors of a row per
 * thread (a thread holds VPT*NV fp32 values in registers). */
template <typename T, int VPT, int THREADS, int MIN_BLOCKS, bool FT>
static __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
    allreduce_kernel(mnnvl_allreduce_args_t a)
{
    constexpr int NV = vec<T>::NV;
    mnnvl_allreduce_control_t *control = a.control;
    const uint32_t epoch = control->epoch;
    const size_t vectors = (a.count + NV - 1) / NV;
    const layout l = make_layout(a);
    const size_t part = a.twoshot ? (vectors + a.size - 1) / a.size : vectors;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t threads = (size_t)gridDim.x * blockDim.x;
    uint4 *mine = buffer_of(a, a.rank, l, epoch % 3);
    const unsigned long long dead = FT ? mnnvl_ft_block_mask(&a.wait) : 0ull;

    /* Send: one-shot, everything to slot [rank] of every peer; two-shot, each part to its
     * owner's slot [rank] in region A. Peers are visited starting after this rank so that
     * not every rank hits the same peer first. */
    for (size_t v = tid; v < vectors; v += threads) {
        const vec<T> x = sanitize(load_user<T>(a.in, v, a.count));
        if (a.twoshot) {
            const int owner = (int)(v / part);
            if (FT && mnnvl_ft_is_dead(dead, owner))
                continue;
            buffer_of(a, owner, l,
                      epoch % 3)[(size_t)a.rank * l.slot_vectors + (v - owner * part)] = x.raw;
        } else {
            for (int i = 0; i < a.size; i++) {
                const int peer = (a.rank + 1 + i) % a.size;
                if (FT && mnnvl_ft_is_dead(dead, peer))
                    continue;
                buffer_of(a, peer, l, epoch % 3)[(size_t)a.rank * l.slot_vectors + v] = x.raw;
            }
        }
    }

    /* FT, a rank already dead: nothing to receive; the sends above told the others. */
    if (FT && dead != 0) {
        if (tid == 0)
            mnnvl_ft_report(&a.wait, MNNVL_OP_ALLREDUCE, dead);
        return; /* the protocol state stays as it is: every later call stops here too */
    }

    /* Two-shot: reduce this rank's part in rank order and push it to every rank's B. */
    if (a.twoshot) {
        const size_t begin = (size_t)a.rank * part;
        const size_t mine_count = begin < vectors ? min(part, vectors - begin) : 0;
        for (size_t i = tid; i < mine_count; i += threads) {
            float acc[NV];
            if (!sum_slots<T, FT>(mine + i, l.slot_vectors, a.size, &a.wait, acc))
                break;
            const uint4 reduced = sanitize(to_vec<T>(acc)).raw;
            for (int k = 0; k < a.size; k++) {
                const int peer = (a.rank + 1 + k) % a.size;
                buffer_of(a, peer, l, epoch % 3)[l.a_vectors + begin + i] = reduced;
            }
        }
    }

    /* Receive and finish. */
    if (VPT > 0) {
        residual_rmsnorm_rows<T, VPT ? VPT : 1, FT>(a, l, mine, part);
    } else {
        for (size_t v = tid; v < vectors; v += threads) {
            float acc[NV];
            if (!fetch_reduced<T, FT>(a, l, mine, v, part, acc))
                break;
            store_user<T>(a.out, v, a.count, to_vec<T>(acc));
        }
    }

    /* The last block to finish advances the protocol state for the next call. */
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(&control->arrived, 1u) == gridDim.x - 1) {
            control->arrived = 0;
            control->epoch = epoch + 1;
            __threadfence();
        }
    }
}

/* Blocks of `kernel` that fit on one SM at once, computed once per kernel. */
template <typename K> static int resident_blocks(K kernel, int threads, int *cache)
{
    if (*cache == 0) {
        int n = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, 0) != cudaSuccess ||
            n < 1)
            n = 1;
        *cache = n;
    }
    return *cache;
}

/* Blocks poll for data that other blocks produce, so the grid never exceeds what is resident
 * at once (several blocks per SM where registers allow: more loads in flight). */
template <typename K>
static int launch_kernel(K kernel, const mnnvl_allreduce_args_t *args, size_t work_blocks,
                         int threads, int *cache, void *stream)
{
    size_t limit = (size_t)args->sm_count * (size_t)resident_blocks(kernel, threads, cache);
    size_t blocks = work_blocks < limit ? work_blocks : limit;
    kernel<<<(unsigned)(blocks ? blocks : 1), threads, 0, (cudaStream_t)stream>>>(*args);
    return (int)cudaGetLastError();
}

enum { PLAIN_THREADS = 512, SMALL_ROW_THREADS = 512, LARGE_ROW_THREADS = 512 };

/* The kernels of one element type and switch, for launch() and for loading them all:
 * the plain all-reduce, and the fused one with two vectors per thread for short rows (more
 * threads, fewer serial polls) and up to 64 values per thread for long rows (the limit that
 * keeps the kernel free of spills). */
template <typename T, bool FT> struct kernels_of {
    static constexpr int VPT = 64 / vec<T>::NV;
    static constexpr auto plain = allreduce_kernel<T, 0, PLAIN_THREADS, 2, FT>;
    static constexpr auto short_rows = allreduce_kernel<T, 2, SMALL_ROW_THREADS, 1, FT>;
    static constexpr auto long_rows = allreduce_kernel<T, VPT, LARGE_ROW_THREADS, 1, FT>;
};

template <typename T, bool FT> static int launch(const mnnvl_allreduce_args_t *args, void *stream)
{
    typedef kernels_of<T, FT> k;
    constexpr int NV = vec<T>::NV;
    /* Cached occupancy of each instance (the kernels never change at run time). */
    static int plain_cache, small_cache, large_cache;
    if (!args->residual_out) {
        const size_t vectors = (args->count + NV - 1) / NV;
        return launch_kernel(k::plain, args, (vectors + PLAIN_THREADS - 1) / PLAIN_THREADS,
                             PLAIN_THREADS, &plain_cache, stream);
    }
    /* Fused: one row per block iteration. */
    const size_t per_row = args->hidden / NV, rows = args->count / args->hidden;
    if (per_row <= 2 * SMALL_ROW_THREADS) {
        int threads = (int)((per_row + 1) / 2 + 31) / 32 * 32;
        return launch_kernel(k::short_rows, args, rows, threads < 64 ? 64 : threads, &small_cache,
                             stream);
    }
    int threads = (int)((per_row + k::VPT - 1) / k::VPT + 31) / 32 * 32;
    return launch_kernel(k::long_rows, args, rows, threads, &large_cache, stream);
}

template <typename T, bool FT> static int load()
{
    typedef kernels_of<T, FT> k;
    return mnnvl_load(k::plain, k::short_rows, k::long_rows);
}

extern "C" int mnnvl_load_allreduce_kernels(void)
{
    const int err[] = {load<float, false>(),         load<float, true>(),
                       load<__half, false>(),        load<__half, true>(),
                       load<__nv_bfloat16, false>(), load<__nv_bfloat16, true>()};
    for (int e : err)
        if (e)
            return e;
    return 0;
}

extern "C" int mnnvl_launch_allreduce(const mnnvl_allreduce_args_t *args, void *stream)
{
    const bool ft = args->wait.dead != NULL;
    switch (args->dtype) {
    case MNNVL_DTYPE_FP32:
        return ft ? launch<float, true>(args, stream) : launch<float, false>(args, stream);
    case MNNVL_DTYPE_FP16:
        return ft ? launch<__half, true>(args, stream) : launch<__half, false>(args, stream);
    case MNNVL_DTYPE_BF16:
        return ft ? launch<__nv_bfloat16, true>(args, stream)
                  : launch<__nv_bfloat16, false>(args, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
