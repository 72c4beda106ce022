/* The one loader of the CUDA driver: dlopen of libcuda.so.1 once per process, cuInit(0), and
 * lookup of entry points by name. libmnnvl (lib/cuda_loader.c, which types the entry points
 * from cuda.h), the tools and the tests all load the driver through it, so that each of them
 * starts on hosts without a GPU driver and says why it found none in the same words.
 *
 * It needs no CUDA header and no libmnnvl: tools and tests compile it in (inside libmnnvl.so
 * it is hidden). */
#ifndef MNNVL_BASE_LIBCUDA_H
#define MNNVL_BASE_LIBCUDA_H

#include <stddef.h>

/* Loads the driver and calls cuInit(0), once per process (later calls return the first
 * outcome). Returns 0; or -1 with a sentence in *why (static storage, never NULL then):
 * no libcuda.so.1, a driver without cuInit, or cuInit's error (no usable GPU). */
int mnnvl_libcuda_open(const char **why);

/* The driver's entry point `name` (exactly as exported, e.g. "cuMemHostGetDevicePointer_v2"),
 * or NULL when the driver is not loaded or lacks it. */
void *mnnvl_libcuda_sym(const char *name);

/* Counts the GPUs the driver sees, in a forked child process, so that the caller may still
 * fork ranks that use CUDA (a process that initialised CUDA cannot use it in a forked
 * child). 0 when there are none or the driver does not load; then `why` (of `len` bytes, may
 * be NULL) says why. */
int mnnvl_libcuda_count_in_child(char *why, size_t len);

#endif
