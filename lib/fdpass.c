#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "deadline.h"
#include "error.h"
#include "fdpass.h"

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

/* FNV-1a: the socket name carries a hash of the job key, never the key itself. */
static uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

mnnvl_status_t mnnvl_fd_listen(const char *job_key, int rank, int backlog,
                               mnnvl_fd_listener_t **listener, char name[MNNVL_FD_NAME_LEN])
{
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce = (uint64_t)getpid() << 32 ^ mnnvl_now_ms();
    snprintf(name, MNNVL_FD_NAME_LEN, "mnnvl-%016llx-%d-%d-%016llx",
             (unsigned long long)hash_string(job_key), (int)getpid(), rank,
             (unsigned long long)nonce);
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
        fd_header_t header = {.magic = FD_MAGIC, .rank = rank};
        struct iovec iov = {.iov_base = &header, .iov_len = sizeof(header)};
        char control[CMSG_SPACE(sizeof(int))] = {0};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof(control)};
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &my_fd, sizeof(int));
        if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof(header))
            st = mnnvl_error(MNNVL_ERR_PEER_LOST, "fd exchange: rank %d cannot send to rank %d: %s",
                             rank, peer, strerror(errno));
    }
    close(sock);
    return st;
}

/* Accepts one connection and takes the fd it carries; *from receives the sender's rank. */
static mnnvl_status_t receive_fd(int listen_fd, int rank, int size, const pid_t *pids,
                                 uint64_t deadline, int *from, int *fd_out)
{
    int sock;
    for (;;) {
        sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (sock >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            return mnnvl_error(MNNVL_ERR_INTERNAL, "fd exchange: accept failed: %s",
                               strerror(errno));
        if (wait_fd(listen_fd, POLLIN, deadline) != 0)
            return mnnvl_error(MNNVL_ERR_TIMEOUT,
                               "fd exchange: rank %d timed out waiting for a peer's handle",
                               rank);
    }
    fd_header_t header = {0};
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = &header, .iov_len = sizeof(header)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof(control)};
    mnnvl_status_t st = MNNVL_SUCCESS;
    ssize_t got = -1;
    if (wait_fd(sock, POLLIN, deadline) == 0)
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    struct cmsghdr *cmsg = got == (ssize_t)sizeof(header) ? CMSG_FIRSTHDR(&msg) : NULL;
    int fd = -1;
    if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    if (fd < 0 || header.magic != FD_MAGIC || header.rank < 0 || header.rank >= size ||
        header.rank == rank)
        st = mnnvl_error(MNNVL_ERR_AUTH,
                         "fd exchange: rank %d received a malformed handle message (%zd bytes, "
                         "sender rank %d)",
                         rank, got, (int)header.rank);
    if (st == MNNVL_SUCCESS)
        st = check_peer(sock, pids[header.rank], header.rank, "sending");
    close(sock);
    if (st != MNNVL_SUCCESS) {
        if (fd >= 0)
            close(fd);
        return st;
    }
    *from = header.rank;
    *fd_out = fd;
    return MNNVL_SUCCESS;
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
        st = receive_fd(listener->fd, rank, size, pids, deadline, &from, &fd);
        if (st == MNNVL_SUCCESS && fds[from] >= 0) {
            close(fd);
            st = mnnvl_error(MNNVL_ERR_AUTH, "fd exchange: rank %d received two handles from "
                                             "rank %d", rank, from);
        }
        if (st == MNNVL_SUCCESS)
            fds[from] = fd;
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
