/* mnnvl-info: what libmnnvl sees on this host: version, driver and devices, the peer-access
 * matrix, whether FABRIC handles work, which handle type `auto` picks, and which bootstrap
 * backends are available. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <stdio.h>
#include <string.h>

#include "mnnvl.h"
#ifdef HAVE_CUDA
#include "tools/cuda_dl.h"
#endif

static void usage(void)
{
    printf("usage: mnnvl-info [--help]\n"
           "Prints libmnnvl's version, the CUDA driver and devices, the P2P access matrix,\n"
           "the FABRIC handle probe, the handle type handle_type=auto would choose on one\n"
           "host, and the bootstrap backends this installation can use.\n");
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
    if (argc > 1) {
        usage();
        return strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? 0 : 2;
    }
    printf("libmnnvl %s (header %d.%d.%d)\n", mnnvl_version_string(), MNNVL_VERSION_MAJOR,
           MNNVL_VERSION_MINOR, MNNVL_VERSION_PATCH);
#ifdef HAVE_CUDA
    tool_cuda_t cu;
    char why[256] = "";
    int ndev = 0;
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
    printf("bootstrap backends:\n");
    const char *backends[] = {"tcp", "torch-store", "mpi", "ucx", "ofi"};
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        int ok = mnnvl_bootstrap_available(backends[i]);
        printf("  %-12s %s%s%s\n", backends[i], ok ? "available" : "unavailable",
               ok ? "" : ": ", ok ? "" : mnnvl_last_error());
    }
    return 0;
}
