/* Symmetric memory across real GPUs: one process per GPU. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_ranks.h"

MT_SUITE(symmem, 120)

static uint32_t pattern(int rank, size_t i)
{
    return (uint32_t)rank << 24 ^ (uint32_t)(i * 2654435761u);
}

/* Every rank writes its pattern into its own piece and a marker into its right neighbour's
 * piece; then every rank reads every peer's piece through base + p*stride. */
static int pattern_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    mnnvl_comm_t comm = gpu_comm(job, rank, size);
    if (!comm)
        return 1;
    const size_t bytes = 8u * 1024 * 1024 + 12; /* not a multiple of the granularity */
    const size_t words = bytes / 4;
    mnnvl_mem_t mem;
    if (mt_fail(mnnvl_mem_alloc(comm, bytes, &mem), rank, "mem_alloc"))
        return 1;
    char *base = mnnvl_mem_base(mem);
    size_t stride = mnnvl_mem_stride(mem);
    if (stride < bytes || stride % (2u << 20) != 0 || mnnvl_mem_size(mem) != bytes) {
        fprintf(stderr, "rank %d: stride %zu size %zu for %zu bytes\n", rank, stride,
                mnnvl_mem_size(mem), bytes);
        return 1;
    }
    for (int p = 0; p < size; p++)
        if (mnnvl_mem_ptr(mem, p) != base + (size_t)p * stride)
            return fprintf(stderr, "rank %d: mem_ptr(%d) is not base + p*stride\n", rank, p), 1;
    if (mnnvl_mem_ptr(mem, size) != NULL || mnnvl_mem_ptr(mem, -1) != NULL)
        return fprintf(stderr, "rank %d: mem_ptr out of range is not NULL\n", rank), 1;

    uint32_t *host = malloc(bytes);
    for (size_t i = 0; i < words; i++)
        host[i] = pattern(rank, i);
    CUDA_OK(rank, cudaMemcpy(mnnvl_mem_ptr(mem, rank), host, words * 4, cudaMemcpyHostToDevice));
    /* A write into the neighbour's piece, past our pattern's end: remote writes work too. */
    uint64_t marker = 0xabcd000000000000ull | (uint64_t)rank;
    char *right = mnnvl_mem_ptr(mem, (rank + 1) % size);
    CUDA_OK(rank, cudaMemcpy(right + stride - 8, &marker, 8, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaDeviceSynchronize());
    if (mt_fail(mnnvl_comm_barrier(comm), rank, "barrier"))
        return 1;
    int bad = 0;
    for (int p = 0; p < size && !bad; p++) {
        CUDA_OK(rank, cudaMemcpy(host, mnnvl_mem_ptr(mem, p), words * 4, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < words; i++) {
            if (host[i] != pattern(p, i)) {
                fprintf(stderr, "rank %d: peer %d word %zu is %08x, want %08x\n", rank, p, i,
                        host[i], pattern(p, i));
                bad = 1;
                break;
            }
        }
    }
    uint64_t got = 0;
    CUDA_OK(rank,
            cudaMemcpy(&got, base + (size_t)rank * stride + stride - 8, 8, cudaMemcpyDeviceToHost));
    uint64_t want = 0xabcd000000000000ull | (uint64_t)((rank + size - 1) % size);
    if (got != want) {
        fprintf(stderr, "rank %d: marker from the left neighbour is %llx, want %llx\n", rank,
                (unsigned long long)got, (unsigned long long)want);
        bad = 1;
    }
    free(host);
    mnnvl_comm_barrier(comm); /* nobody frees while a peer still reads */
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(comm);
    return bad;
}

GPU_TESTS_2_AND_4(symmem, every_rank_reads_every_peer, pattern_body, 30000)

/* Rank 1 asks for a different size: every rank gets MISMATCH, and the communicator still
 * works for a correct allocation afterwards. */
static int mismatch_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm)
        return 1;
    mnnvl_mem_t mem = (mnnvl_mem_t)1;
    mnnvl_status_t st = mnnvl_mem_alloc(comm, rank == 1 ? 4u << 20 : 2u << 20, &mem);
    if (st != MNNVL_ERR_MISMATCH || mem != NULL) {
        fprintf(stderr, "rank %d: unequal sizes gave %s, want MISMATCH\n", rank,
                mnnvl_status_string(st));
        return 1;
    }
    if (!strstr(mnnvl_last_error(), "rank 1 asked for 4194304 bytes")) {
        fprintf(stderr, "rank %d: sentence lacks the sizes: %s\n", rank, mnnvl_last_error());
        return 1;
    }
    st = mnnvl_mem_alloc(comm, rank == 0 ? 0 : 4096, &mem);
    if (st != MNNVL_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "rank %d: a zero size on rank 0 gave %s\n", rank, mnnvl_status_string(st));
        return 1;
    }
    if (mt_fail(mnnvl_mem_alloc(comm, 4096, &mem), rank, "mem_alloc after MISMATCH"))
        return 1;
    mnnvl_mem_release(mem);
    mnnvl_comm_destroy(comm);
    return 0;
}

GPU_TESTS_2_AND_4(symmem, unequal_sizes_give_mismatch_on_every_rank, mismatch_body, 30000)

/* Rank 0 allocates while capturing a graph: GRAPH_CAPTURE there and an error on the peers,
 * never a hang. Memory keeps its communicator alive after comm_destroy. */
static int capture_and_lifetime_body(int rank, int size, void *arg)
{
    mnnvl_comm_t comm = gpu_comm(arg, rank, size);
    if (!comm)
        return 1;
    cudaStream_t stream;
    CUDA_OK(rank, cudaStreamCreate(&stream));
    mnnvl_mem_t mem = NULL;
    if (rank == 0)
        CUDA_OK(rank, cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    mnnvl_status_t st = mnnvl_mem_alloc(comm, 1u << 20, &mem);
    if (rank == 0) {
        cudaGraph_t graph;
        cudaStreamEndCapture(stream, &graph);
        cudaGraphDestroy(graph);
    }
    if (st != MNNVL_ERR_GRAPH_CAPTURE || mem) {
        fprintf(stderr, "rank %d: alloc during rank 0's capture gave %s (%s)\n", rank,
                mnnvl_status_string(st), mnnvl_last_error());
        return 1;
    }
    if (mt_fail(mnnvl_mem_alloc(comm, 1u << 20, &mem), rank, "mem_alloc after capture"))
        return 1;
    mnnvl_comm_destroy(comm); /* the memory still holds the communicator */
    if (mnnvl_comm_rank(comm) != rank)
        return fprintf(stderr, "rank %d: communicator freed under its memory\n", rank), 1;
    uint32_t v = 0x5eed0000u + (uint32_t)rank, back = 0;
    CUDA_OK(rank, cudaMemcpy(mnnvl_mem_ptr(mem, rank), &v, 4, cudaMemcpyHostToDevice));
    CUDA_OK(rank, cudaMemcpy(&back, mnnvl_mem_ptr(mem, rank), 4, cudaMemcpyDeviceToHost));
    mnnvl_mem_retain(mem);
    mnnvl_mem_release(mem);
    if (back != v || mnnvl_mem_size(mem) != (1u << 20))
        return fprintf(stderr, "rank %d: memory unusable after comm_destroy\n", rank), 1;
    mnnvl_mem_release(mem);
    cudaStreamDestroy(stream);
    return 0;
}

GPU_TEST(symmem, capture_is_refused_and_memory_keeps_its_communicator, 2, capture_and_lifetime_body,
         30000)

static int cpu_only_body(int rank, int size, void *arg)
{
    const gpu_job_t *job = arg;
    mnnvl_config_t cfg = mt_config(job->root, NULL, job->timeout_ms);
    mnnvl_comm_t comm;
    if (mt_fail(mnnvl_comm_create(cfg, rank, size, -1, &comm), rank, "comm_create"))
        return 1;
    mnnvl_config_destroy(cfg);
    mnnvl_mem_t mem;
    int bad = mnnvl_mem_alloc(comm, 4096, &mem) != MNNVL_ERR_INVALID_USAGE ||
              mnnvl_comm_device_barrier(comm, NULL) != MNNVL_ERR_INVALID_USAGE ||
              strcmp(mnnvl_comm_handle_type(comm), "none") != 0;
    mnnvl_comm_destroy(comm);
    return bad;
}

MT_RANK_FN(cpu_only_body, gpu_job_t)

/* Runs without a GPU too: a CPU-only communicator refuses GPU calls with INVALID_USAGE. */
Test(symmem, cpu_only_communicator_refuses_gpu_calls)
{
    gpu_job_t job = {.timeout_ms = 10000};
    mt_loopback_root(job.root, sizeof(job.root));
    cr_assert_eq(mt_run_ranks(2, cpu_only_body, &job, 30, NULL), 0);
}
