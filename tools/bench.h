/* The subcommands of mnnvl-bench; tools/mnnvl-bench.c picks one by its first argument.
 * Each gets the arguments from the subcommand's name on (argv[0] is "init", "bootstrap",
 * or the program's name when no subcommand was given) and returns the exit code. */
#ifndef MNNVL_BENCH_H
#define MNNVL_BENCH_H

/* Communicator creation + a symmetric allocation, one process per GPU (bench_init.c). */
int bench_init(int argc, char **argv);

/* CPU-only communicators: comm_create + allgather(64 B) + barrier over forked processes,
 * `--ranks N --reps K` (bench_bootstrap.c). */
int bench_bootstrap(int argc, char **argv);

/* All-reduce against NCCL in the same run, one process per GPU (bench_allreduce.c). */
int bench_allreduce(int argc, char **argv);

/* MoE dispatch and combine against NCCL all-to-all-v (bench_moe.c). */
int bench_moe(int argc, char **argv);

/* The DCP all-to-all (transpose and fused lse_reduce) against NCCL all-to-all, and that plus
 * a merge kernel (bench_dcp.c). */
int bench_dcp(int argc, char **argv);

#include <stddef.h>

#include "mnnvl.h"

#define BENCH_MAX_RANKS 64

/* The body of one benchmark rank; its return value is the process's exit code. */
typedef int (*bench_rank_fn)(int rank, int size, const char *root, void *arg);

/* A TCP root on a free loopback port, in this process (bench_ranks.c). */
typedef struct bench_root {
    mnnvl_config_t cfg;
    mnnvl_root_t root;
} bench_root_t;

/* Starts r; returns 0, or -1 after saying why on stderr (r then needs no stop). */
int bench_root_start(bench_root_t *r);
void bench_root_stop(bench_root_t *r);

/* Starts a TCP root on loopback, forks `size` processes running fn(rank, size, root's
 * address, arg), waits for them and stops the root (bench_ranks.c). Returns the number of
 * ranks that failed, -1 when no root could start. Call it before this process touches CUDA:
 * each child initialises CUDA itself. */
int bench_run_ranks(int size, bench_rank_fn fn, void *arg);

/* Zeroed memory shared with the forked ranks, for their results; NULL on failure. */
void *bench_shared_alloc(size_t bytes);
void bench_shared_free(void *p, size_t bytes);

/* Writes a log-log line chart as SVG: `nseries` series of `npoints` points sharing `x`
 * (bench_svg.c). Returns 0, or -1 when the file cannot be written. */
int bench_svg_write(const char *path, const char *title, const char *x_label, const char *y_label,
                    int nseries, const char *const *names, const double *x, const double *const *y,
                    int npoints);

#endif
