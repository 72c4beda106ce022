/* Picks the bootstrap backend: built-ins are called directly, the others are plugins
 * (libmnnvl-bootstrap-<name>.so) loaded with dlopen on first use, so that libmnnvl.so
 * itself never links MPI, UCX or libfabric. */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap.h"
#include "error.h"
#include "log.h"

#ifndef MNNVL_PLUGIN_DIR
#define MNNVL_PLUGIN_DIR ""
#endif

typedef struct builtin {
    const char *name;
    mnnvl_bootstrap_create_fn create;
} builtin_t;

static const builtin_t builtins[] = {
    {"tcp", mnnvl_bootstrap_tcp_create},
    {"torch-store", mnnvl_bootstrap_torch_store_create},
};

static const builtin_t *find_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

/* Where the plugin for `name` is looked for: $MNNVL_PLUGIN_DIR, else the install dir, else
 * the loader's search path. */
static void plugin_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("MNNVL_PLUGIN_DIR");
    if (!dir || !dir[0])
        dir = MNNVL_PLUGIN_DIR;
    snprintf(buf, len, "%s%slibmnnvl-bootstrap-%s.so", dir, dir[0] ? "/" : "", name);
}

/* Loads a plugin once per process; later calls reuse the handle (plugins are never
 * unloaded: their threads or their dependency's may outlive a communicator). The
 * descriptor's version and size are checked before anything of the plugin is called. */
static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;

static mnnvl_status_t check_descriptor(const char *name, const char *path,
                                       const mnnvl_bootstrap_plugin_t *d)
{
    if (d->version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                           "bootstrap: the plugin %s for backend \"%s\" speaks bootstrap "
                           "interface version %u, this libmnnvl speaks version %d; rebuild the "
                           "plugin with this libmnnvl",
                           path, name, d->version, MNNVL_BOOTSTRAP_ABI_VERSION);
    if (d->size < sizeof(*d) || !d->create)
        return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                           "bootstrap: the plugin %s for backend \"%s\" has a descriptor of %u "
                           "bytes (at least %zu expected) or no create function",
                           path, name, d->size, sizeof(*d));
    return MNNVL_SUCCESS;
}

static mnnvl_status_t load_plugin(const char *name, mnnvl_bootstrap_create_fn *create)
{
    char path[4096];
    plugin_path(name, path, sizeof(path));
    pthread_mutex_lock(&plugin_lock);
    /* dlerror's text does not outlive the next dl call (the v1 lookup, the dlclose below):
     * each is copied at once. */
    char why_copy[512] = "no " MNNVL_BOOTSTRAP_PLUGIN_SYMBOL " symbol";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const char *why = lib ? NULL : dlerror();
    if (why)
        snprintf(why_copy, sizeof(why_copy), "%s", why);
    const mnnvl_bootstrap_plugin_t *desc = lib ? dlsym(lib, MNNVL_BOOTSTRAP_PLUGIN_SYMBOL) : NULL;
    if (lib && !desc && (why = dlerror()) != NULL)
        snprintf(why_copy, sizeof(why_copy), "%s", why);
    int v1 = lib && !desc && dlsym(lib, MNNVL_BOOTSTRAP_PLUGIN_SYMBOL_V1);
    mnnvl_status_t st;
    if (v1)
        st = mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                         "bootstrap: the plugin %s for backend \"%s\" speaks bootstrap "
                         "interface version 1, this libmnnvl speaks version %d; rebuild the "
                         "plugin with this libmnnvl",
                         path, name, MNNVL_BOOTSTRAP_ABI_VERSION);
    else if (!desc)
        st = mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                         "bootstrap: backend \"%s\" needs the plugin %s, which could not be "
                         "loaded (%s); build libmnnvl with its dependency or set "
                         "MNNVL_PLUGIN_DIR",
                         name, path, why_copy);
    else
        st = check_descriptor(name, path, desc);
    if (st != MNNVL_SUCCESS) {
        /* A plugin that is not used is unloaded; a used one stays loaded for the process
         * (its create function and ops are called for every communicator). */
        if (lib)
            dlclose(lib);
        pthread_mutex_unlock(&plugin_lock);
        return st;
    }
    pthread_mutex_unlock(&plugin_lock);
    *create = desc->create;
    /* The used plugin stays loaded for the process: `create` and its ops point into it. */
    /* cppcheck-suppress resourceLeak */
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_bootstrap_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    const char *name = args->config_get(args->config, "bootstrap");
    const builtin_t *b = find_builtin(name);
    mnnvl_bootstrap_create_fn create = b ? b->create : NULL;
    if (!create)
        MNNVL_CHECK(load_plugin(name, &create));
    mnnvl_bootstrap_t *bs = NULL;
    MNNVL_CHECK(create(args, &bs));
    if (!bs->ops || bs->ops->size < MNNVL_BOOTSTRAP_OPS_MIN_SIZE || !bs->ops->allgather ||
        !bs->ops->broadcast || !bs->ops->barrier || !bs->ops->child || !bs->ops->abort ||
        !bs->ops->destroy) {
        size_t got = bs->ops ? bs->ops->size : 0;
        if (bs->ops && bs->ops->size >= MNNVL_BOOTSTRAP_OPS_MIN_SIZE && bs->ops->destroy)
            bs->ops->destroy(bs);
        return mnnvl_error(MNNVL_ERR_UNSUPPORTED,
                           "bootstrap: backend \"%s\" has an operations table of %zu bytes "
                           "missing a required operation (at least %zu bytes expected)",
                           name, got, (size_t)MNNVL_BOOTSTRAP_OPS_MIN_SIZE);
    }
    *out = bs;
    return MNNVL_SUCCESS;
}

MNNVL_API int mnnvl_bootstrap_available(const char *name)
{
    if (!name) {
        mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "bootstrap_available: name is NULL");
        return 0;
    }
    if (find_builtin(name))
        return 1;
    mnnvl_bootstrap_create_fn create;
    return load_plugin(name, &create) == MNNVL_SUCCESS;
}
