/* Measures comm_create and allgather(64 B) + barrier for one backend with N forked ranks.
 * Run by hand; the numbers go into the closing note.
 *
 *     measure BACKEND NRANKS [ADDRESS]
 *
 * ADDRESS is the root (tcp, ucx, ofi; default a free loopback port) or the TCPStore
 * (torch-store, required; start one with tests/backends/torch_store.py serve FILE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conformance.h"
#include "deadline.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BACKEND NRANKS [ADDRESS]\n", argv[0]);
        return 2;
    }
    bk_target_t t = {.timeout_ms = 120000};
    snprintf(t.backend, sizeof(t.backend), "%s", argv[1]);
    int size = atoi(argv[2]);
    if (argc > 3)
        snprintf(t.address, sizeof(t.address), "%s", argv[3]);
    else
        mt_loopback_root(t.address, sizeof(t.address));
    snprintf(t.prefix, sizeof(t.prefix), "measure-%d", (int)getpid());
    uint64_t start = mnnvl_now_ms();
    int failed = mt_run_ranks(size, bk_measure, &t, 600, NULL);
    printf("%s: %d ranks: whole run (fork, create, allgather, barrier, destroy, exit) %llu ms, "
           "%d ranks failed\n",
           t.backend, size, (unsigned long long)(mnnvl_now_ms() - start), failed);
    return failed != 0;
}
