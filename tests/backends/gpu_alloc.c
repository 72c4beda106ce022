/* A 4-GPU symmetric allocation bootstrapped through one backend, for the GPU machine (not
 * part of `make check`: the CI machine has no GPU). Rank r runs on device r % (visible
 * GPUs), so one GPU is enough (rank 0 prints how many ranks share each GPU), allocates
 * 64 MiB with mnnvl_mem_alloc, writes a pattern into its own piece, and after a barrier
 * reads every rank's piece through mnnvl_mem_ptr and checks it. Prints one line,
 * "gpu_alloc BACKEND: N ranks OK (handle type T)" or why it failed; exits 0 or 1.
 *
 *     gpu_alloc [options] tcp|torch-store|ucx|ofi     forks the ranks itself
 *     mpirun -np 4 gpu_alloc [options] mpi            one rank per mpirun process
 *
 * Options: --ranks N (4), --timeout-ms MS (60000), --address HOST:PORT (root, or the
 * TCPStore for torch-store; default: a free loopback port, and for torch-store a store
 * this program starts), --handle-type auto|fabric|posix-fd (the config key; auto),
 * --python PY and --store-script PATH (the interpreter with torch and
 * tests/backends/torch_store.py, to start the TCPStore). The plugins are found through
 * MNNVL_PLUGIN_DIR; gpu_alloc.sh sets everything for a build directory. */
#include <arpa/inet.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h" /* base/: the one clock */
#include "mnnvl.h"

#define MIB ((size_t)1 << 20)
#define BYTES (64 * MIB)
#define MAX_RANKS 16

typedef struct job {
    const char *backend;
    int ranks;
    int timeout_ms;
    char address[160];
    const char *handle_type;
    const char *python;
    const char *store_script;
    char prefix[64];
} job_t;

static uint32_t pattern(int rank, size_t i)
{
    return (uint32_t)rank << 26 ^ (uint32_t)(i * 2654435761u);
}

/* "rank R: WHAT failed: STATUS: sentence" on stderr; returns 1 when st is not success. */
static int failed(mnnvl_status_t st, int rank, const char *what)
{
    if (st == MNNVL_SUCCESS)
        return 0;
    fprintf(stderr, "rank %d: %s failed: %s: %s\n", rank, what, mnnvl_status_string(st),
            mnnvl_last_error());
    return 1;
}

static int cuda_failed(cudaError_t e, int rank, const char *what)
{
    if (e == cudaSuccess)
        return 0;
    fprintf(stderr, "rank %d: %s failed: %s\n", rank, what, cudaGetErrorString(e));
    return 1;
}

static mnnvl_status_t make_config(const job_t *job, mnnvl_config_t *out)
{
    mnnvl_config_t cfg = NULL;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", job->timeout_ms);
    int store = strcmp(job->backend, "torch-store") == 0;
    mnnvl_status_t st = mnnvl_config_create(&cfg);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "bootstrap", job->backend);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "comm_name", "gpu_alloc");
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "timeout_ms", timeout);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "handle_type", job->handle_type);
    if (st == MNNVL_SUCCESS && job->address[0])
        st = mnnvl_config_set(cfg, store ? "store" : "root", job->address);
    if (st == MNNVL_SUCCESS && store)
        st = mnnvl_config_set(cfg, "store_prefix", job->prefix);
    if (st == MNNVL_SUCCESS && strcmp(job->backend, "mpi") == 0)
        st = mnnvl_config_set(cfg, "mpi_init", "1"); /* this program never touches MPI */
    if (st != MNNVL_SUCCESS) {
        mnnvl_config_destroy(cfg);
        return st;
    }
    *out = cfg;
    return MNNVL_SUCCESS;
}

/* Writes, checks and reports; the communicator and the memory exist. Returns 0 when every
 * rank saw every piece intact. */
static int check_memory(const job_t *job, mnnvl_comm_t comm, mnnvl_mem_t mem, int rank)
{
    const size_t words = BYTES / 4;
    uint32_t *host = malloc(BYTES);
    if (!host) {
        fprintf(stderr, "rank %d: no host memory for %zu bytes\n", rank, BYTES);
        return 1;
    }
    for (size_t i = 0; i < words; i++)
        host[i] = pattern(rank, i);
    int bad = cuda_failed(cudaMemcpy(mnnvl_mem_ptr(mem, rank), host, BYTES, cudaMemcpyHostToDevice),
                          rank, "writing the own piece") ||
              cuda_failed(cudaDeviceSynchronize(), rank, "cudaDeviceSynchronize");
    /* Everybody wrote before anybody reads; a rank that failed still joins the barrier. */
    bad |= failed(mnnvl_comm_barrier(comm), rank, "barrier after writing");
    for (int p = 0; p < job->ranks && !bad; p++) {
        if (cuda_failed(cudaMemcpy(host, mnnvl_mem_ptr(mem, p), BYTES, cudaMemcpyDeviceToHost),
                        rank, "reading a peer's piece")) {
            bad = 1;
            break;
        }
        for (size_t i = 0; i < words; i++) {
            if (host[i] != pattern(p, i)) {
                fprintf(stderr, "rank %d: rank %d's piece: word %zu is %08x, expected %08x\n", rank,
                        p, i, host[i], pattern(p, i));
                bad = 1;
                break;
            }
        }
    }
    free(host);
    /* Every rank's verdict, so that rank 0 can speak for all; also keeps every piece mapped
     * until everybody read. */
    int32_t mine = bad, all[MAX_RANKS] = {0};
    if (failed(mnnvl_comm_allgather(comm, &mine, all, sizeof(mine)), rank, "allgather"))
        return 1;
    int nbad = 0;
    for (int r = 0; r < job->ranks; r++)
        nbad += all[r] != 0;
    if (rank == 0 && nbad == 0)
        printf("gpu_alloc %s: %d ranks OK (handle type %s)\n", job->backend, job->ranks,
               mnnvl_comm_handle_type(comm));
    else if (rank == 0)
        printf("gpu_alloc %s: FAILED: %d of %d ranks saw wrong or unreadable pieces (see "
               "stderr)\n",
               job->backend, nbad, job->ranks);
    fflush(stdout);
    return nbad != 0;
}

static int run_rank(const job_t *job, int rank)
{
    /* Counted in the rank (each forked rank initialises CUDA itself, never the parent). */
    int gpus = 0;
    if (cuda_failed(cudaGetDeviceCount(&gpus), rank, "cudaGetDeviceCount") || gpus < 1)
        return 1;
    int device = rank % gpus;
    if (rank == 0)
        printf("gpu_alloc %s: %d ranks on %d GPU%s (%d per GPU)\n", job->backend, job->ranks, gpus,
               gpus == 1 ? "" : "s", (job->ranks + gpus - 1) / gpus);
    mnnvl_config_t cfg = NULL;
    if (failed(make_config(job, &cfg), rank, "config"))
        return 1;
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, rank, job->ranks, device, &comm);
    mnnvl_config_destroy(cfg);
    if (failed(st, rank, "comm_create"))
        return 1;
    int bad = cuda_failed(cudaSetDevice(device), rank, "cudaSetDevice");
    mnnvl_mem_t mem = NULL;
    if (!bad)
        bad = failed(mnnvl_mem_alloc(comm, BYTES, &mem), rank, "mem_alloc of 64 MiB");
    if (!bad)
        bad = check_memory(job, comm, mem, rank);
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(comm);
    return bad;
}

/* ---------------------------------------------------------------------------------------- */
/* Forked ranks, and the TCPStore server for torch-store                                    */
/* ---------------------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Waits for pid until the deadline, then kills it. Returns its exit code, 128+signal. */
static int reap(pid_t pid, uint64_t deadline)
{
    for (;;) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0)
            return 127;
        if (mnnvl_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            deadline = UINT64_MAX;
        }
        usleep(10000);
    }
}

/* Starts torch_store.py serve with a pipe on its stdin (closing it stops the server). */
static pid_t store_start(job_t *job, int *stdin_fd)
{
    char portfile[64];
    snprintf(portfile, sizeof(portfile), "/tmp/gpu_alloc-store-%d", (int)getpid());
    unlink(portfile);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0], 0);
        execlp(job->python, job->python, job->store_script, "serve", portfile, (char *)NULL);
        fprintf(stderr, "gpu_alloc: cannot run %s: %s\n", job->python, strerror(errno));
        _exit(127);
    }
    close(p[0]);
    *stdin_fd = p[1];
    uint64_t deadline = mnnvl_now_ms() + 120000; /* importing torch takes a while */
    while (pid > 0 && mnnvl_now_ms() < deadline) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f && fscanf(f, "%d", &port) == 1) {
            fclose(f);
            unlink(portfile);
            snprintf(job->address, sizeof(job->address), "127.0.0.1:%d", port);
            return pid;
        }
        if (f)
            fclose(f);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "gpu_alloc: the TCPStore server (%s %s) exited with %d\n", job->python,
                    job->store_script, WEXITSTATUS(status));
            close(p[1]);
            return -1;
        }
        usleep(50000);
    }
    fprintf(stderr, "gpu_alloc: the TCPStore server did not start within 120 s\n");
    close(p[1]);
    if (pid > 0)
        reap(pid, 0);
    return -1;
}

static int run_forked(job_t *job)
{
    int store_fd = -1;
    pid_t store = 0;
    if (strcmp(job->backend, "torch-store") == 0 && !job->address[0]) {
        store = store_start(job, &store_fd);
        if (store < 0) {
            printf("gpu_alloc %s: FAILED: no TCPStore server\n", job->backend);
            return 1;
        }
    } else if (!job->address[0]) {
        snprintf(job->address, sizeof(job->address), "127.0.0.1:%d", free_port());
    }
    pid_t pids[MAX_RANKS];
    fflush(NULL);
    for (int r = 0; r < job->ranks; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            int rc = run_rank(job, r);
            fflush(NULL);
            _exit(rc);
        }
    }
    /* The ranks end by themselves within timeout_ms per step; this is the backstop. */
    uint64_t deadline = mnnvl_now_ms() + 4 * (uint64_t)job->timeout_ms + 60000;
    int bad = 0;
    for (int r = 0; r < job->ranks; r++) {
        int rc = pids[r] > 0 ? reap(pids[r], deadline) : 127;
        if (rc != 0) {
            fprintf(stderr, "gpu_alloc %s: rank %d exited with %d\n", job->backend, r, rc);
            bad++;
        }
    }
    if (store > 0) {
        close(store_fd);
        reap(store, mnnvl_now_ms() + 10000);
    }
    if (bad)
        printf("gpu_alloc %s: FAILED: %d of %d ranks failed (see stderr)\n", job->backend, bad,
               job->ranks);
    return bad != 0;
}

/* The rank mpirun gave this process: Open MPI's variables, else PMI's. */
static int env_int(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (!v)
        v = getenv(b);
    return v ? atoi(v) : -1;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--ranks N] [--timeout-ms MS] [--address HOST:PORT]\n"
            "          [--handle-type auto|fabric|posix-fd] [--python PY] [--store-script PATH]\n"
            "          tcp|torch-store|ucx|ofi|mpi   (mpi: under mpirun -np N)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    job_t job = {.ranks = 4,
                 .timeout_ms = 60000,
                 .handle_type = "auto",
                 .python = "python3",
                 .store_script = "torch_store.py"};
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--ranks") == 0 && next)
            job.ranks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout-ms") == 0 && next)
            job.timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--address") == 0 && next)
            snprintf(job.address, sizeof(job.address), "%s", argv[++i]);
        else if (strcmp(argv[i], "--handle-type") == 0 && next)
            job.handle_type = argv[++i];
        else if (strcmp(argv[i], "--python") == 0 && next)
            job.python = argv[++i];
        else if (strcmp(argv[i], "--store-script") == 0 && next)
            job.store_script = argv[++i];
        else if (argv[i][0] != '-' && !job.backend)
            job.backend = argv[i];
        else
            return usage(argv[0]);
    }
    if (!job.backend || job.ranks < 1 || job.ranks > MAX_RANKS || job.timeout_ms <= 0)
        return usage(argv[0]);
    snprintf(job.prefix, sizeof(job.prefix), "gpu-alloc-%d", (int)getpid());
    if (strcmp(job.backend, "mpi") != 0)
        return run_forked(&job);
    int rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK");
    int size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
    if (rank < 0 || size != job.ranks) {
        fprintf(stderr, "gpu_alloc mpi: run under mpirun -np %d (this process: rank %d of %d)\n",
                job.ranks, rank, size);
        return 2;
    }
    return run_rank(&job, rank);
}
