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
    size_t max_bytes;  /* the largest allgather of bk_collectives */
    char job_key[80];  /* "" for none (mpi cannot prove one) */
    int liveness_ms;   /* the liveness scenarios: how soon every survivor records a death */
    char scenario[32]; /* the scenario's name (bk_run_scenario sets it) */
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

/* Liveness, for backends with poll_lost: after a first barrier, the victims die by SIGKILL
 * ("liveness": the last rank; "liveness_root": rank 0; "liveness_two": the last rank, then
 * rank 1 once its own record shows that death). Every survivor's mnnvl_comm_failed_ranks
 * must list exactly the victims, reason CONNECTION, within t->liveness_ms of the barrier
 * per death, without any call of its own on the communicator; so must the record of a
 * child (mnnvl_comm_shrink excluding nobody, made before the deaths) unless rank 0 dies.
 * The next barrier then fails with PEER_LOST. Reads t->scenario. */
int bk_liveness(int rank, int size, void *target);

/* A rank leaves gracefully right after a first barrier ("graceful": the last rank;
 * "graceful_root": rank 0): it destroys the communicator and its process ends. No other
 * rank may record any failure for the next 2 s. Reads t->scenario. */
int bk_graceful(int rank, int size, void *target);

/* allgather(64 B) + barrier on a fresh communicator; prints the time of both on rank 0. */
int bk_measure(int rank, int size, void *target);

/* Runs a scenario by name ("collectives", "many", "killed", "wrong_key", "measure",
 * "shrink", "shrink_alive", "shrink_mismatch", "liveness", "liveness_root", "liveness_two",
 * "graceful", "graceful_root"); -1 if unknown. bk_scenario finds the body (NULL if unknown). */
typedef int (*bk_scenario_fn)(int rank, int size, void *target);
bk_scenario_fn bk_scenario(const char *name);
/* The rank that plays `part` ("first", "second": the victims that kill themselves;
 * "leaver") in the scenario, -1 for none. */
int bk_scenario_rank(const char *name, const char *part, int size);
/* 1 when `rank` kills itself in the scenario (its exit status is then 128 + SIGKILL). */
int bk_victim(const char *name, int rank, int size);
int bk_run_scenario(const char *name, int rank, int size, bk_target_t *t);

#endif
