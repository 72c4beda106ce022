/* MoE all-to-all on the symmetric workspace: dispatch pushes token rows into the ranks that
 * own their experts, combine pulls the experts' partial results back and sums them.
 *
 * Dispatch is two kernels. route (one block) decides, for every local token, the distinct
 * ranks it goes to and its slot there: the slot is the token's position among this rank's
 * tokens for that destination, counted with warp ballots and a prefix over warps, so the
 * layout is the same run after run (no atomics). push copies each row once per destination;
 * its last block then publishes this rank's counts and R in every peer's header, releases,
 * raises this rank's dispatch flag on every peer, and waits until every peer raised its flag
 * here; a peer whose R differs is reported as MISMATCH.
 *
 * Combine: an optional staging copy of the valid rows into this rank's combine region, then
 * a barrier on the combine flags (every rank's combine region is complete), then each token
 * sums its destinations' rows in ascending rank order, in fp32.
 *
 * Ordering: epochs only grow, waits compare with a signed difference. A rank cannot start
 * dispatch k+1 before every peer signalled combine k, which each signals after its experts
 * consumed the dispatch k data, so nothing is overwritten while it is read.
 *
 * Fault tolerance (FT = true, kernels/fault.cuh): every kernel reads the dead-rank mask as it
 * starts; push, the handshake and combine's barrier neither write to nor wait for a dead
 * rank; a wait that gives up on a peer marks it dead and goes on; dispatch zeroes a dead
 * source's count in this rank's header (so sanitize, staging and the experts skip its rows);
 * combine sums the live destinations only and writes lost[t]. The ordering argument above
 * holds among the live ranks. FT = false is the code without fault tolerance. */
#include "kernels/device_wait.cuh"
#include "kernels/elem.cuh"
#include "kernels/fault.cuh"
#include "kernels/load.cuh"

#define FULL_MASK 0xffffffffu

static __device__ __forceinline__ int owner_of(int expert, const mnnvl_moe_args_t &a)
{
    const int base = a.num_experts / a.ep_size, extra = a.num_experts % a.ep_size;
    const int split = extra * (base + 1);
    return expert < split ? expert / (base + 1) : extra + (expert - split) / base;
}

template <typename T> static __device__ __forceinline__ T *at(char *base, size_t offset)
{
    return reinterpret_cast<T *>(base + offset);
}

/* ---- dispatch ---------------------------------------------------------------------- */

enum { ROUTE_THREADS = 1024, ROUTE_WARPS = ROUTE_THREADS / 32 };

static __global__ void __launch_bounds__(ROUTE_THREADS) route_kernel(mnnvl_moe_args_t a)
{
    __shared__ int per_warp[MNNVL_MOE_MAX_RANKS][ROUTE_WARPS]; /* counts, then prefix bases */
    __shared__ int total[MNNVL_MOE_MAX_RANKS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const unsigned below = (1u << lane) - 1u;
    for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x)
        total[d] = 0;
    __syncthreads();
    for (int first = 0; first < a.tokens; first += ROUTE_THREADS) {
        const int t = first + threadIdx.x;
        unsigned long long ranks = 0;
        if (t < a.tokens) {
            for (int k = 0; k < a.top_k; k++) {
                const int e = a.experts[(size_t)t * a.top_k + k];
                if (e >= 0 && e < a.num_experts) /* anything else means "no expert" */
                    ranks |= 1ull << owner_of(e, a);
            }
        }
        int n = 0;
        for (int d = 0; d < a.ep_size; d++) {
            const int mine = (int)(ranks >> d & 1ull);
            const unsigned vote = __ballot_sync(FULL_MASK, mine);
            if (lane == 0)
                per_warp[d][warp] = __popc(vote);
            if (mine) {
                a.route_dest[(size_t)t * a.top_k + n] = (int8_t)d;
                a.route_slot[(size_t)t * a.top_k + n] = __popc(vote & below);
                n++;
            }
        }
        __syncthreads();
        for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x) {
            int running = total[d];
            for (int w = 0; w < ROUTE_WARPS; w++) {
                const int c = per_warp[d][w];
                per_warp[d][w] = running;
                running += c;
            }
            total[d] = running;
        }
        __syncthreads();
        if (t < a.tokens) {
            for (int j = 0; j < n; j++)
                a.route_slot[(size_t)t * a.top_k + j] +=
                    per_warp[a.route_dest[(size_t)t * a.top_k + j]][warp];
            a.route_n[t] = (uint8_t)n;
        }
        __syncthreads();
    }
    for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x)
        a.control->send_counts[d] = total[d];
}

/* Copies `bytes` of one row to every destination, each source word read once. */
template <typename W>
static __device__ __forceinline__ void copy_row(const char *src, char *const *dst, int n,
                                                size_t bytes)
{
    for (size_t off = threadIdx.x * sizeof(W); off < bytes; off += blockDim.x * sizeof(W)) {
        const W w = *reinterpret_cast<const W *>(src + off);
        for (int j = 0; j < n; j++)
            *reinterpret_cast<W *>(dst[j] + off) = w;
    }
}

/* The last block of push: publish, signal, wait, check R. FT: only with the live ranks. */
template <bool FT>
static __device__ void dispatch_handshake(const mnnvl_moe_args_t &a, unsigned long long dead)
{
    mnnvl_moe_control_t *c = a.control;
    const uint32_t epoch = c->dispatch_epoch + 1;
    for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x) {
        if (FT && mnnvl_ft_is_dead(dead, d))
            continue;
        at<int32_t>(a.peers[d], a.recv_counts)[a.rank] = c->send_counts[d];
        at<int32_t>(a.peers[d], a.recv_r)[a.rank] = a.r;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        __threadfence_system(); /* the counts and R (and every block's rows) before the flags */
    __syncthreads();
    for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x)
        if (!FT || !mnnvl_ft_is_dead(dead, d))
            mnnvl_store_release_sys(&at<uint32_t>(a.peers[d], a.dispatch_flags)[a.rank], epoch);
    char *mine = a.peers[a.rank];
    for (int p = threadIdx.x; p < a.ep_size; p += blockDim.x) {
        const uint32_t *flag = &at<uint32_t>(mine, a.dispatch_flags)[p];
        bool arrived = true;
        if (FT) {
            arrived = !mnnvl_ft_is_dead(dead, p) &&
                      mnnvl_ft_wait(&a.wait, MNNVL_OP_MOE_DISPATCH, p, false, 1, [&] {
                          return (int32_t)(mnnvl_load_acquire_sys(flag) - epoch) >= 0;
                      });
            if (!arrived) /* this round has nothing from p: its rows are not there */
                at<volatile int32_t>(mine, a.recv_counts)[p] = 0;
        } else {
            mnnvl_waiter_t w = mnnvl_wait_begin();
            while ((int32_t)(mnnvl_load_acquire_sys(flag) - epoch) < 0) {
                if (mnnvl_wait_should_stop(&a.wait, &w, MNNVL_OP_MOE_DISPATCH, p)) {
                    arrived = false;
                    break;
                }
            }
        }
        /* Rows were placed with each sender's R: a disagreement makes them unreadable. */
        if (arrived && at<volatile int32_t>(mine, a.recv_r)[p] != a.r)
            mnnvl_record_error(a.wait.control, MNNVL_ERR_MISMATCH, MNNVL_OP_MOE_DISPATCH, p);
    }
    __syncthreads();
    if (threadIdx.x == 0)
        c->dispatch_epoch = epoch;
}

enum { PUSH_THREADS = 256 };

template <bool FT>
static __global__ void __launch_bounds__(PUSH_THREADS) push_kernel(mnnvl_moe_args_t a)
{
    __shared__ char *dst[MNNVL_MOE_MAX_TOP_K];
    __shared__ int dests;
    __shared__ bool last;
    __shared__ int live[MNNVL_MOE_MAX_TOP_K]; /* FT: the route entries of live destinations */
    const unsigned long long dead = FT ? mnnvl_ft_block_mask(&a.wait) : 0ull;
    for (int t = blockIdx.x; t < a.tokens; t += gridDim.x) {
        if (threadIdx.x == 0) {
            dests = a.route_n[t];
            if (FT) {
                int n = 0;
                for (int j = 0; j < dests; j++)
                    if (!mnnvl_ft_is_dead(dead, a.route_dest[(size_t)t * a.top_k + j]))
                        live[n++] = j;
                dests = n;
            }
        }
        __syncthreads();
        for (int i = 0; i < a.num_payloads; i++) {
            const size_t bytes = a.payload_bytes[i];
            if (FT && threadIdx.x < dests) {
                const size_t j = (size_t)t * a.top_k + live[threadIdx.x];
                const size_t row = (size_t)a.rank * a.r + a.route_slot[j];
                dst[threadIdx.x] = a.peers[a.route_dest[j]] + a.payload_offset[i] + row * bytes;
            } else if (!FT && threadIdx.x < dests) {
                const size_t j = (size_t)t * a.top_k + threadIdx.x;
                const size_t row = (size_t)a.rank * a.r + a.route_slot[j];
                dst[threadIdx.x] = a.peers[a.route_dest[j]] + a.payload_offset[i] + row * bytes;
            }
            __syncthreads();
            const char *src = static_cast<const char *>(a.payload_src[i]) + (size_t)t * bytes;
            if (bytes % 16 == 0 && ((uintptr_t)src & 15) == 0)
                copy_row<uint4>(src, dst, dests, bytes);
            else
                copy_row<uint32_t>(src, dst, dests, bytes);
            __syncthreads();
        }
    }
    /* One system fence per block, after the barrier, orders every thread's rows before the
     * block's arrival (fences are cumulative); the last block fences again after seeing all
     * arrivals, so its signals come after every block's rows. */
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence_system();
        last = atomicAdd(&a.control->dispatch_arrived, 1u) == gridDim.x - 1;
        if (last) {
            a.control->dispatch_arrived = 0;
            __threadfence_system();
        }
    }
    __syncthreads();
    if (last)
        dispatch_handshake<FT>(a, dead);
}

extern "C" int mnnvl_launch_moe_dispatch(const mnnvl_moe_args_t *a, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    route_kernel<<<1, ROUTE_THREADS, 0, s>>>(*a);
    int blocks = a->tokens < 1 ? 1 : a->tokens;
    if (blocks > a->sm_count * 8)
        blocks = a->sm_count * 8;
    if (a->wait.dead)
        push_kernel<true><<<blocks, PUSH_THREADS, 0, s>>>(*a);
    else
        push_kernel<false><<<blocks, PUSH_THREADS, 0, s>>>(*a);
    return (int)cudaGetLastError();
}

/* ---- sanitize ---------------------------------------------------------------------- */

static __global__ void sanitize_kernel(mnnvl_moe_args_t a)
{
    char *mine = a.peers[a.rank];
    const int first = mnnvl_moe_first_expert(a.rank, a.num_experts, a.ep_size);
    const int last = mnnvl_moe_first_expert(a.rank + 1, a.num_experts, a.ep_size);
    int32_t *ids = at<int32_t>(mine, a.payload_offset[a.sanitize_index]);
    const size_t slots = (size_t)a.ep_size * a.r;
    for (size_t slot = (size_t)blockIdx.x * blockDim.x + threadIdx.x; slot < slots;
         slot += (size_t)gridDim.x * blockDim.x) {
        const int source = (int)(slot / a.r), j = (int)(slot % a.r);
        const bool valid = j < at<int32_t>(mine, a.recv_counts)[source];
        for (int k = 0; k < a.top_k; k++) {
            int32_t *id = &ids[slot * a.top_k + k];
            if (!valid || *id < first || *id >= last)
                *id = -1;
        }
    }
}

extern "C" int mnnvl_launch_moe_sanitize(const mnnvl_moe_args_t *a, void *stream)
{
    const size_t slots = (size_t)a->ep_size * a->r;
    size_t blocks = (slots + 255) / 256;
    blocks = blocks < 1 ? 1 : blocks > (size_t)a->sm_count * 4 ? (size_t)a->sm_count * 4 : blocks;
    sanitize_kernel<<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(*a);
    return (int)cudaGetLastError();
}

/* ---- combine ----------------------------------------------------------------------- */

/* Copies the valid rows of expert_out into this rank's combine region. */
static __global__ void stage_kernel(mnnvl_moe_args_t a)
{
    char *mine = a.peers[a.rank];
    const size_t row_vectors = a.combine_row_bytes / 16;
    const size_t vectors = (size_t)a.ep_size * a.r * row_vectors;
    const uint4 *src = static_cast<const uint4 *>(a.expert_out);
    uint4 *dst = at<uint4>(mine, a.combine_offset);
    for (size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x; v < vectors;
         v += (size_t)gridDim.x * blockDim.x) {
        const size_t slot = v / row_vectors;
        if ((int)(slot % a.r) < at<int32_t>(mine, a.recv_counts)[slot / a.r])
            dst[v] = src[v];
    }
}

/* Raises this rank's combine flag on every peer (block 0) and waits, in every block, until
 * every peer's combine region is complete. FT: only the live ones. */
template <bool FT>
static __device__ void combine_barrier(const mnnvl_moe_args_t &a, uint32_t epoch,
                                       unsigned long long dead)
{
    if (blockIdx.x == 0) {
        if (threadIdx.x == 0)
            __threadfence_system(); /* the experts' and the staging copy's rows first */
        __syncthreads();
        for (int d = threadIdx.x; d < a.ep_size; d += blockDim.x)
            if (!FT || !mnnvl_ft_is_dead(dead, d))
                mnnvl_store_release_sys(&at<uint32_t>(a.peers[d], a.combine_flags)[a.rank], epoch);
    }
    for (int p = threadIdx.x; p < a.ep_size; p += blockDim.x) {
        const uint32_t *flag = &at<uint32_t>(a.peers[a.rank], a.combine_flags)[p];
        if (FT) {
            if (mnnvl_ft_is_dead(dead, p))
                continue;
            mnnvl_ft_wait(&a.wait, MNNVL_OP_MOE_COMBINE, p, false, 1,
                          [&] { return (int32_t)(mnnvl_load_acquire_sys(flag) - epoch) >= 0; });
            continue;
        }
        mnnvl_waiter_t w = mnnvl_wait_begin();
        while ((int32_t)(mnnvl_load_acquire_sys(flag) - epoch) < 0)
            if (mnnvl_wait_should_stop(&a.wait, &w, MNNVL_OP_MOE_COMBINE, p))
                break;
    }
    __syncthreads();
}

enum { COMBINE_THREADS = 256 };

template <typename T, bool FT>
static __global__ void __launch_bounds__(COMBINE_THREADS) combine_kernel(mnnvl_moe_args_t a)
{
    constexpr int NV = vec<T>::NV;
    __shared__ const uint4 *src[MNNVL_MOE_MAX_TOP_K];
    __shared__ int dests;
    __shared__ unsigned long long dead_after; /* FT: the mask once the barrier is passed */
    const uint32_t epoch = a.control->combine_epoch + 1;
    const unsigned long long dead = FT ? mnnvl_ft_block_mask(&a.wait) : 0ull;
    combine_barrier<FT>(a, epoch, dead);
    if (FT) {
        /* Every peer this block waited for either arrived or is in the mask now. */
        if (threadIdx.x == 0)
            dead_after = mnnvl_ft_mask(&a.wait);
        __syncthreads();
    }
    const size_t row_vectors = a.combine_row_bytes / 16;
    for (int t = blockIdx.x; t < a.tokens; t += gridDim.x) {
        if (FT) {
            if (threadIdx.x == 0) {
                int n = 0;
                const int all = a.route_n[t];
                for (int j = 0; j < all; j++) {
                    const size_t at_j = (size_t)t * a.top_k + j;
                    const int d = a.route_dest[at_j];
                    if (mnnvl_ft_is_dead(dead_after, d))
                        continue;
                    const size_t row = (size_t)a.rank * a.r + a.route_slot[at_j];
                    src[n++] =
                        at<const uint4>(a.peers[d], a.combine_offset + row * a.combine_row_bytes);
                }
                dests = n;
                a.lost[t] = n != all ? 1 : 0;
            }
        } else if (threadIdx.x == 0) {
            dests = a.route_n[t];
        }
        if (!FT && threadIdx.x < MNNVL_MOE_MAX_TOP_K && threadIdx.x < a.route_n[t]) {
            const size_t j = (size_t)t * a.top_k + threadIdx.x;
            const size_t row = (size_t)a.rank * a.r + a.route_slot[j];
            src[threadIdx.x] = at<const uint4>(a.peers[a.route_dest[j]],
                                               a.combine_offset + row * a.combine_row_bytes);
        }
        __syncthreads();
        uint4 *out = static_cast<uint4 *>(a.out) + (size_t)t * row_vectors;
        for (size_t v = threadIdx.x; v < row_vectors; v += blockDim.x) {
            float acc[NV];
#pragma unroll
            for (int i = 0; i < NV; i++)
                acc[i] = 0.f;
            /* Ascending rank order, loads of up to four ranks in flight. */
            for (int j0 = 0; j0 < dests; j0 += 4) {
                vec<T> x[4];
#pragma unroll
                for (int g = 0; g < 4; g++)
                    if (j0 + g < dests)
                        x[g].raw = src[j0 + g][v];
#pragma unroll
                for (int g = 0; g < 4; g++)
                    if (j0 + g < dests)
#pragma unroll
                        for (int i = 0; i < NV; i++)
                            acc[i] += elem<T>::to_float(x[g].e[i]);
            }
            vec<T> r;
#pragma unroll
            for (int i = 0; i < NV; i++)
                r.e[i] = elem<T>::from_float(acc[i]);
            out[v] = r.raw;
        }
        __syncthreads();
    }
    /* The last block advances the epoch once every block has read it. */
    if (threadIdx.x == 0) {
        if (atomicAdd(&a.control->combine_arrived, 1u) == gridDim.x - 1) {
            a.control->combine_arrived = 0;
            a.control->combine_epoch = epoch;
        }
    }
}

template <bool FT> static int launch_combine(const mnnvl_moe_args_t *a, int blocks, cudaStream_t s)
{
    switch (a->combine_dtype) {
    case MNNVL_DTYPE_FP32: combine_kernel<float, FT><<<blocks, COMBINE_THREADS, 0, s>>>(*a); break;
    case MNNVL_DTYPE_FP16: combine_kernel<__half, FT><<<blocks, COMBINE_THREADS, 0, s>>>(*a); break;
    case MNNVL_DTYPE_BF16:
        combine_kernel<__nv_bfloat16, FT><<<blocks, COMBINE_THREADS, 0, s>>>(*a);
        break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int mnnvl_launch_moe_combine(const mnnvl_moe_args_t *a, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    if (a->expert_out) {
        const size_t vectors = (size_t)a->ep_size * a->r * (a->combine_row_bytes / 16);
        size_t blocks = (vectors + 255) / 256;
        blocks = blocks < 1                         ? 1
                 : blocks > (size_t)a->sm_count * 8 ? (size_t)a->sm_count * 8
                                                    : blocks;
        stage_kernel<<<(unsigned)blocks, 256, 0, s>>>(*a);
    }
    int blocks = a->tokens < 1 ? 1 : a->tokens;
    /* Every block waits on the peers' flags: keep the grid resident. */
    if (blocks > a->sm_count * 4)
        blocks = a->sm_count * 4;
    if (a->wait.dead)
        return launch_combine<true>(a, blocks, s);
    return launch_combine<false>(a, blocks, s);
}

extern "C" int mnnvl_load_moe_kernels(void)
{
    return mnnvl_load(route_kernel, push_kernel<false>, push_kernel<true>, sanitize_kernel,
                      stage_kernel, combine_kernel<float, false>, combine_kernel<float, true>,
                      combine_kernel<__half, false>, combine_kernel<__half, true>,
                      combine_kernel<__nv_bfloat16, false>, combine_kernel<__nv_bfloat16, true>);
}
