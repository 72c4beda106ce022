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

/* Writes a log-log line chart as SVG: `nseries` series of `npoints` points sharing `x`
 * (bench_svg.c). Returns 0, or -1 when the file cannot be written. */
int bench_svg_write(const char *path, const char *title, const char *x_label,
                    const char *y_label, int nseries, const char *const *names, const double *x,
                    const double *const *y, int npoints);

#endif
