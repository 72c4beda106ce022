/* mnnvl-info: what libmnnvl sees on this host: version, driver and devices, the peer-access
 * matrix, whether FABRIC handles work, which handle type `auto` picks, and which bootstrap
 * backends are available. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"
#ifdef HAVE_CUDA
#include "tools/cuda_dl.h"
#endif

static void usage(void)
{
    printf("usage: mnnvl-info [--ranks N] [--help]\n"
           "Prints libmnnvl's version, the CUDA driver and devices, how many ranks per GPU a\n"
           "job of N ranks on this machine would put (rank r on device r %% GPUs; default\n"
           "N = 4 and 8), the P2P access matrix, the FABRIC handle probe, the handle type\n"
           "handle_type=auto would choose on one host, and the bootstrap backends this\n"
           "installation can use.\n");
}

/* "N ranks on this machine: K per GPU": ranks sharing a device are correct but time-slice. */
static void ranks_per_gpu(int ranks, int ndev)
{
    if (ndev < 1) {
        printf("%d ranks on this machine: no GPU\n", ranks);
        return;
    }
    int per = (ranks + ndev - 1) / ndev;
    printf("%d ranks on this machine: %s%d per GPU%s\n", ranks, ranks % ndev ? "up to " : "", per,
           per > 1 ? " (they share a GPU: correct, not fast)" : "");
}

#ifdef HAVE_CUDA
/* Creates a one-rank communicator on device 0 with the given handle_type through a root of
 * our own, and reports the handle type it settled on (or why it could not). */
static void probe_handle_type(const char *handle_type, char *out, size_t len)
{
    mnnvl_config_t cfg = NULL;
    mnnvl_root_t root = NULL;
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_config_create(&cfg);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_root_start(cfg, "127.0.0.1:0", &root);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "root", mnnvl_root_address(root));
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "root_mode", "external");
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "handle_type", handle_type);
    if (st == MNNVL_SUCCESS)
        st = mnnvl_config_set(cfg, "timeout_ms", "10000");
    if (st == MNNVL_SUCCESS)
        st = mnnvl_comm_create(cfg, 0, 1, 0, &comm);
    if (st == MNNVL_SUCCESS)
        snprintf(out, len, "%s", mnnvl_comm_handle_type(comm));
    else
        snprintf(out, len, "unavailable (%s: %s)", mnnvl_status_string(st), mnnvl_last_error());
    mnnvl_comm_destroy(comm);
    mnnvl_root_stop(root);
    mnnvl_config_destroy(cfg);
}
#endif

int main(int argc, char **argv)
{
    int ranks = 0; /* 0: show 4 and 8 */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ranks") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 1 || v > 1 << 20) {
                fprintf(stderr, "mnnvl-info: --ranks wants a count in 1..%d, not %s\n", 1 << 20,
                        argv[i]);
                return 2;
            }
            ranks = (int)v;
            continue;
        }
        usage();
        return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
    }
    printf("libmnnvl %s (header %d.%d.%d)\n", mnnvl_version_string(), MNNVL_VERSION_MAJOR,
           MNNVL_VERSION_MINOR, MNNVL_VERSION_PATCH);
    int ndev = 0;
#ifdef HAVE_CUDA
    tool_cuda_t cu;
    char why[256] = "";
    if (tool_cuda_load(&cu, why, sizeof(why)) != 0) {
        printf("CUDA: %s\n", why);
    } else {
        int version = 0;
        cu.driver_version(&version);
        cu.device_count(&ndev);
        printf("CUDA driver: %d.%d, %d device(s)\n", version / 1000, version % 1000 / 10, ndev);
        for (int i = 0; i < ndev; i++) {
            char name[128] = "?";
            int dev = 0, major = 0, minor = 0, fabric = 0;
            cu.device_get(&dev, i);
            cu.device_name(name, sizeof(name), dev);
            cu.attribute(&major, 75 /* COMPUTE_CAPABILITY_MAJOR */, dev);
            cu.attribute(&minor, 76 /* COMPUTE_CAPABILITY_MINOR */, dev);
            cu.attribute(&fabric, 128 /* HANDLE_TYPE_FABRIC_SUPPORTED */, dev);
            printf("  device %d: %s, sm_%d%d, fabric attribute %d\n", i, name, major, minor,
                   fabric);
        }
        if (ndev > 1) {
            printf("P2P access (row can access column):\n     ");
            for (int j = 0; j < ndev; j++)
                printf("%4d", j);
            printf("\n");
            for (int i = 0; i < ndev; i++) {
                printf("  %2d ", i);
                for (int j = 0; j < ndev; j++) {
                    int ok = 0, a = 0, b = 0;
                    cu.device_get(&a, i);
                    cu.device_get(&b, j);
                    if (i != j)
                        cu.can_access_peer(&ok, a, b);
                    printf("%4s", i == j ? "-" : ok ? "yes" : "no");
                }
                printf("\n");
            }
        }
    }
    if (ndev > 0) {
        char result[512];
        probe_handle_type("fabric", result, sizeof(result));
        printf("FABRIC handle probe (real allocation + export): %s\n", result);
        probe_handle_type("auto", result, sizeof(result));
        printf("handle_type=auto chooses (one host): %s\n", result);
    } else {
        printf("FABRIC handle probe: skipped (no GPU)\nhandle_type=auto: skipped (no GPU)\n");
    }
#else
    printf("CUDA: libmnnvl was built without CUDA (configure --without-cuda); GPU calls "
           "return UNSUPPORTED\n");
#endif
    if (ranks > 0) {
        ranks_per_gpu(ranks, ndev);
    } else {
        ranks_per_gpu(4, ndev);
        ranks_per_gpu(8, ndev);
    }
    printf("bootstrap backends:\n");
    const char *backends[] = {"tcp", "torch-store", "mpi", "ucx", "ofi"};
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        int ok = mnnvl_bootstrap_available(backends[i]);
        printf("  %-12s %s%s%s\n", backends[i], ok ? "available" : "unavailable", ok ? "" : ": ",
               ok ? "" : mnnvl_last_error());
    }
    return 0;
}
