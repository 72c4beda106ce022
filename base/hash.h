/* The one hash of the tree: 64-bit FNV-1a, for ids that every rank computes alike (a host's
 * identity, a communicator's id from its name) and for the tests' result fingerprints. Not
 * for anything an adversary chooses: it is no MAC (bootstrap/auth.c has those). */
#ifndef MNNVL_BASE_HASH_H
#define MNNVL_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MNNVL_HASH_SEED 1469598103934665603ull /* FNV-1a's offset basis */
#define MNNVL_HASH_PRIME 1099511628211ull

/* Folds `len` bytes into the running hash `h` (start from MNNVL_HASH_SEED). */
static inline uint64_t mnnvl_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * MNNVL_HASH_PRIME;
    return h;
}

/* Folds a NUL-terminated string, without its NUL. */
static inline uint64_t mnnvl_hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * MNNVL_HASH_PRIME;
    return h;
}

/* Folds one value as a whole (not byte by byte): for fingerprints of arrays of integers. */
static inline uint64_t mnnvl_hash_word(uint64_t h, uint64_t word)
{
    return (h ^ word) * MNNVL_HASH_PRIME;
}

#endif
