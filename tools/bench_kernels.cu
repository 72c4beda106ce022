/* The unfused baseline of the fused benchmark: a plain residual + RMSNorm kernel (bf16, one
 * block per row), what a server runs after a separate all-reduce. */
#include <cuda_bf16.h>

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
