/* mnnvl-bench: benchmarks of libmnnvl, one subcommand each. Benchmarks are not tests: each
 * checks correctness first, then measures with warm-up and medians. */
#include "build_config.h"

#include <stdio.h>
#include <string.h>

#include "tools/bench.h"
#include "tools/cuda_dl.h"

static int asked_for_help;

/* The GPU benchmarks skip without a GPU; point to the one that measures without. */
static int hint_without_gpu(int rc)
{
    char why[256] = "";
    if (asked_for_help)
        return rc;
#ifdef HAVE_CUDA
    if (tool_gpu_count(why, sizeof(why)) >= 1)
        return rc;
#else
    snprintf(why, sizeof(why), "libmnnvl was built without CUDA");
#endif
    printf("mnnvl-bench: no GPU here (%s); `mnnvl-bench bootstrap` measures what runs without "
           "one: CPU-only communicators over the TCP bootstrap (create, allgather, barrier)\n",
           why);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mnnvl-bench [SUBCOMMAND] [OPTIONS]\n"
                 "  init       (default) communicator creation + a 64 MiB symmetric allocation,\n"
                 "             one process per visible GPU, TCP bootstrap on loopback\n"
                 "  bootstrap  CPU-only communicators: create + allgather(64 B) + barrier\n"
                 "  allreduce  bf16 all-reduce and fused residual+RMSNorm against NCCL\n"
                 "  moe        MoE dispatch and combine against NCCL all-to-all-v\n"
                 "  dcp        DCP (Helix) all-to-all and its fused LSE merge against NCCL\n"
                 "Run `mnnvl-bench SUBCOMMAND --help` for its options.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        asked_for_help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-')
        return hint_without_gpu(bench_init(argc, argv));
    if (strcmp(argv[1], "init") == 0)
        return hint_without_gpu(bench_init(argc - 1, argv + 1));
    if (strcmp(argv[1], "bootstrap") == 0)
        return bench_bootstrap(argc - 1, argv + 1);
    if (strcmp(argv[1], "allreduce") == 0)
        return hint_without_gpu(bench_allreduce(argc - 1, argv + 1));
    if (strcmp(argv[1], "moe") == 0)
        return hint_without_gpu(bench_moe(argc - 1, argv + 1));
    if (strcmp(argv[1], "dcp") == 0)
        return hint_without_gpu(bench_dcp(argc - 1, argv + 1));
    fprintf(stderr, "mnnvl-bench: unknown subcommand \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
