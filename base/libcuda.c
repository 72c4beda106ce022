/* Loading libcuda.so.1; see libcuda.h. */
#include "libcuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
        dlclose(lib);
        return;
    }
    int res = init(0);
    if (res != 0) {
        const char *name = NULL;
        if (error_name)
            error_name(res, &name);
        snprintf(open_why, sizeof(open_why), "cuInit failed with %s (%d): no usable GPU",
                 name ? name : "?", res);
        dlclose(lib);
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

/* The child's answer: the count, then the reason when it is 0. */
typedef struct count_reply {
    int count;
    char why[256];
} count_reply_t;

int mnnvl_libcuda_count_in_child(char *why, size_t len)
{
    if (why && len)
        why[0] = '\0';
    int fds[2];
    if (pipe(fds) != 0) {
        if (why && len)
            snprintf(why, len, "cannot count GPUs: pipe failed");
        return 0;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        count_reply_t r = {0, ""};
        const char *reason = NULL;
        int (*device_count)(int *) = NULL;
        if (mnnvl_libcuda_open(&reason) == 0)
            *(void **)&device_count = mnnvl_libcuda_sym("cuDeviceGetCount");
        if (!device_count)
            snprintf(r.why, sizeof(r.why), "%s",
                     reason ? reason : "the driver lacks cuDeviceGetCount");
        else if (device_count(&r.count) != 0)
            r.count = 0;
        _exit(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
    }
    close(fds[1]);
    count_reply_t r = {0, ""};
    if (pid < 0 || read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
        r = (count_reply_t){0, "cannot count GPUs: the counting child failed"};
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    r.why[sizeof(r.why) - 1] = '\0';
    if (r.count == 0 && !r.why[0])
        snprintf(r.why, sizeof(r.why), "the driver reports no CUDA device");
    if (r.count == 0 && why && len)
        snprintf(why, len, "%s", r.why);
    return r.count;
}
