/* The benchmarks' process model: a TCP root on loopback in the parent, one forked process
 * per rank, results written into memory shared with the parent. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnnvl.h"
#include "tools/bench.h"

int bench_root_start(bench_root_t *r)
{
    r->cfg = NULL;
    r->root = NULL;
    if (mnnvl_config_create(&r->cfg) != MNNVL_SUCCESS ||
        mnnvl_root_start(r->cfg, "127.0.0.1:0", &r->root) != MNNVL_SUCCESS) {
        fprintf(stderr, "mnnvl-bench: cannot start a root: %s\n", mnnvl_last_error());
        mnnvl_config_destroy(r->cfg);
        return -1;
    }
    return 0;
}

void bench_root_stop(bench_root_t *r)
{
    mnnvl_root_stop(r->root);
    mnnvl_config_destroy(r->cfg);
}

int bench_run_ranks(int size, bench_rank_fn fn, void *arg)
{
    bench_root_t root;
    if (bench_root_start(&root) != 0)
        return -1;
    fflush(NULL);
    pid_t pids[BENCH_MAX_RANKS];
    for (int r = 0; r < size && r < BENCH_MAX_RANKS; r++) {
        pids[r] = fork();
        if (pids[r] == 0)
            _exit(fn(r, size, mnnvl_root_address(root.root), arg));
    }
    int failed = 0;
    for (int r = 0; r < size && r < BENCH_MAX_RANKS; r++) {
        int status;
        waitpid(pids[r], &status, 0);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    bench_root_stop(&root);
    return failed;
}

void *bench_shared_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

void bench_shared_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}
