/* Element types of the kernels: their bits, their negative zero (the Lamport "empty" mark),
 * conversions through fp32, and the 16-byte vector every load and store moves. */
#ifndef MNNVL_ELEM_CUH
#define MNNVL_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

/* Per element type: its size, its empty mark, and conversions through fp32. */
template <typename T> struct elem;

template <> struct elem<float> {
    typedef uint32_t bits_t;
    static constexpr bits_t empty = 0x80000000u;
    static __device__ __forceinline__ float to_float(bits_t b)
    {
        return __uint_as_float(b);
    }
    static __device__ __forceinline__ bits_t from_float(float f)
    {
        return __float_as_uint(f);
    }
};

template <> struct elem<__half> {
    typedef uint16_t bits_t;
    static constexpr bits_t empty = 0x8000u;
    static __device__ __forceinline__ float to_float(bits_t b)
    {
        return __half2float(__ushort_as_half(b));
    }
    static __device__ __forceinline__ bits_t from_float(float f)
    {
        return __half_as_ushort(__float2half_rn(f));
    }
};

template <> struct elem<__nv_bfloat16> {
    typedef uint16_t bits_t;
    static constexpr bits_t empty = 0x8000u;
    static __device__ __forceinline__ float to_float(bits_t b)
    {
        return __uint_as_float((uint32_t)b << 16);
    }
    static __device__ __forceinline__ bits_t from_float(float f)
    {
        return __bfloat16_as_ushort(__float2bfloat16_rn(f));
    }
};

/* A 16-byte vector of NV elements: the unit of every load, store and poll. */
template <typename T> struct vec {
    typedef typename elem<T>::bits_t bits_t;
    static constexpr int NV = 16 / sizeof(bits_t);
    union {
        uint4 raw;
        bits_t e[NV];
    };
};

#endif
