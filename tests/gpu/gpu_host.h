/* Host-side arithmetic shared by the GPU tests' input generators and references: every rank
 * computes every rank's inputs from these, so the values must not change. */
#ifndef MNNVL_GPU_HOST_H
#define MNNVL_GPU_HOST_H

#include <stdint.h>
#include <string.h>

/* MurmurHash3's 64-bit finaliser: spreads the inputs' (seed, rank, index) over all bits. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* The top 53 bits of x as a value in [-2, 2). */
static inline float hash_to_pm2(uint64_t x)
{
    return (float)((double)(x >> 11) / (double)(1ull << 53) * 4.0 - 2.0);
}

/* A bf16's value (exact). */
static inline float bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
