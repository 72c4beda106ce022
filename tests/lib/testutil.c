#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include "testutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"

int mt_run_ranks(int size, mt_rank_fn fn, void *arg, int timeout_s, int *exit_codes)
{
    pid_t *pids = calloc((size_t)size, sizeof(*pids));
    int *codes = calloc((size_t)size, sizeof(*codes));
    int failed = 0;
    fflush(NULL);
    for (int r = 0; r < size; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            int rc = fn(r, size, arg);
            fflush(NULL);
            _exit(rc);
        }
        if (pid < 0) {
            perror("fork");
            codes[r] = 127;
            continue;
        }
        pids[r] = pid;
    }
    uint64_t deadline = mnnvl_deadline_after(timeout_s * 1000);
    int left = 0;
    for (int r = 0; r < size; r++)
        left += pids[r] > 0;
    while (left > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int r = 0; r < size; r++) {
                if (pids[r] != pid)
                    continue;
                codes[r] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                pids[r] = 0;
                left--;
            }
            continue;
        }
        if (mnnvl_deadline_left(deadline) == 0) {
            for (int r = 0; r < size; r++) {
                if (pids[r] > 0) {
                    fprintf(stderr, "rank %d still running after %d s: killing it\n", r,
                            timeout_s);
                    kill(pids[r], SIGKILL);
                }
            }
            deadline = UINT64_MAX;
        }
        usleep(2000);
    }
    for (int r = 0; r < size; r++) {
        failed += codes[r] != 0;
        if (exit_codes)
            exit_codes[r] = codes[r];
    }
    free(pids);
    free(codes);
    return failed;
}

int mt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("mt_free_port");
        abort();
    }
    close(fd);
    return ntohs(a.sin_port);
}

void mt_loopback_root(char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%d", mt_free_port());
}

mnnvl_config_t mt_config(const char *root, const char *job_key, int timeout_ms)
{
    mnnvl_config_t cfg = NULL;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
    if (mnnvl_config_create(&cfg) != MNNVL_SUCCESS ||
        mnnvl_config_set(cfg, "bootstrap", "tcp") != MNNVL_SUCCESS ||
        (root && mnnvl_config_set(cfg, "root", root) != MNNVL_SUCCESS) ||
        (job_key && mnnvl_config_set(cfg, "job_key", job_key) != MNNVL_SUCCESS) ||
        mnnvl_config_set(cfg, "timeout_ms", timeout) != MNNVL_SUCCESS) {
        fprintf(stderr, "mt_config: %s\n", mnnvl_last_error());
        abort();
    }
    return cfg;
}

#ifdef HAVE_CUDA
#include <dlfcn.h>
/* Counts devices through the driver directly (libcuda.so.1), in a child process. */
static int count_in_child(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return 0;
    int (*cu_init)(unsigned) = (int (*)(unsigned))dlsym(lib, "cuInit");
    int (*cu_count)(int *) = (int (*)(int *))dlsym(lib, "cuDeviceGetCount");
    int n = 0;
    if (!cu_init || !cu_count || cu_init(0) != 0 || cu_count(&n) != 0)
        return 0;
    return n;
}
#endif

int mt_gpu_count(void)
{
#ifdef HAVE_CUDA
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int n = count_in_child();
        ssize_t w = write(pipefd[1], &n, sizeof(n));
        _exit(w == sizeof(n) ? 0 : 1);
    }
    close(pipefd[1]);
    int n = 0;
    if (read(pipefd[0], &n, sizeof(n)) != sizeof(n))
        n = 0;
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return n;
#else
    return 0;
#endif
}

int mt_require_gpus(int needed)
{
    int have = mt_gpu_count();
    if (have >= needed)
        return 1;
    const char *strict = getenv("MNNVL_REQUIRE_GPU");
#ifdef HAVE_CUDA
    const char *why = "GPUs visible";
#else
    const char *why = "GPUs usable: libmnnvl was built without CUDA, and";
#endif
    if (strict && strcmp(strict, "1") == 0)
        cr_assert_fail("needs %d GPUs but %d %s; MNNVL_REQUIRE_GPU=1 makes this a failure", needed,
                have, why);
    else
        cr_skip_test("needs %d GPUs but %d %s (set MNNVL_REQUIRE_GPU=1 to fail instead)", needed,
                     have, why);
    return 0;
}

int mt_fail(mnnvl_status_t st, int rank, const char *what)
{
    if (st == MNNVL_SUCCESS)
        return 0;
    fprintf(stderr, "rank %d: %s failed: %s: %s\n", rank, what, mnnvl_status_string(st),
            mnnvl_last_error());
    return 1;
}
