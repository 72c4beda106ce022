/* fd exchange over abstract Unix sockets (fdpass.h).
 *
 * A listener's name is 128 random bits from libsodium, fresh per exchange and nothing
 * derived from the job key; it reaches the peers over the authenticated bootstrap. Any
 * local process can still see the names (/proc/net/unix) and connect, so what arrives is
 * checked before it counts: a connection whose SO_PEERCRED is not our uid and the pid of a
 * peer we still wait for is dropped at once; one that says nothing within SILENT_MS, or
 * sends anything but one well-formed handle message from the rank whose pid it has, is
 * dropped too. Dropping never fails the exchange: it keeps waiting for the real peers
 * until its deadline. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "deadline.h"
#include "error.h"
#include "fdpass.h"
#include "log.h"

/* How long an accepted connection may stay silent before it is dropped. A real peer sends
 * its handle right after connecting; the bound is generous for a loaded host. */
#define SILENT_MS 500

#define FD_MAGIC 0x6d6e6e766c666421ull /* "mnnvlfd!" */

struct mnnvl_fd_listener {
    int fd;
};

/* What travels with each fd: who sends it, so the receiver can place it and check the
 * sender's credentials against the pid that rank announced. */
typedef struct fd_header {
    uint64_t magic;
    int32_t rank;
    int32_t pad;
} fd_header_t;

static socklen_t abstract_address(const char *name, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    size_t len = strnlen(name, MNNVL_FD_NAME_LEN - 1);
    memcpy(addr->sun_path + 1, name, len); /* sun_path[0] = 0: the abstract namespace */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

mnnvl_status_t mnnvl_fd_listen(int rank, int backlog, mnnvl_fd_listener_t **listener,
                               char name[MNNVL_FD_NAME_LEN])
{
    uint8_t nonce[16];
    MNNVL_CHECK(mnnvl_auth_init());
    mnnvl_auth_random(nonce, sizeof(nonce));
    int at = snprintf(name, MNNVL_FD_NAME_LEN, "mnnvl-fd-");
    for (size_t i = 0; i < sizeof(nonce); i++)
        at += snprintf(name + at, MNNVL_FD_NAME_LEN - (size_t)at, "%02x", nonce[i]);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return mnnvl_error(MNNVL_ERR_INTERNAL, "fd exchange: socket(AF_UNIX) failed: %s",
                           strerror(errno));
    struct sockaddr_un addr;
    socklen_t len = abstract_address(name, &addr);
    if (bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, backlog) != 0) {
        int err = errno;
        close(fd);
        return mnnvl_error(MNNVL_ERR_INTERNAL,
                           "fd exchange: rank %d cannot listen on the abstract socket @%s: %s",
                           rank, name, strerror(err));
    }
    *listener = calloc(1, sizeof(**listener));
    if (!*listener) {
        close(fd);
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "fd exchange: out of memory");
    }
    (*listener)->fd = fd;
    return MNNVL_SUCCESS;
}

void mnnvl_fd_listener_close(mnnvl_fd_listener_t *listener)
{
    if (!listener)
        return;
    close(listener->fd);
    free(listener);
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, mnnvl_deadline_left(deadline));
        if (n > 0)
            return 0;
        if (n == 0)
            return -1;
        if (errno != EINTR)
            return -1;
    }
}

static mnnvl_status_t check_peer(int sock, pid_t want_pid, int peer, const char *role)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return mnnvl_error(MNNVL_ERR_AUTH, "fd exchange: SO_PEERCRED failed on the %s socket: %s",
                           role, strerror(errno));
    if (cred.uid != getuid() || (want_pid > 0 && cred.pid != want_pid))
        return mnnvl_error(MNNVL_ERR_AUTH,
                           "fd exchange: the %s socket for rank %d belongs to pid %d uid %d, "
                           "but rank %d announced pid %d and we run as uid %d",
                           role, peer, (int)cred.pid, (int)cred.uid, peer, (int)want_pid,
                           (int)getuid());
    return MNNVL_SUCCESS;
}

int mnnvl_fd_send_handle(int sock, int rank, int fd)
{
    fd_header_t header = {.magic = FD_MAGIC, .rank = rank};
    struct iovec iov = {.iov_base = &header, .iov_len = sizeof(header)};
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control,
                         .msg_controllen = sizeof(control)};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(header) ? 0 : -1;
}

static mnnvl_status_t send_fd(int rank, int peer, const char *name, pid_t pid, int my_fd,
                              uint64_t deadline)
{
    struct sockaddr_un addr;
    socklen_t len = abstract_address(name, &addr);
    int sock = -1;
    /* The peer's listener exists (its name came after bind), but its backlog may be full
     * for a moment: retry until the deadline. */
    for (;;) {
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
            return mnnvl_error(MNNVL_ERR_INTERNAL, "fd exchange: socket failed: %s",
                               strerror(errno));
        if (connect(sock, (struct sockaddr *)&addr, len) == 0)
            break;
        int err = errno;
        close(sock);
        if ((err != EAGAIN && err != ECONNREFUSED && err != EINTR) ||
            mnnvl_deadline_left(deadline) == 0)
            return mnnvl_error(err == EAGAIN || err == ECONNREFUSED ? MNNVL_ERR_TIMEOUT
                                                                    : MNNVL_ERR_PEER_LOST,
                               "fd exchange: rank %d cannot connect to rank %d at @%s: %s", rank,
                               peer, name, strerror(err));
        usleep(1000);
    }
    mnnvl_status_t st = check_peer(sock, pid, peer, "listening");
    if (st == MNNVL_SUCCESS) {
        if (mnnvl_fd_send_handle(sock, rank, my_fd) != 0)
            st = mnnvl_error(MNNVL_ERR_PEER_LOST, "fd exchange: rank %d cannot send to rank %d: %s",
                             rank, peer, strerror(errno));
    }
    close(sock);
    return st;
}

/* 1 when some peer whose fd we still wait for has `pid`. Ranks may be threads of one
 * process, so a pid alone does not name the rank: the handle message does. */
static int pid_awaited(pid_t pid, int rank, int size, const pid_t *pids, const int *fds)
{
    for (int p = 0; p < size; p++)
        if (p != rank && fds[p] < 0 && pids[p] == pid)
            return 1;
    return 0;
}

/* Takes the handle message of one accepted connection: 0 and *from, *fd_out when it is a
 * well-formed one from a peer we wait for whose announced pid is the sender's, -1 (with
 * `why`) when it is to be dropped. */
static int take_handle(int sock, int rank, int size, const pid_t *pids, const int *fds,
                       uint64_t deadline, int *from, int *fd_out, char *why, size_t why_len)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        snprintf(why, why_len, "SO_PEERCRED failed: %s", strerror(errno));
        return -1;
    }
    if (cred.uid != getuid() || !pid_awaited(cred.pid, rank, size, pids, fds)) {
        snprintf(why, why_len, "pid %d uid %d is no peer this rank waits for", (int)cred.pid,
                 (int)cred.uid);
        return -1;
    }
    uint64_t silent = mnnvl_deadline_after(SILENT_MS);
    if (wait_fd(sock, POLLIN, silent < deadline ? silent : deadline) != 0) {
        snprintf(why, why_len, "pid %d said nothing within %d ms", (int)cred.pid, SILENT_MS);
        return -1;
    }
    fd_header_t header = {0};
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = &header, .iov_len = sizeof(header)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control,
                         .msg_controllen = sizeof(control)};
    ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    struct cmsghdr *cmsg = got == (ssize_t)sizeof(header) ? CMSG_FIRSTHDR(&msg) : NULL;
    int fd = -1;
    if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    int peer = header.rank;
    int expected =
        peer >= 0 && peer < size && peer != rank && fds[peer] < 0 && pids[peer] == cred.pid;
    if (fd < 0 || header.magic != FD_MAGIC || !expected) {
        if (fd >= 0)
            close(fd);
        snprintf(why, why_len,
                 "pid %d sent a malformed handle message (%zd bytes, naming rank %d, which is "
                 "not a peer of that pid whose handle this rank waits for)",
                 (int)cred.pid, got, (int)header.rank);
        return -1;
    }
    *from = peer;
    *fd_out = fd;
    return 0;
}

/* Accepts connections until one carries the fd of a peer we wait for; *from receives its
 * rank. Foreign or broken connections are dropped (see the top of this file). */
static mnnvl_status_t receive_fd(int listen_fd, int rank, int size, const pid_t *pids,
                                 const int *fds, uint64_t deadline, int *from, int *fd_out)
{
    for (;;) {
        int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (sock < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                return mnnvl_error(MNNVL_ERR_INTERNAL, "fd exchange: accept failed: %s",
                                   strerror(errno));
            if (wait_fd(listen_fd, POLLIN, deadline) != 0)
                return mnnvl_error(MNNVL_ERR_TIMEOUT,
                                   "fd exchange: rank %d timed out waiting for a peer's handle",
                                   rank);
            continue;
        }
        char why[160];
        int ok =
            take_handle(sock, rank, size, pids, fds, deadline, from, fd_out, why, sizeof(why)) == 0;
        close(sock);
        if (ok)
            return MNNVL_SUCCESS;
        MNNVL_WARN("fd exchange: rank %d dropped a connection to its socket: %s", rank, why);
    }
}

mnnvl_status_t mnnvl_fd_exchange(mnnvl_fd_listener_t *listener, int rank, int size, int my_fd,
                                 const char (*names)[MNNVL_FD_NAME_LEN], const pid_t *pids,
                                 int timeout_ms, int *fds)
{
    uint64_t deadline = mnnvl_deadline_after(timeout_ms);
    for (int p = 0; p < size; p++)
        fds[p] = -1;
    fds[rank] = my_fd;
    mnnvl_status_t st = MNNVL_SUCCESS;
    for (int i = 1; st == MNNVL_SUCCESS && i < size; i++) {
        int peer = (rank + i) % size; /* staggered so ranks do not all hit rank 0 first */
        st = send_fd(rank, peer, names[peer], pids[peer], my_fd, deadline);
    }
    for (int i = 1; st == MNNVL_SUCCESS && i < size; i++) {
        int from = -1, fd = -1;
        st = receive_fd(listener->fd, rank, size, pids, fds, deadline, &from, &fd);
        if (st == MNNVL_SUCCESS)
            fds[from] = fd; /* receive_fd only takes ranks whose fd is still missing */
    }
    if (st != MNNVL_SUCCESS) {
        for (int p = 0; p < size; p++) {
            if (p != rank && fds[p] >= 0)
                close(fds[p]);
            if (p != rank)
                fds[p] = -1;
        }
    }
    return st;
}
