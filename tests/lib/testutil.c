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
#include "libcuda.h"

#define MT_MAX_RANK_FNS 64
#define MT_MAX_LAUNCHER_WORDS 32

static struct {
    const char *name;
    mt_rank_fn fn;
    size_t arg_size;
} rank_fns[MT_MAX_RANK_FNS];
static int n_rank_fns;

void mt_register_rank_fn(const char *name, mt_rank_fn fn, size_t arg_size)
{
    if (n_rank_fns == MT_MAX_RANK_FNS) {
        fprintf(stderr, "mt_register_rank_fn: more than %d rank functions\n", MT_MAX_RANK_FNS);
        abort();
    }
    rank_fns[n_rank_fns].name = name;
    rank_fns[n_rank_fns].fn = fn;
    rank_fns[n_rank_fns].arg_size = arg_size;
    n_rank_fns++;
}

int mt_time_scale(void)
{
    const char *s = getenv("MNNVL_TEST_TIME_SCALE");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v > 0 && v <= 1000)
            return (int)v;
        fprintf(stderr, "MNNVL_TEST_TIME_SCALE=%s is not an integer in 1..1000: using 1\n", s);
        return 1;
    }
    return mt_launcher() ? 10 : 1;
}

const char *mt_launcher(void)
{
    const char *launcher = getenv("MNNVL_RANK_LAUNCHER");
    return launcher && *launcher ? launcher : NULL;
}

/* The rank's side of an exec'd rank: runs before main (after the MT_RANK_FN constructors,
 * priority 200) when MNNVL_RANK_EXEC names a registered function. */
__attribute__((constructor(300))) static void run_exec_rank(void)
{
    const char *spec = getenv("MNNVL_RANK_EXEC");
    if (!spec || !*spec)
        return;
    const char *colon = strchr(spec, ':');
    int rank = -1, size = -1, used = 0;
    if (!colon || sscanf(colon + 1, "%d:%d:%n", &rank, &size, &used) != 2 || used == 0 ||
        rank < 0 || size <= rank) {
        fprintf(stderr, "MNNVL_RANK_EXEC=%s is not name:rank:size:hex\n", spec);
        _exit(125);
    }
    size_t name_len = (size_t)(colon - spec);
    const char *hex = colon + 1 + used;
    for (int i = 0; i < n_rank_fns; i++) {
        if (strlen(rank_fns[i].name) != name_len || strncmp(rank_fns[i].name, spec, name_len))
            continue;
        if (strlen(hex) != 2 * rank_fns[i].arg_size) {
            fprintf(stderr, "MNNVL_RANK_EXEC: %zu hex digits for a %zu-byte argument\n",
                    strlen(hex), rank_fns[i].arg_size);
            _exit(125);
        }
        unsigned char *arg = calloc(rank_fns[i].arg_size + 1, 1);
        for (size_t b = 0; b < rank_fns[i].arg_size; b++) {
            unsigned v;
            if (sscanf(hex + 2 * b, "%2x", &v) != 1) {
                fprintf(stderr, "MNNVL_RANK_EXEC: bad hex at byte %zu\n", b);
                _exit(125);
            }
            arg[b] = (unsigned char)v;
        }
        unsetenv("MNNVL_RANK_EXEC");
        int rc = rank_fns[i].fn(rank, size, arg);
        fflush(NULL);
        _exit(rc);
    }
    fprintf(stderr, "MNNVL_RANK_EXEC: no rank function %.*s is registered\n", (int)name_len, spec);
    _exit(125);
}

/* In the forked child: execs `launcher... /proc/self/exe` running rank `rank` of `fn`. */
static void exec_rank(const char *launcher, const char *exe, int idx, int rank, int size,
                      const void *arg)
{
    size_t n = rank_fns[idx].arg_size;
    size_t len = strlen(rank_fns[idx].name) + 48 + 2 * n;
    char *spec = malloc(len);
    int off = snprintf(spec, len, "%s:%d:%d:", rank_fns[idx].name, rank, size);
    for (size_t b = 0; b < n; b++)
        off += snprintf(spec + off, len - (size_t)off, "%02x", ((const unsigned char *)arg)[b]);
    setenv("MNNVL_RANK_EXEC", spec, 1);
    char *words = strdup(launcher);
    char *argv[MT_MAX_LAUNCHER_WORDS + 2];
    int argc = 0;
    char *save = NULL;
    for (char *w = strtok_r(words, " \t", &save); w && argc < MT_MAX_LAUNCHER_WORDS;
         w = strtok_r(NULL, " \t", &save))
        argv[argc++] = w;
    argv[argc++] = (char *)exe;
    argv[argc] = NULL;
    execvp(argv[0], argv);
    fprintf(stderr, "rank %d: exec %s failed: %s\n", rank, argv[0], strerror(errno));
    _exit(126);
}

int mt_run_ranks(int size, mt_rank_fn fn, void *arg, int timeout_s, int *exit_codes)
{
    const char *launcher = mt_launcher();
    int idx = -1;
    char exe[4096];
    if (launcher) {
        for (int i = 0; i < n_rank_fns && idx < 0; i++)
            if (rank_fns[i].fn == fn)
                idx = i;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
            idx = -1;
        else
            exe[n] = '\0';
        if (idx < 0)
            fprintf(stderr, "mt_run_ranks: rank function not registered with MT_RANK_FN: "
                            "forking it instead of exec'ing it through MNNVL_RANK_LAUNCHER\n");
    }
    timeout_s *= mt_time_scale();

    pid_t *pids = calloc((size_t)size, sizeof(*pids));
    int *codes = calloc((size_t)size, sizeof(*codes));
    int failed = 0;
    fflush(NULL);
    for (int r = 0; r < size; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (idx >= 0)
                exec_rank(launcher, exe, idx, r, size, arg);
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
                    fprintf(stderr, "rank %d still running after %d s: killing it\n", r, timeout_s);
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

int mt_gpu_count(void)
{
#ifdef HAVE_CUDA
    /* Through the driver directly (base/libcuda.c), in a child process. */
    return mnnvl_libcuda_count_in_child(NULL, 0);
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

int mt_gpus_for_ranks(int ranks)
{
    if (!mt_require_gpus(1))
        return 0;
    int m = mt_gpu_count();
    const struct criterion_test *t = criterion_current_test;
    int per = (ranks + m - 1) / m;
    printf("%s::%s: %d ranks on %d GPU%s (%s%d per GPU)\n", t && t->category ? t->category : "?",
           t && t->name ? t->name : "?", ranks, m, m == 1 ? "" : "s", ranks % m ? "up to " : "",
           per);
    fflush(stdout);
    return m;
}

int mt_fail(mnnvl_status_t st, int rank, const char *what)
{
    if (st == MNNVL_SUCCESS)
        return 0;
    fprintf(stderr, "rank %d: %s failed: %s: %s\n", rank, what, mnnvl_status_string(st),
            mnnvl_last_error());
    return 1;
}
