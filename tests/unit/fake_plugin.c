/* Bootstrap plugins the library must refuse, for test_plugin_version: each built as
 * libmnnvl-bootstrap-mpi.so in a directory of its own. FAKE_VERSION: a descriptor of that
 * version; FAKE_V1: only version 1's entry function. Their create aborts the process: the
 * library must refuse them before calling anything of theirs. FAKE_SMALL_TABLE: a version 2
 * plugin whose operations table ends before the child operation, which must be refused
 * after create without calling any operation. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "bootstrap/bootstrap.h"

#define EXPORT __attribute__((visibility("default")))

__attribute__((unused)) static mnnvl_status_t fake_create(const mnnvl_bootstrap_args_t *args,
                                                          mnnvl_bootstrap_t **out)
{
    (void)args;
    (void)out;
    fprintf(stderr, "fake plugin: create ran although the plugin has the wrong version\n");
    abort();
}

#if defined(FAKE_SMALL_TABLE)
static const mnnvl_bootstrap_ops_t small_ops = {
    .size = offsetof(mnnvl_bootstrap_ops_t, child),
    .name = "mpi",
};
static mnnvl_bootstrap_t small_instance = {.ops = &small_ops, .rank = 0, .size = 1};

static mnnvl_status_t small_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    (void)args;
    *out = &small_instance;
    return MNNVL_SUCCESS;
}

EXPORT const mnnvl_bootstrap_plugin_t mnnvl_bootstrap_plugin_v2 = {
    .version = MNNVL_BOOTSTRAP_ABI_VERSION,
    .size = sizeof(mnnvl_bootstrap_plugin_t),
    .name = "mpi",
    .create = small_create,
};
#elif defined(FAKE_V1)
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
