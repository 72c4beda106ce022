/* The conformance scenarios every bootstrap backend must pass, written as rank bodies for
 * mt_run_ranks (forked ranks) and for tests/backends/mpi_ranks (ranks started by mpirun). */
#ifndef MNNVL_TEST_CONFORMANCE_H
#define MNNVL_TEST_CONFORMANCE_H

#include <stddef.h>

#include "mnnvl.h"

/* Where a scenario's ranks meet. */
typedef struct bk_target {
    char backend[32];  /* tcp, torch-store, mpi, ucx, ofi */
    char address[128]; /* root (tcp, ucx, ofi) or store (torch-store); "" for mpi */
    char prefix[64];   /* store_prefix (torch-store) */
    int timeout_ms;
    size_t max_bytes; /* the largest allgather of bk_collectives */
    char job_key[80]; /* "" for none (mpi cannot prove one) */
} bk_target_t;

/* A config for the target, with comm_name `name`; aborts the process on failure. */
mnnvl_config_t bk_config(const bk_target_t *t, const char *name);

/* Allgather of 1 B .. max_bytes (x8 steps), broadcast from the first and last rank,
 * barrier, and a split into pairs when the size is even. */
int bk_collectives(int rank, int size, void *target);

/* 100 communicators of the same name created, used and destroyed in a row. */
int bk_many_comms(int rank, int size, void *target);

/* The last rank dies by SIGKILL after the first barrier; every other rank must see its
 * next barrier fail (TIMEOUT or PEER_LOST) within timeout_ms plus a grace. */
int bk_killed_rank(int rank, int size, void *target);

/* The last rank dies by SIGKILL after the first barrier; the others see their next barrier
 * fail, then mnnvl_comm_shrink excluding it, and check rank order, an allgather and a barrier
 * on the survivors' communicator. */
int bk_shrink_killed(int rank, int size, void *target);

/* Rank 1 stays alive but out: the others shrink without it and check the result (for
 * backends that cannot outlive a dead process, such as mpi). */
int bk_shrink_alive(int rank, int size, void *target);

/* 4 ranks, rank 3 killed; rank 0 excludes rank 2 and the others rank 3: every survivor must
 * get MISMATCH and no communicator. */
int bk_shrink_mismatch(int rank, int size, void *target);

/* Every rank but the last has t->job_key, the last another key: the last rank and rank 0
 * must fail comm_create with AUTH and a sentence that says why (without either key) well
 * well before timeout_ms, and the others with AUTH, PEER_LOST or TIMEOUT. */
int bk_wrong_key(int rank, int size, void *target);

/* allgather(64 B) + barrier on a fresh communicator; prints the time of both on rank 0. */
int bk_measure(int rank, int size, void *target);

/* Runs a scenario by name ("collectives", "many", "killed", "wrong_key", "measure",
 * "shrink", "shrink_alive", "shrink_mismatch"); -1 if unknown. */
int bk_run_scenario(const char *name, int rank, int size, bk_target_t *t);

#endif
