/* Fixtures shared by the test programs: running ranks as real processes, finding a free
 * loopback port, and deciding whether GPU tests run or skip. */
#ifndef MNNVL_TESTUTIL_H
#define MNNVL_TESTUTIL_H

#include <stddef.h>

#include "mnnvl.h"

/* The body of one rank; its return value becomes the process's exit code (0 = success). */
typedef int (*mt_rank_fn)(int rank, int size, void *arg);

/* Forks `size` processes running fn(rank, size, arg) and waits for all of them, killing the
 * rest with SIGKILL after `timeout_s` seconds. exit_codes (may be NULL) receives each rank's
 * exit code, or 128+signal when it was killed. Returns the number of ranks that did not
 * exit with 0. Must be called before this process initialises CUDA. */
int mt_run_ranks(int size, mt_rank_fn fn, void *arg, int timeout_s, int *exit_codes);

/* Exec'd ranks, for tools that must launch the process themselves (compute-sanitizer):
 * when MNNVL_RANK_LAUNCHER is set (e.g. "compute-sanitizer --tool memcheck
 * --error-exitcode 97"), mt_run_ranks starts each rank of a registered function as
 * `launcher... /proc/self/exe` with MNNVL_RANK_EXEC=name:rank:size:hex-of-arg in its
 * environment. A constructor of this library recognises that variable before Criterion's
 * main runs, calls the registered function and _exits with its result. Only functions whose
 * argument is a flat struct (no pointers) can be registered; an unregistered one still runs
 * forked, with a note on stderr. */
void mt_register_rank_fn(const char *name, mt_rank_fn fn, size_t arg_size);

/* MNNVL_RANK_LAUNCHER when it is set and not empty (ranks are exec'd through it), else NULL. */
const char *mt_launcher(void);

/* Registers fn, whose argument is an `arg_type`, for exec'd ranks (see above). */
#define MT_RANK_FN(fn, arg_type)                                         \
    __attribute__((constructor(200))) static void mt_register_##fn(void) \
    {                                                                    \
        mt_register_rank_fn(#fn, fn, sizeof(arg_type));                  \
    }

/* Factor for every test time limit: MNNVL_TEST_TIME_SCALE (a positive integer), else 10
 * when MNNVL_RANK_LAUNCHER is set (sanitizers are slow), else 1. */
int mt_time_scale(void);

/* TestSuite(name, .timeout = seconds), with the timeout multiplied by mt_time_scale() before
 * Criterion's main reads it, so a sanitizer run (MNNVL_RANK_LAUNCHER) is not cut short by
 * Criterion first. Criterion keeps a suite's options in a writable global named by its own
 * CR_SUITE_IDENTIFIER_; a constructor (after the rank registry, before main) scales it. Use
 * in a file that includes <criterion/criterion.h>. */
#define MT_SUITE(name, seconds)                                               \
    TestSuite(name, .timeout = (seconds));                                    \
    __attribute__((constructor(250))) static void mt_scale_suite_##name(void) \
    {                                                                         \
        CR_SUITE_IDENTIFIER_(name, extra).timeout *= mt_time_scale();         \
    }

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int mt_free_port(void);

/* Fills buf with "127.0.0.1:<free port>". */
void mt_loopback_root(char *buf, size_t len);

/* Creates a config with bootstrap=tcp, root=`root`, the given job key and timeout, or aborts
 * the process with a message. */
mnnvl_config_t mt_config(const char *root, const char *job_key, int timeout_ms);

/* Number of CUDA devices, counted in a child process so that the caller can still fork
 * ranks that use CUDA. 0 when there is no driver or no device. */
int mt_gpu_count(void);

/* Call at the start of a GPU test that needs `needed` GPUs. Returns 1 when the test should
 * run. Otherwise skips the test visibly (cr_skip) or, with MNNVL_REQUIRE_GPU=1 in the
 * environment, fails it. */
int mt_require_gpus(int needed);

/* Call at the start of a GPU test of `ranks` ranks that may share GPUs: rank r uses device
 * r % M of the M visible GPUs. Returns M (>= 1) when the test should run, after printing
 * "suite::test: N ranks on M GPUs (K per GPU)"; otherwise skips or fails as
 * mt_require_gpus(1) does and returns 0. */
int mt_gpus_for_ranks(int ranks);

/* Prints "rank R: <what> failed: STATUS: sentence" to stderr and returns 1 when st is not
 * success, else 0. For use inside rank bodies: `if (mt_fail(st, rank, "comm_create"))
 * return 1;`. */
int mt_fail(mnnvl_status_t st, int rank, const char *what);

#endif
