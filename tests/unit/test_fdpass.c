/* The fd exchange (lib/fdpass.c) with plain file descriptors between real processes, no
 * GPU: two ranks swap memfds while a foreign process (the test itself, same uid, another
 * pid) connects to their sockets first and holds the connection, closes it, sends garbage,
 * or sends a well-formed handle message claiming to be the other rank. The exchange must
 * still succeed, with the real peer's fd, well before its deadline.
 *
 * Built from the sources (fdpass.c is not exported by libmnnvl.so). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadline.h"
#include "fdpass.h"
#include "log.h"

TestSuite(fdpass, .timeout = 60);

#define EXCHANGE_TIMEOUT_MS 5000

static int full_io(int fd, void *buf, size_t len, int writing)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One rank: listens, tells the parent its name, learns both names and pids, swaps a memfd
 * holding "rank N" with the other rank and checks what came back. */
static int rank_main(int rank, int to_parent, int from_parent)
{
    mnnvl_set_log_level(MNNVL_LOG_ERROR);
    mnnvl_fd_listener_t *listener = NULL;
    char names[2][MNNVL_FD_NAME_LEN] = {{0}};
    pid_t pids[2];
    if (mnnvl_fd_listen(rank, 8, &listener, names[rank]) != MNNVL_SUCCESS ||
        full_io(to_parent, names[rank], MNNVL_FD_NAME_LEN, 1) != 0 ||
        full_io(from_parent, names, sizeof(names), 0) != 0 ||
        full_io(from_parent, pids, sizeof(pids), 0) != 0)
        return 10;
    int mine = memfd_create("fdpass-test", MFD_CLOEXEC);
    char text[16];
    snprintf(text, sizeof(text), "rank %d", rank);
    if (mine < 0 || write(mine, text, sizeof(text)) != (ssize_t)sizeof(text))
        return 11;
    int fds[2] = {-1, -1};
    mnnvl_status_t st =
        mnnvl_fd_exchange(listener, rank, 2, mine, (const char(*)[MNNVL_FD_NAME_LEN])names, pids,
                          EXCHANGE_TIMEOUT_MS, fds);
    if (st != MNNVL_SUCCESS) {
        fprintf(stderr, "rank %d: fd exchange: %s\n", rank, mnnvl_last_error());
        return 12;
    }
    char got[16] = {0};
    char want[16];
    snprintf(want, sizeof(want), "rank %d", 1 - rank);
    if (pread(fds[1 - rank], got, sizeof(got), 0) != (ssize_t)sizeof(got) ||
        strcmp(got, want) != 0) {
        fprintf(stderr, "rank %d: got the fd of \"%s\", expected \"%s\"\n", rank, got, want);
        return 13;
    }
    mnnvl_fd_listener_close(listener);
    return 0;
}

static int connect_to(const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strnlen(name, MNNVL_FD_NAME_LEN - 1);
    memcpy(addr.sun_path + 1, name, len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)),
                 0, "connect to @%s: %s", name, strerror(errno));
    return fd;
}

/* A handle message in the exchange's own form, carrying one of our own fds: right in form,
 * wrong in sender. */
static void send_forged_handle(int sock, int claimed_rank)
{
    int fd = memfd_create("forged", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mnnvl_fd_send_handle(sock, claimed_rank, fd), 0, "%s", strerror(errno));
    close(fd);
}

Test(fdpass, foreign_connections_that_hold_close_or_send_garbage_do_not_fail_the_exchange)
{
    int up[2][2];
    int down[2][2];
    pid_t pids[2];
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(pipe(up[r]), 0);
        cr_assert_eq(pipe(down[r]), 0);
        pids[r] = fork();
        cr_assert_geq(pids[r], 0);
        if (pids[r] == 0)
            _exit(rank_main(r, up[r][1], down[r][0]));
    }
    char names[2][MNNVL_FD_NAME_LEN];
    for (int r = 0; r < 2; r++)
        cr_assert_eq(full_io(up[r][0], names[r], MNNVL_FD_NAME_LEN, 0), 0, "rank %d died", r);
    for (int r = 0; r < 2; r++) {
        cr_expect(strncmp(names[r], "mnnvl-fd-", 9) == 0 && strlen(names[r]) == 9 + 32,
                  "the socket name is not 128 random bits: %s", names[r]);
        cr_expect_neq(strcmp(names[0], names[1]), 0);
    }

    /* Before the ranks start: each socket's backlog gets a holder, a closer, garbage and a
     * forged handle, ahead of the real peer. */
    int held[2][3];
    for (int r = 0; r < 2; r++) {
        held[r][0] = connect_to(names[r]); /* holds, says nothing */
        close(connect_to(names[r]));       /* connects and closes */
        held[r][1] = connect_to(names[r]);
        cr_assert_eq(write(held[r][1], "garbage garbage garbage", 23), 23);
        held[r][2] = connect_to(names[r]);
        send_forged_handle(held[r][2], 1 - r);
    }

    uint64_t start = mnnvl_now_ms();
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(full_io(down[r][1], names, sizeof(names), 1), 0);
        cr_assert_eq(full_io(down[r][1], pids, sizeof(pids), 1), 0);
    }
    for (int r = 0; r < 2; r++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[r], &status, 0), pids[r]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "rank %d failed (exit %d; 12: the exchange failed, 13: a wrong fd)", r,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    uint64_t took = mnnvl_now_ms() - start;
    cr_expect_lt(took, EXCHANGE_TIMEOUT_MS / 2,
                 "the exchange took %llu ms: the foreign connections held it up",
                 (unsigned long long)took);
    cr_log_info("exchange beside 4 foreign connections per rank: %llu ms",
                (unsigned long long)took);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++)
            close(held[r][i]);
}

/* A peer that never comes: TIMEOUT at the deadline, with a sentence. */
Test(fdpass, missing_peer_times_out)
{
    mnnvl_set_log_level(MNNVL_LOG_ERROR);
    mnnvl_fd_listener_t *listener = NULL;
    char names[2][MNNVL_FD_NAME_LEN] = {{0}};
    cr_assert_eq(mnnvl_fd_listen(0, 4, &listener, names[0]), MNNVL_SUCCESS);
    /* Rank 1's "listener" is ours too: sending to it succeeds, its handle never comes. */
    mnnvl_fd_listener_t *other = NULL;
    cr_assert_eq(mnnvl_fd_listen(1, 4, &other, names[1]), MNNVL_SUCCESS);
    pid_t pids[2] = {getpid(), getpid()};
    int mine = memfd_create("x", MFD_CLOEXEC);
    int fds[2];
    uint64_t start = mnnvl_now_ms();
    mnnvl_status_t st = mnnvl_fd_exchange(listener, 0, 2, mine,
                                          (const char(*)[MNNVL_FD_NAME_LEN])names, pids, 300, fds);
    cr_expect_eq(st, MNNVL_ERR_TIMEOUT, "%s", mnnvl_last_error());
    cr_expect(strstr(mnnvl_last_error(), "timed out"), "%s", mnnvl_last_error());
    cr_expect_lt(mnnvl_now_ms() - start, 3000);
    cr_expect_eq(fds[1], -1);
    close(mine);
    mnnvl_fd_listener_close(listener);
    mnnvl_fd_listener_close(other);
}

typedef struct silent_then_real {
    const char *name;
    int silent;
} silent_then_real_t;

/* From the expected peer's own pid (this process plays rank 1): first a connection that
 * says nothing, then the real handle message on a second one. */
static void *silent_then_real(void *arg)
{
    silent_then_real_t *s = arg;
    s->silent = connect_to(s->name);
    usleep(50 * 1000);
    int real = connect_to(s->name);
    send_forged_handle(real, 1); /* from rank 1's pid: the genuine article */
    close(real);
    return NULL;
}

/* A silent connection from the peer's pid is dropped after the short bound, and the
 * exchange takes the handle that follows. */
Test(fdpass, silent_connection_is_dropped_after_the_short_bound)
{
    mnnvl_set_log_level(MNNVL_LOG_ERROR);
    mnnvl_fd_listener_t *listener = NULL;
    mnnvl_fd_listener_t *other = NULL;
    char names[2][MNNVL_FD_NAME_LEN] = {{0}};
    cr_assert_eq(mnnvl_fd_listen(0, 4, &listener, names[0]), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_fd_listen(1, 4, &other, names[1]), MNNVL_SUCCESS);
    pid_t pids[2] = {getpid(), getpid()};
    silent_then_real_t s = {names[0], -1};
    pthread_t t;
    pthread_create(&t, NULL, silent_then_real, &s);
    pthread_join(t, NULL);
    int mine = memfd_create("x", MFD_CLOEXEC);
    int fds[2] = {-1, -1};
    uint64_t start = mnnvl_now_ms();
    mnnvl_status_t st = mnnvl_fd_exchange(listener, 0, 2, mine,
                                          (const char(*)[MNNVL_FD_NAME_LEN])names, pids, 5000, fds);
    uint64_t took = mnnvl_now_ms() - start;
    cr_expect_eq(st, MNNVL_SUCCESS, "%s", mnnvl_last_error());
    cr_expect_geq(fds[1], 0);
    cr_expect_lt(took, 2500, "the silent connection held the exchange for %llu ms",
                 (unsigned long long)took);
    cr_log_info("silent connection dropped, exchange done in %llu ms", (unsigned long long)took);
    if (fds[1] >= 0)
        close(fds[1]);
    close(s.silent);
    close(mine);
    mnnvl_fd_listener_close(listener);
    mnnvl_fd_listener_close(other);
}

enum { THREAD_RANKS = 4 };

typedef struct thread_rank {
    int rank;
    char (*names)[MNNVL_FD_NAME_LEN];
    mnnvl_fd_listener_t *listener;
    int fds[THREAD_RANKS];
    mnnvl_status_t st;
    char error[256];
} thread_rank_t;

static void *exchange_thread(void *arg)
{
    thread_rank_t *t = arg;
    pid_t pids[THREAD_RANKS];
    for (int r = 0; r < THREAD_RANKS; r++)
        pids[r] = getpid();
    int mine = memfd_create("thread-rank", MFD_CLOEXEC);
    char text[16];
    snprintf(text, sizeof(text), "rank %d", t->rank);
    if (mine < 0 || write(mine, text, sizeof(text)) != (ssize_t)sizeof(text)) {
        t->st = MNNVL_ERR_INTERNAL;
        return NULL;
    }
    t->st = mnnvl_fd_exchange(t->listener, t->rank, THREAD_RANKS, mine,
                              (const char(*)[MNNVL_FD_NAME_LEN])t->names, pids, 5000, t->fds);
    snprintf(t->error, sizeof(t->error), "%s", mnnvl_last_error());
    return NULL;
}

/* Ranks that are threads of one process all have one pid: each handle is placed by the
 * rank its message names, checked against that rank's pid. (With the pid alone naming the
 * sender, 4 thread ranks dropped each other's handles and timed out, seen on the H200.) */
Test(fdpass, ranks_that_are_threads_of_one_process)
{
    mnnvl_set_log_level(MNNVL_LOG_ERROR);
    char names[THREAD_RANKS][MNNVL_FD_NAME_LEN] = {{0}};
    thread_rank_t t[THREAD_RANKS];
    pthread_t tid[THREAD_RANKS];
    for (int r = 0; r < THREAD_RANKS; r++) {
        t[r] = (thread_rank_t){.rank = r, .names = names};
        cr_assert_eq(mnnvl_fd_listen(r, 8, &t[r].listener, names[r]), MNNVL_SUCCESS);
    }
    /* Highest rank first, so handles reach every listener out of rank order. */
    for (int r = THREAD_RANKS - 1; r >= 0; r--) {
        cr_assert_eq(pthread_create(&tid[r], NULL, exchange_thread, &t[r]), 0);
        usleep(30 * 1000);
    }
    for (int r = 0; r < THREAD_RANKS; r++)
        pthread_join(tid[r], NULL);
    for (int r = 0; r < THREAD_RANKS; r++) {
        cr_expect_eq(t[r].st, MNNVL_SUCCESS, "rank %d: %s", r, t[r].error);
        for (int p = 0; p < THREAD_RANKS && t[r].st == MNNVL_SUCCESS; p++) {
            char got[16] = {0}, want[16];
            snprintf(want, sizeof(want), "rank %d", p);
            cr_expect(pread(t[r].fds[p], got, sizeof(got), 0) == (ssize_t)sizeof(got) &&
                          strcmp(got, want) == 0,
                      "rank %d holds \"%s\" where rank %d's fd belongs", r, got, p);
            if (p != r)
                close(t[r].fds[p]);
        }
        mnnvl_fd_listener_close(t[r].listener);
    }
}
