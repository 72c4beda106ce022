/* README's example as a program: one process per rank; rank 0 listens on ROOT and the
 * others connect to it. With a GPU (DEVICE >= 0) each rank maps every rank's piece of a
 * symmetric allocation; CPU-only (DEVICE -1, the default) the ranks exchange their ranks
 * over the bootstrap, which is what schedulers and hosts without a GPU can do.
 *
 *   cc comm.c $(pkg-config --cflags --libs mnnvl) -o comm
 *   ./comm 0 2 127.0.0.1:29600 & ./comm 1 2 127.0.0.1:29600
 *
 * make check builds it against the installed library and runs it (examples/c_example.sh). */
#include <mnnvl.h>
#include <stdio.h>
#include <stdlib.h>

static int run(int rank, int size, const char *root, int device)
{
    mnnvl_config_t cfg = NULL;
    mnnvl_comm_t comm;
    mnnvl_status_t st = mnnvl_config_create(&cfg); /* MNNVL_<KEY> env vars apply too */
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "root", root); /* rank 0 listens here */
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "job_key", "secret-of-this-job-0123456789abcdef0123");
    if (st == MNNVL_SUCCESS) /* device -1: CPU-only */
        st = mnnvl_comm_create(cfg, rank, size, device, &comm);
    mnnvl_config_destroy(cfg);
    if (st != MNNVL_SUCCESS) { /* e.g. a root that is no host:port */
        fprintf(stderr, "rank %d: %s: %s\n", rank, mnnvl_status_string(st), mnnvl_last_error());
        return 1;
    }
    if (device >= 0) {
        mnnvl_mem_t mem;
        st = mnnvl_mem_alloc(comm, 64 << 20, &mem); /* collective; same size everywhere */
        if (st == MNNVL_SUCCESS) {
            char *peer1 = mnnvl_mem_ptr(mem, 1); /* == base + 1*stride on every rank */
            (void)peer1;                         /* ... kernels read/write peers here */
            st = mnnvl_comm_device_barrier(comm, /*stream=*/NULL);
            mnnvl_mem_release(mem);
        }
    } else {
        int ranks[64] = {0};
        st = size <= 64 ? mnnvl_comm_allgather(comm, &rank, ranks, sizeof(rank))
                        : MNNVL_ERR_INVALID_ARGUMENT;
        for (int r = 0; st == MNNVL_SUCCESS && r < size; r++)
            if (ranks[r] != r)
                st = MNNVL_ERR_INTERNAL;
        if (st == MNNVL_SUCCESS)
            printf("rank %d of %d: allgather over %s gave every rank\n", rank, size, root);
    }
    if (st != MNNVL_SUCCESS)
        fprintf(stderr, "rank %d: %s: %s\n", rank, mnnvl_status_string(st), mnnvl_last_error());
    mnnvl_status_t async;
    mnnvl_comm_get_async_error(comm, &async); /* a kernel's timeout or abort */
    mnnvl_comm_destroy(comm);
    return st != MNNVL_SUCCESS || async != MNNVL_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s RANK SIZE ROOT_HOST:PORT [DEVICE (default -1: CPU-only)]\n",
                argv[0]);
        return 2;
    }
    return run(atoi(argv[1]), atoi(argv[2]), argv[3], argc == 5 ? atoi(argv[4]) : -1);
}
