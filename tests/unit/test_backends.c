/* One conformance suite for every bootstrap backend (tcp, torch-store, mpi, ucx, ofi), in
 * real processes: forked ranks, or ranks started by mpirun for mpi. A backend whose plugin
 * or peer (torch's TCPStore, mpirun, ip netns) is missing skips visibly with the reason.
 *
 * Environment: MNNVL_TEST_TORCH_PYTHON, the interpreter that has torch (default
 * /usr/bin/python3: Debian's python3-torch installs for it, not for a pyenv python3). */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backends/conformance.h"
#include "deadline.h"
#include "testutil.h"

#define MIB ((size_t)1 << 20)
/* How soon every survivor must record a killed rank, for the backends with liveness (tcp,
 * ucx, ofi): well under peer_timeout_ms (1000 by default), with room for a loaded host. */
#define LIVENESS_MS 500

/* ---------------------------------------------------------------------------------------- */
/* Child processes                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Starts argv in its own process group with stdin from a pipe (*stdin_fd, or /dev/null
 * when NULL) and stdout/stderr to ours. */
static pid_t spawn(char *const argv[], int *stdin_fd)
{
    int p[2] = {-1, -1};
    if (stdin_fd && pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        /* Criterion marks its sandboxed test processes with this; a child that links
         * Criterion (mpi_ranks does, through libmnnvltest) would take itself for one. */
        unsetenv("BXFI_MAP");
        int in = stdin_fd ? p[0] : open("/dev/null", O_RDONLY);
        dup2(in, 0);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (stdin_fd) {
        close(p[0]);
        *stdin_fd = p[1];
    }
    return pid;
}

/* Waits for pid at most timeout_s seconds, then kills its group. Returns the exit code, or
 * 128+signal. */
static int wait_child(pid_t pid, int timeout_s)
{
    uint64_t deadline = mnnvl_deadline_after(timeout_s * 1000);
    for (;;) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0)
            return 127;
        if (mnnvl_deadline_left(deadline) == 0) {
            fprintf(stderr, "child %d still running after %d s: killing it\n", (int)pid, timeout_s);
            kill(-pid, SIGKILL);
            deadline = UINT64_MAX;
        }
        usleep(5000);
    }
}

static int run_command(char *const argv[], int timeout_s)
{
    pid_t pid = spawn(argv, NULL);
    return pid < 0 ? 127 : wait_child(pid, timeout_s);
}

/* ---------------------------------------------------------------------------------------- */
/* Backends                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void use_build_plugins(void)
{
    setenv("MNNVL_PLUGIN_DIR", MNNVL_TEST_PLUGIN_DIR, 0);
    setenv("UCX_TLS", "tcp,self", 0); /* the setting, and all a container offers */
    setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
}

/* Skips the test when the backend's plugin does not load here. */
static void require_backend(const char *name)
{
    use_build_plugins();
    if (!mnnvl_bootstrap_available(name))
        cr_skip_test("backend %s is not available: %s", name, mnnvl_last_error());
}

static const char *torch_python(void)
{
    const char *py = getenv("MNNVL_TEST_TORCH_PYTHON");
    return py && py[0] ? py : "/usr/bin/python3";
}

/* A TCPStore master run by torch's own Python code. */
typedef struct store_server {
    pid_t pid;
    int stdin_fd;
    int port;
    char version[64];
} store_server_t;

/* Starts the server (server_backend: NULL for torch's default, "libuv" or "legacy"), or
 * skips the test with the reason. */
static void store_start(store_server_t *s, const char *server_backend)
{
    char portfile[128];
    snprintf(portfile, sizeof(portfile), "/tmp/mnnvl-test-store-%d", (int)getpid());
    unlink(portfile);
    char *argv[] = {(char *)torch_python(),
                    MNNVL_TEST_SRCDIR "/torch_store.py",
                    "serve",
                    portfile,
                    (char *)server_backend,
                    NULL};
    s->pid = spawn(argv, &s->stdin_fd);
    uint64_t deadline = mnnvl_deadline_after(90000);
    while (mnnvl_deadline_left(deadline) > 0) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int n = fscanf(f, "%d %63s", &s->port, s->version);
            fclose(f);
            unlink(portfile);
            if (n == 2)
                return;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid && WEXITSTATUS(status) == 3)
            cr_skip_test("torch-store: the %s server needs torch >= 2.4 (use_libuv); this torch "
                         "has only one server, tested by the other torch_store tests",
                         server_backend);
        if (waitpid(s->pid, &status, WNOHANG) == s->pid)
            cr_skip_test("torch-store: no TCPStore server: %s %s/torch_store.py exited with %d "
                         "(is python3-torch installed for that interpreter? set "
                         "MNNVL_TEST_TORCH_PYTHON)",
                         torch_python(), MNNVL_TEST_SRCDIR, WEXITSTATUS(status));
        usleep(20000);
    }
    kill(-s->pid, SIGKILL);
    cr_skip_test("torch-store: the TCPStore server did not start within 90 s");
}

static void store_stop(store_server_t *s)
{
    close(s->stdin_fd);
    if (wait_child(s->pid, 10) != 0)
        fprintf(stderr, "the TCPStore server did not exit cleanly\n");
}

/* Fills a target for a forked-rank backend; store-based ones need `server`. */
static void target_init(bk_target_t *t, const char *backend, const store_server_t *server,
                        int timeout_ms, size_t max_bytes)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->backend, sizeof(t->backend), "%s", backend);
    if (server)
        snprintf(t->address, sizeof(t->address), "127.0.0.1:%d", server->port);
    else
        mt_loopback_root(t->address, sizeof(t->address));
    snprintf(t->prefix, sizeof(t->prefix), "mnnvl-test-%d", (int)getpid());
    t->timeout_ms = timeout_ms;
    t->max_bytes = max_bytes;
    t->liveness_ms = LIVENESS_MS;
    /* The backends that authenticate run every scenario with a job key (torch-store's
     * authentication is tested by its own suite). */
    if (strcmp(backend, "tcp") == 0 || strcmp(backend, "ucx") == 0 || strcmp(backend, "ofi") == 0)
        snprintf(t->job_key, sizeof(t->job_key), "conformance job key %d 0123456789abcdef",
                 (int)getpid());
}

/* Runs a scenario with forked ranks on a backend and checks every exit code (the
 * scenario's victims die by SIGKILL). */
static void run_forked(const char *backend, const char *scenario, int size, int timeout_ms,
                       size_t max_bytes)
{
    require_backend(backend);
    store_server_t server;
    int store = strcmp(backend, "torch-store") == 0;
    if (store)
        store_start(&server, NULL);
    bk_target_t t;
    target_init(&t, backend, store ? &server : NULL, timeout_ms, max_bytes);
    int codes[64] = {0};
    bk_scenario_fn fn = bk_scenario(scenario);
    cr_assert(fn != NULL, "no scenario %s", scenario);
    snprintf(t.scenario, sizeof(t.scenario), "%s", scenario);
    uint64_t start = mnnvl_now_ms();
    mt_run_ranks(size, fn, &t, 300, codes);
    int elapsed = (int)(mnnvl_now_ms() - start);
    if (store)
        store_stop(&server);
    for (int r = 0; r < size; r++) {
        int expected = bk_victim(scenario, r, size) ? 128 + SIGKILL : 0;
        cr_expect_eq(codes[r], expected, "%s %s, %d ranks: rank %d exited with %d, expected %d",
                     backend, scenario, size, r, codes[r], expected);
    }
    cr_log_info("%s %s with %d ranks: %d ms%s%s", backend, scenario, size, elapsed,
                store ? ", torch " : "", store ? server.version : "");
}

/* ---------------------------------------------------------------------------------------- */
/* mpi: ranks under mpirun                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void require_mpirun(void)
{
    require_backend("mpi");
    if (!MNNVL_TEST_MPIRUN[0] || access(MNNVL_TEST_MPIRUN, X_OK) != 0)
        cr_skip_test("mpi: no mpirun found by configure ('%s')", MNNVL_TEST_MPIRUN);
}

static int run_mpirun(int size, char *const program[], int timeout_s)
{
    char np[16];
    snprintf(np, sizeof(np), "%d", size);
    /* Loopback only: the job runs on this host, and CI hosts have unroutable interfaces. */
    char *argv[40] = {MNNVL_TEST_MPIRUN,
                      "--allow-run-as-root",
                      "--oversubscribe",
                      "-np",
                      np,
                      "--mca",
                      "btl",
                      "self,tcp",
                      "--mca",
                      "btl_tcp_if_include",
                      "lo",
                      "--mca",
                      "oob_tcp_if_include",
                      "lo",
                      "--mca",
                      "mpi_yield_when_idle",
                      "1"};
    int n = 17;
    for (int i = 0; program[i] && n < 39; i++)
        argv[n++] = program[i];
    argv[n] = NULL;
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    return run_command(argv, timeout_s);
}

static void run_mpi(const char *scenario, int size, int expect_failure)
{
    require_mpirun();
    setenv("MNNVL_MPI_INIT", "1", 1); /* the helper itself never touches MPI */
    char *program[] = {MNNVL_TEST_MPI_RANKS, (char *)scenario, NULL};
    uint64_t start = mnnvl_now_ms();
    int rc = run_mpirun(size, program, 240);
    int elapsed = (int)(mnnvl_now_ms() - start);
    if (expect_failure)
        cr_expect_neq(rc, 0, "mpi %s: mpirun exited with 0 although a rank was killed", scenario);
    else
        cr_expect_eq(rc, 0, "mpi %s with %d ranks: mpirun exited with %d", scenario, size, rc);
    cr_log_info("mpi %s with %d ranks: exit %d after %d ms", scenario, size, rc, elapsed);
}

/* ---------------------------------------------------------------------------------------- */
/* The suite, once per backend                                                              */
/* ---------------------------------------------------------------------------------------- */

/* A test whose body is one call: every test below that runs a scenario is a row of this. */
#define CALL_TEST(suite, test, seconds, call) \
    Test(suite, test, .timeout = seconds)     \
    {                                         \
        call;                                 \
    }

#define FORKED_SUITE(tag, name)                                                     \
    CALL_TEST(tag, ranks_1, 200, run_forked(name, "collectives", 1, 30000, MIB))    \
    CALL_TEST(tag, ranks_2, 200, run_forked(name, "collectives", 2, 30000, MIB))    \
    CALL_TEST(tag, ranks_8, 300, run_forked(name, "collectives", 8, 60000, MIB))    \
    CALL_TEST(tag, ranks_16, 400, run_forked(name, "collectives", 16, 120000, MIB)) \
    CALL_TEST(tag, many_comms, 300, run_forked(name, "many", 4, 30000, 0))          \
    CALL_TEST(tag, killed_rank, 120, run_forked(name, "killed", 4, 3000, 0))        \
    CALL_TEST(tag, shrink_after_kill, 120, run_forked(name, "shrink", 4, 3000, 0))  \
    CALL_TEST(tag, shrink_alive, 120, run_forked(name, "shrink_alive", 4, 3000, 0)) \
    CALL_TEST(tag, shrink_mismatch, 120, run_forked(name, "shrink_mismatch", 4, 3000, 0))

FORKED_SUITE(tcp, "tcp")
FORKED_SUITE(torch_store, "torch-store")
FORKED_SUITE(ucx, "ucx")
FORKED_SUITE(ofi, "ofi")

/* A rank with another job key: refused with AUTH at once on both sides, rank 0 included
 * (the star plugins; tcp has tests/unit/test_tcp_auth.c, mpi refuses a job_key). */
CALL_TEST(ucx, wrong_key, 120, run_forked("ucx", "wrong_key", 3, 10000, 0))
CALL_TEST(ofi, wrong_key, 120, run_forked("ofi", "wrong_key", 3, 10000, 0))

/* Liveness (poll_lost): a killed rank is in every survivor's mnnvl_comm_failed_ranks within
 * LIVENESS_MS, with no call of theirs; a rank that leaves gracefully never is. For the
 * backends that have it, one test per scenario (tag::liveness, parameterized); the
 * collectives' timeout is long, so nothing here is a timeout. */
typedef struct liveness_case {
    char scenario[16]; /* an array: Criterion copies the case into another process image */
    int size;
} liveness_case_t;

static liveness_case_t liveness_cases[] = {
    {"liveness", 4}, {"liveness_root", 3}, {"liveness_two", 4},
    {"graceful", 3}, {"graceful_root", 3},
};

#define LIVENESS_SUITE(tag, name)                                                       \
    ParameterizedTestParameters(tag, liveness)                                          \
    {                                                                                   \
        return cr_make_param_array(liveness_case_t, liveness_cases,                     \
                                   sizeof(liveness_cases) / sizeof(liveness_cases[0])); \
    }                                                                                   \
    ParameterizedTest(liveness_case_t *c, tag, liveness, .timeout = 120)                \
    {                                                                                   \
        run_forked(name, c->scenario, c->size, 30000, 0);                               \
    }

LIVENESS_SUITE(tcp, "tcp")
LIVENESS_SUITE(ucx, "ucx")
LIVENESS_SUITE(ofi, "ofi")

/* mpi cannot prove a job key (the MPI job is the trust boundary): setting one is an error,
 * reported before MPI is touched. */
Test(mpi, job_key_is_refused, .timeout = 60)
{
    require_backend("mpi");
    bk_target_t t = {.backend = "mpi", .timeout_ms = 5000};
    snprintf(t.job_key, sizeof(t.job_key), "a job key that mpi cannot prove 0123456789");
    mnnvl_config_t cfg = bk_config(&t, "mpi-key");
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, 0, 1, -1, &comm);
    mnnvl_config_destroy(cfg);
    cr_assert_eq(st, MNNVL_ERR_INVALID_ARGUMENT, "%s", mnnvl_last_error());
    cr_expect(strstr(mnnvl_last_error(), "trust boundary") && strstr(mnnvl_last_error(), "job_key"),
              "%s", mnnvl_last_error());
    cr_expect(!strstr(mnnvl_last_error(), "0123456789"), "the key shows: %s", mnnvl_last_error());
}

CALL_TEST(mpi, ranks_1, 300, run_mpi("collectives", 1, 0))
CALL_TEST(mpi, ranks_2, 300, run_mpi("collectives", 2, 0))
CALL_TEST(mpi, ranks_8, 300, run_mpi("collectives", 8, 0))
CALL_TEST(mpi, ranks_16, 300, run_mpi("collectives", 16, 0))
CALL_TEST(mpi, many_comms, 300, run_mpi("many", 4, 0))
/* A killed rank is mpirun's to handle: it must end the job, never leave it hanging. */
CALL_TEST(mpi, killed_rank, 300, run_mpi("killed", 4, 1))
/* After a death mpirun ends the job (above), so mpi shrinks only around a live rank. */
CALL_TEST(mpi, shrink_alive, 300, run_mpi("shrink_alive", 4, 0))

/* A communicator handed over from mpi4py as a Fortran handle (comm.py2f()). */
Test(mpi, mpi4py_handle, .timeout = 300)
{
    require_mpirun();
    /* Makefile.am sets MNNVL_INTERP_ENV in the --enable-asan build only. */
    if (getenv("MNNVL_INTERP_ENV"))
        cr_skip_test("mpi: ASan build: the python ranks mpirun starts would need libasan "
                     "preloaded in each; the normal build runs this test");
    char *probe[] = {(char *)torch_python(), "-c", "import mpi4py.MPI", NULL};
    if (run_command(probe, 60) != 0)
        cr_skip_test("mpi: %s cannot import mpi4py (install python3-mpi4py)", torch_python());
    unsetenv("MNNVL_MPI_INIT");
    char *program[] = {(char *)torch_python(), MNNVL_TEST_SRCDIR "/mpi4py_comm.py",
                       MNNVL_TEST_LIBMNNVL, NULL};
    int rc = run_mpirun(4, program, 240);
    cr_expect_eq(rc, 0, "mpi4py: mpirun exited with %d", rc);
}

/* ---------------------------------------------------------------------------------------- */
/* torch-store against the real server                                                      */
/* ---------------------------------------------------------------------------------------- */

static int store_num_keys(const store_server_t *s)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s/torch_store.py numkeys %d", torch_python(), MNNVL_TEST_SRCDIR,
             s->port);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

/* A torch client works on its own keys while libmnnvl ranks run; neither disturbs the
 * other, and once the communicators are gone only torch's keys and our joins counter
 * remain. */
Test(torch_store, shared_with_torch, .timeout = 300)
{
    require_backend("torch-store");
    store_server_t server;
    store_start(&server, NULL);
    char port[16];
    snprintf(port, sizeof(port), "%d", server.port);
    char *peer_argv[] = {
        (char *)torch_python(), MNNVL_TEST_SRCDIR "/torch_store.py", "peer", port, "6", NULL};
    pid_t peer = spawn(peer_argv, NULL);
    bk_target_t t;
    target_init(&t, "torch-store", &server, 60000, 64 * 1024);
    int codes[8] = {0};
    int failed = mt_run_ranks(8, bk_collectives, &t, 200, codes);
    int peer_rc = wait_child(peer, 120);
    int keys = store_num_keys(&server);
    store_stop(&server);
    cr_expect_eq(failed, 0, "%d libmnnvl ranks failed next to the torch client", failed);
    cr_expect_eq(peer_rc, 0, "the torch client saw its keys disturbed (exit %d)", peer_rc);
    /* 50 values + 1 counter of the peer, and our joins counter for "conformance"/n8. */
    cr_expect_eq(keys, 52,
                 "the store holds %d keys after the communicators were destroyed, "
                 "expected 52 (torch's 51 and one joins counter)",
                 keys);
}

/* torch >= 2.4 has two servers, libuv (the default) and the legacy one; both must work. */
static void run_server_backend(const char *server_backend)
{
    require_backend("torch-store");
    store_server_t server;
    store_start(&server, server_backend);
    bk_target_t t;
    target_init(&t, "torch-store", &server, 30000, MIB);
    int failed = mt_run_ranks(8, bk_collectives, &t, 200, NULL);
    t.timeout_ms = 3000;
    int codes[4] = {0};
    mt_run_ranks(4, bk_killed_rank, &t, 60, codes);
    store_stop(&server);
    cr_expect_eq(failed, 0, "%d ranks failed against torch %s's %s server", failed, server.version,
                 server_backend);
    for (int r = 0; r < 3; r++)
        cr_expect_eq(codes[r], 0, "killed rank scenario: rank %d exited with %d", r, codes[r]);
}

CALL_TEST(torch_store, libuv_server, 300, run_server_backend("libuv"))
CALL_TEST(torch_store, legacy_server, 300, run_server_backend("legacy"))

/* Values over the server's limit are split: a small limit forced through the environment,
 * and the real 8 MiB limit with a 9 MiB allgather. */
Test(torch_store, split_values, .timeout = 300)
{
    require_backend("torch-store");
    store_server_t server;
    store_start(&server, NULL);
    bk_target_t t;
    target_init(&t, "torch-store", &server, 60000, 64 * 1024);
    setenv("MNNVL_TORCH_STORE_MAX_VALUE", "1000", 1);
    int failed_small = mt_run_ranks(4, bk_collectives, &t, 200, NULL);
    unsetenv("MNNVL_TORCH_STORE_MAX_VALUE");
    t.max_bytes = 9 * MIB;
    int failed_big = mt_run_ranks(2, bk_collectives, &t, 200, NULL);
    int keys = store_num_keys(&server);
    store_stop(&server);
    cr_expect_eq(failed_small, 0, "%d ranks failed with 1000-byte values", failed_small);
    cr_expect_eq(failed_big, 0, "%d ranks failed with a 9 MiB allgather", failed_big);
    cr_expect_eq(keys, 2, "%d keys left, expected the two joins counters", keys);
}

/* ---------------------------------------------------------------------------------------- */
/* Two hosts: network namespaces joined by a veth pair                                      */
/* ---------------------------------------------------------------------------------------- */

typedef struct netns_job {
    char ns[2][32];
    bk_target_t t;
} netns_job_t;

/* Even ranks live on "host" a (10.231.0.1, which serves the root), odd ranks on b. */
static int netns_rank(int rank, int size, void *arg)
{
    netns_job_t *job = arg;
    char path[64];
    snprintf(path, sizeof(path), "/run/netns/%s", job->ns[rank % 2]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "rank %d: cannot enter %s: %s\n", rank, path, strerror(errno));
        return 1;
    }
    close(fd);
    /* As `ip netns exec` does: a /sys of the new namespace, where UCX lists the interfaces. */
    if (unshare(CLONE_NEWNS) != 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) != 0 ||
        umount2("/sys", MNT_DETACH) != 0 || mount(job->ns[rank % 2], "/sys", "sysfs", 0, NULL) != 0)
        fprintf(stderr,
                "rank %d: cannot mount the namespace's /sys (%s); UCX may not find its "
                "interfaces\n",
                rank, strerror(errno));
    return bk_collectives(rank, size, &job->t);
}

static void run_two_hosts(const char *backend)
{
    require_backend(backend);
    netns_job_t job;
    snprintf(job.ns[0], sizeof(job.ns[0]), "mnnvl%da", (int)getpid());
    snprintf(job.ns[1], sizeof(job.ns[1]), "mnnvl%db", (int)getpid());
    char *up[] = {"sh", MNNVL_TEST_SRCDIR "/netns.sh", "up", job.ns[0], job.ns[1], NULL};
    char *down[] = {"sh", MNNVL_TEST_SRCDIR "/netns.sh", "down", job.ns[0], job.ns[1], NULL};
    if (run_command(up, 30) != 0) {
        run_command(down, 30);
        cr_skip_test("%s two hosts: cannot create network namespaces with ip netns + veth "
                     "here (needs root / CAP_SYS_ADMIN and iproute2); see the log",
                     backend);
    }
    target_init(&job.t, backend, NULL, 30000, 64 * 1024);
    /* Both namespaces share this machine's identity, so UCX would take their loopback for
     * a shared one; two real hosts only share the link between them. */
    setenv("UCX_NET_DEVICES", "mnnvl0", 1);
    snprintf(job.t.address, sizeof(job.t.address), "10.231.0.1:%d", mt_free_port());
    int codes[4] = {0};
    int failed = mt_run_ranks(4, netns_rank, &job, 120, codes);
    run_command(down, 30);
    cr_expect_eq(failed, 0, "%s between two namespaces: %d of 4 ranks failed", backend, failed);
}

CALL_TEST(two_hosts, tcp, 200, run_two_hosts("tcp"))
CALL_TEST(two_hosts, ucx, 200, run_two_hosts("ucx"))
CALL_TEST(two_hosts, ofi, 200, run_two_hosts("ofi"))
