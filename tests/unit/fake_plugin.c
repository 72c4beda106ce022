/* A bootstrap plugin of the wrong interface version, for test_plugin_version: built as
 * libmnnvl-bootstrap-mpi.so in a directory of its own, once exporting a version 99
 * descriptor (FAKE_VERSION) and once only version 1's entry function (FAKE_V1). Its create
 * aborts the process: the library must refuse the plugin before calling anything of it. */
#include <stdio.h>
#include <stdlib.h>

#include "bootstrap/bootstrap.h"

#define EXPORT __attribute__((visibility("default")))

static mnnvl_status_t fake_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    (void)args;
    (void)out;
    fprintf(stderr, "fake plugin: create ran although the plugin has the wrong version\n");
    abort();
}

#ifdef FAKE_V1
EXPORT mnnvl_status_t mnnvl_bootstrap_plugin_create(const mnnvl_bootstrap_args_t *args,
                                                    mnnvl_bootstrap_t **out);
EXPORT mnnvl_status_t mnnvl_bootstrap_plugin_create(const mnnvl_bootstrap_args_t *args,
                                                    mnnvl_bootstrap_t **out)
{
    return fake_create(args, out);
}
#else
EXPORT const mnnvl_bootstrap_plugin_t mnnvl_bootstrap_plugin_v2 = {
    .version = FAKE_VERSION,
    .size = sizeof(mnnvl_bootstrap_plugin_t),
    .name = "mpi",
    .create = fake_create,
};
#endif
