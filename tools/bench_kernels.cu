/* The unfused baselines of the fused benchmarks: a plain residual + RMSNorm kernel (bf16, one
 * block per row), what a server runs after a separate all-reduce, and the LSE merge a server
 * runs after a separate DCP all-to-all. */
#include <cuda_bf16.h>
#include <math.h>

static __global__ void residual_rmsnorm(const __nv_bfloat16 *x, const __nv_bfloat16 *res_in,
                                        const __nv_bfloat16 *gamma, float eps, int hidden,
                                        __nv_bfloat16 *res_out, __nv_bfloat16 *norm_out)
{
    __shared__ float partial[32];
    const size_t row = (size_t)blockIdx.x * hidden;
    float ss = 0.f;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float y = __bfloat162float(x[row + c]) + __bfloat162float(res_in[row + c]);
        res_out[row + c] = __float2bfloat16_rn(y);
        ss += y * y;
    }
    for (int d = 16; d > 0; d >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, d);
    if (threadIdx.x % 32 == 0)
        partial[threadIdx.x / 32] = ss;
    __syncthreads();
    float total = 0.f;
    for (int i = 0; i < (int)(blockDim.x / 32); i++)
        total += partial[i];
    const float scale = rsqrtf(total / hidden + eps);
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float y = __bfloat162float(x[row + c]) + __bfloat162float(res_in[row + c]);
        norm_out[row + c] = __float2bfloat16_rn(y * scale * __bfloat162float(gamma[c]));
    }
}

extern "C" int bench_launch_residual_rmsnorm(const void *x, const void *res_in, const void *gamma,
                                             float eps, int tokens, int hidden, void *res_out,
                                             void *norm_out, void *stream)
{
    residual_rmsnorm<<<tokens, 512, 0, (cudaStream_t)stream>>>(
        (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)res_in, (const __nv_bfloat16 *)gamma, eps,
        hidden, (__nv_bfloat16 *)res_out, (__nv_bfloat16 *)norm_out);
    return (int)cudaGetLastError();
}

/* The unfused baseline of the DCP lse_reduce: after an all-to-all that left source p's rows
 * at o[p][e][:] (bf16) and its stats at stats[p][e][:] (fp32, lane 0 the natural-log LSE),
 * the merge a server runs: one block per entry, fp32, sources in ascending order. */
static __global__ void lse_merge(const __nv_bfloat16 *o, const float *stats, int entries, int cp,
                                 int head_dim, int lanes, __nv_bfloat16 *out, float *out_lse)
{
    const int e = blockIdx.x;
    float m = -INFINITY;
    for (int p = 0; p < cp; p++)
        m = fmaxf(m, stats[((size_t)p * entries + e) * lanes]);
    float total = 0.f;
    for (int p = 0; p < cp; p++) {
        const float lse = stats[((size_t)p * entries + e) * lanes];
        total += lse == -INFINITY ? 0.f : __expf(lse - m);
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.f;
        for (int p = 0; p < cp; p++) {
            const float lse = stats[((size_t)p * entries + e) * lanes];
            if (lse != -INFINITY)
                acc +=
                    __expf(lse - m) * __bfloat162float(o[((size_t)p * entries + e) * head_dim + d]);
        }
        out[(size_t)e * head_dim + d] = __float2bfloat16_rn(total > 0.f ? acc / total : 0.f);
    }
    if (threadIdx.x == 0)
        out_lse[e] = total > 0.f ? m + __logf(total) : -INFINITY;
}

extern "C" int bench_launch_lse_merge(const void *o, const float *stats, int entries, int cp,
                                      int head_dim, int lanes, void *out, float *out_lse,
                                      void *stream)
{
    if (entries > 0)
        lse_merge<<<entries, 128, 0, (cudaStream_t)stream>>>((const __nv_bfloat16 *)o, stats,
                                                             entries, cp, head_dim, lanes,
                                                             (__nv_bfloat16 *)out, out_lse);
    return (int)cudaGetLastError();
}
