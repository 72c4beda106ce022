/* NCCL for the benchmarks' baselines, loaded with dlopen (libnccl.so.2, or
 * $MNNVL_BENCH_NCCL): the part of its ABI the benchmarks use, so nccl.h is not needed. */
#ifndef MNNVL_BENCH_NCCL_H
#define MNNVL_BENCH_NCCL_H

#include <cuda_runtime.h>
#include <stddef.h>

typedef struct {
    char internal[128];
} nccl_id_t;

typedef struct nccl {
    int (*get_unique_id)(nccl_id_t *);
    int (*init_rank)(void **comm, int nranks, nccl_id_t id, int rank);
    int (*all_reduce)(const void *, void *, size_t, int dtype, int op, void *comm, cudaStream_t);
    int (*send)(const void *, size_t, int dtype, int peer, void *comm, cudaStream_t);
    int (*recv)(void *, size_t, int dtype, int peer, void *comm, cudaStream_t);
    int (*group_start)(void);
    int (*group_end)(void);
    int (*destroy)(void *comm);
    const char *(*error_string)(int);
    void *lib; /* the dlopen handle, kept open while the pointers above are used */
} nccl_t;

enum { NCCL_UINT8 = 1, NCCL_BF16 = 9, NCCL_SUM = 0 };

/* Returns 0, or -1 with the reason in `why`. */
int bench_nccl_load(nccl_t *nccl, char *why, size_t len);

#endif
