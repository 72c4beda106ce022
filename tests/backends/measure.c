/* Measures comm_create and allgather(64 B) + barrier for one backend with N forked ranks.
 * Run by hand; the numbers go into the closing note.
 *
 *     measure BACKEND NRANKS [ADDRESS|-] [SCENARIO]
 *
 * ADDRESS is the root (tcp, ucx, ofi; default, or "-": a free loopback port) or the
 * TCPStore (torch-store, required; start one with tests/backends/torch_store.py serve FILE).
 * SCENARIO runs a conformance scenario instead ("collectives", "many", "killed"), to time or
 * debug one backend outside the Criterion suite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conformance.h"
#include "deadline.h"
#include "testutil.h"

#define MAX_RANKS 1024

typedef struct job {
    const char *scenario;
    bk_target_t t;
} job_t;

static int run_rank(int rank, int size, void *arg)
{
    job_t *job = arg;
    return bk_run_scenario(job->scenario, rank, size, &job->t);
}

int main(int argc, char **argv)
{
    int size = argc >= 3 ? atoi(argv[2]) : 0;
    if (argc < 3 || size < 1 || size > MAX_RANKS) {
        fprintf(stderr, "usage: %s BACKEND NRANKS(1..%d) [ADDRESS|-] [SCENARIO]\n", argv[0],
                MAX_RANKS);
        return 2;
    }
    job_t job = {.scenario = argc > 4 ? argv[4] : "measure",
                 .t = {.timeout_ms = 120000, .max_bytes = 1 << 20}};
    snprintf(job.t.backend, sizeof(job.t.backend), "%s", argv[1]);
    if (argc > 3 && strcmp(argv[3], "-") != 0)
        snprintf(job.t.address, sizeof(job.t.address), "%s", argv[3]);
    else
        mt_loopback_root(job.t.address, sizeof(job.t.address));
    if (strcmp(job.scenario, "killed") == 0)
        job.t.timeout_ms = 3000;
    snprintf(job.t.prefix, sizeof(job.t.prefix), "measure-%d", (int)getpid());
    static int codes[MAX_RANKS];
    uint64_t start = mnnvl_now_ms();
    int failed = mt_run_ranks(size, run_rank, &job, 600, codes);
    printf("%s: %d ranks: %s: whole run (fork, create, ..., destroy, exit) %llu ms, %d ranks "
           "failed\n",
           job.t.backend, size, job.scenario, (unsigned long long)(mnnvl_now_ms() - start), failed);
    for (int r = 0; r < size && failed; r++)
        if (codes[r])
            printf("  rank %d exited with %d\n", r, codes[r]);
    return failed != 0;
}
