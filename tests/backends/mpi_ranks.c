/* Runs one conformance scenario (conformance.h) as the rank mpirun made this process, over
 * the mpi bootstrap. Links no MPI itself: the plugin does, and initialises MPI because the
 * test sets MNNVL_MPI_INIT=1.
 *
 *     mpirun -np N mpi_ranks collectives|many|killed|measure */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

static int env_int(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (!v)
        v = getenv(b);
    return v ? atoi(v) : -1;
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan build: Open MPI's MPI_Finalize unloads its MCA components, so LeakSanitizer sees their
 * never-freed allocations with "<unknown module>" frames that no suppression (matched by
 * name) can catch. Leak checking is off in this MPI rank program only; ASan's other checks
 * and UBSan stay on, and libmnnvl's leaks are still checked by every other test. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "detect_leaks=0";
}
#endif

int main(int argc, char **argv)
{
    int rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK");
    int size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
    if (argc != 2 || rank < 0 || size < 1) {
        fprintf(stderr,
                "usage: mpirun -np N %s SCENARIO (rank %d, size %d from the "
                "environment)\n",
                argv[0], rank, size);
        return 2;
    }
    bk_target_t t = {.backend = "mpi", .timeout_ms = 60000, .max_bytes = 1 << 20};
    if (strcmp(argv[1], "killed") == 0)
        t.timeout_ms = 3000;
    int rc = bk_run_scenario(argv[1], rank, size, &t);
    if (rc < 0)
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
    return rc < 0 ? 2 : rc;
}
