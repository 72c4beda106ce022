/* Resets of protocol state that lib/ launches at setup: the Lamport empty mark, taken from
 * elem.cuh (the one definition the all-reduce kernels compare with), and plain zeroing of
 * flags, counters and control blocks. */
#include "kernels/elem.cuh"
#include "kernels/launch.h"
#include "kernels/load.cuh"

template <typename T>
static __global__ void lamport_reset_kernel(typename elem<T>::bits_t *buf, size_t count)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        buf[i] = elem<T>::empty;
}

template <typename T> static int lamport_reset(void *buf, size_t bytes, cudaStream_t stream)
{
    typedef typename elem<T>::bits_t bits_t;
    const size_t count = bytes / sizeof(bits_t);
    if (count == 0)
        return 0;
    const int threads = 256;
    const size_t wanted = (count + threads - 1) / threads;
    const int blocks = wanted < 1024 ? (int)wanted : 1024;
    lamport_reset_kernel<T><<<blocks, threads, 0, stream>>>((bits_t *)buf, count);
    return (int)cudaGetLastError();
}

extern "C" int mnnvl_launch_lamport_reset(void *buf, size_t bytes, int dtype, void *stream)
{
    switch (dtype) {
    case MNNVL_DTYPE_FP32: return lamport_reset<float>(buf, bytes, (cudaStream_t)stream);
    case MNNVL_DTYPE_FP16: return lamport_reset<__half>(buf, bytes, (cudaStream_t)stream);
    case MNNVL_DTYPE_BF16: return lamport_reset<__nv_bfloat16>(buf, bytes, (cudaStream_t)stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int mnnvl_load_reset_kernels(void)
{
    return mnnvl_load(lamport_reset_kernel<float>, lamport_reset_kernel<__half>,
                      lamport_reset_kernel<__nv_bfloat16>);
}

extern "C" int mnnvl_launch_zero_reset(void *buf, size_t bytes, void *stream)
{
    if (bytes == 0)
        return 0;
    return (int)cudaMemsetAsync(buf, 0, bytes, (cudaStream_t)stream);
}
