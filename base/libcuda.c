/* Loading libcuda.so.1; see libcuda.h. */
#include "libcuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_once_t open_once = PTHREAD_ONCE_INIT;
static void *driver;
static char open_why[512];

static void open_driver(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(open_why, sizeof(open_why), "cannot load the CUDA driver libcuda.so.1 (%s)",
                 dlerror());
        return;
    }
    /* The driver API's own types stay out of here: CUresult is an int-sized enum. */
    int (*init)(unsigned) = NULL;
    int (*error_name)(int, const char **) = NULL;
    *(void **)&init = dlsym(lib, "cuInit");
    *(void **)&error_name = dlsym(lib, "cuGetErrorName");
    if (!init) {
        snprintf(open_why, sizeof(open_why), "the CUDA driver libcuda.so.1 lacks cuInit");
        return;
    }
    int res = init(0);
    if (res != 0) {
        const char *name = NULL;
        if (error_name)
            error_name(res, &name);
        snprintf(open_why, sizeof(open_why), "cuInit failed with %s (%d): no usable GPU",
                 name ? name : "?", res);
        return;
    }
    driver = lib;
}

int mnnvl_libcuda_open(const char **why)
{
    pthread_once(&open_once, open_driver);
    if (!driver && why)
        *why = open_why;
    return driver ? 0 : -1;
}

void *mnnvl_libcuda_sym(const char *name)
{
    return driver ? dlsym(driver, name) : NULL;
}
