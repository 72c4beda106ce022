/* The driver's entry points, typed from cuda.h; the loading itself is base/libcuda.c. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cuda_loader.h"
#include "error.h"
#include "libcuda.h"
#include "log.h"

static mnnvl_cuda_driver_t driver;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static mnnvl_status_t load_status;
static char load_why[512];

static void load(void)
{
    const char *why = NULL;
    if (mnnvl_libcuda_open(&why) != 0) {
        load_status = MNNVL_ERR_NO_DEVICE;
        snprintf(load_why, sizeof(load_why), "%s", why);
        return;
    }
#define MNNVL_STR_(x) #x
#define MNNVL_STR(x) MNNVL_STR_(x) /* expands the version macro first */
#define MNNVL_CU_LOOKUP(name)                                                                  \
    {                                                                                          \
        void *fn = mnnvl_libcuda_sym(MNNVL_STR(name));                                         \
        if (!fn) {                                                                             \
            load_status = MNNVL_ERR_NO_DEVICE;                                                 \
            snprintf(load_why, sizeof(load_why),                                               \
                     "the CUDA driver lacks %s; libmnnvl was built with CUDA %d.%d and needs " \
                     "a driver at least that new",                                             \
                     MNNVL_STR(name), CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);          \
            return;                                                                            \
        }                                                                                      \
        memcpy(&driver.name, &fn, sizeof(fn));                                                 \
    }
    MNNVL_CU_FUNCTIONS(MNNVL_CU_LOOKUP)
#undef MNNVL_CU_LOOKUP
    load_status = MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_cuda_load(const mnnvl_cuda_driver_t **out)
{
    pthread_once(&load_once, load);
    if (load_status != MNNVL_SUCCESS)
        return mnnvl_error(load_status, "%s", load_why);
    *out = &driver;
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_cuda_error(CUresult res, const char *what, const char *call)
{
    const char *name = NULL, *text = NULL;
    if (driver.cuGetErrorName) {
        driver.cuGetErrorName(res, &name);
        driver.cuGetErrorString(res, &text);
    }
    mnnvl_status_t status = MNNVL_ERR_CUDA;
    switch (res) {
    case CUDA_ERROR_OUT_OF_MEMORY: status = MNNVL_ERR_NO_MEMORY; break;
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
    case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT:
    case CUDA_ERROR_CAPTURED_EVENT:
    case CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD: status = MNNVL_ERR_GRAPH_CAPTURE; break;
    default: break;
    }
    return mnnvl_error(status, "%s: %s failed with %s (%d): %s", what, call, name ? name : "?",
                       (int)res, text ? text : "unknown CUDA error");
}
