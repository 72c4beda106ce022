/* TCP socket helpers; see sock.h for the contract shared by every function here. */
#include "sock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "error.h"
#include "hostport.h"

/* The kernel caps this at net.core.somaxconn; asking high lets a root take a burst of
 * thousands of simultaneous connects without dropping SYNs (a dropped SYN costs the
 * client a one-second retransmit). */
#define LISTEN_BACKLOG 16384

/* Polls in slices of this many ms when an abort flag exists: abort() also shuts the socket
 * down, which wakes poll at once, but the flag alone must be enough. */
#define ABORT_POLL_MS 100

#define CONNECT_BACKOFF_FIRST_MS 10
#define CONNECT_BACKOFF_MAX_MS 100

static int is_aborted(const atomic_int *abort_flag)
{
    return abort_flag && atomic_load(abort_flag);
}

static mnnvl_status_t aborted_error(void)
{
    return mnnvl_error(MNNVL_ERR_ABORTED, "the communicator was aborted");
}

/* Waits for `events` on fd until the deadline. */
static mnnvl_status_t wait_fd(int fd, short events, uint64_t deadline, const atomic_int *abort_flag)
{
    for (;;) {
        if (is_aborted(abort_flag))
            return aborted_error();
        int left = mnnvl_deadline_left(deadline);
        if (left == 0)
            return mnnvl_error(MNNVL_ERR_TIMEOUT, "timed out waiting on the socket");
        if (abort_flag && left > ABORT_POLL_MS)
            left = ABORT_POLL_MS;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left);
        if (n > 0)
            return MNNVL_SUCCESS;
        if (n < 0 && errno != EINTR)
            return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "poll failed: %s", strerror(errno));
    }
}

mnnvl_status_t mnnvl_sock_split(const char *address, char *host, size_t host_len, char *port,
                                size_t port_len)
{
    mnnvl_hostport_t hp;
    char why[MNNVL_SOCK_ADDR_MAX + 200];
    if (mnnvl_hostport_parse(address, MNNVL_HOSTPORT_LISTEN, &hp, why, sizeof(why)) !=
        MNNVL_SUCCESS)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s", why);
    if (strlen(hp.host) >= host_len || strlen(hp.port) >= port_len)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "address '%s' is too long", address);
    memcpy(host, hp.host, strlen(hp.host) + 1);
    memcpy(port, hp.port, strlen(hp.port) + 1);
    return MNNVL_SUCCESS;
}

/* Resolves `address`; an empty host means the wildcard (passive) or loopback. Returns
 * INVALID_ARGUMENT when the name does not resolve, TIMEOUT-worthy failures (EAI_AGAIN) as
 * BOOTSTRAP so that connect can retry them. */
static mnnvl_status_t resolve(const char *address, int passive, struct addrinfo **res)
{
    char host[MNNVL_SOCK_ADDR_MAX];
    char port[8];
    MNNVL_CHECK(mnnvl_sock_split(address, host, sizeof(host), port, sizeof(port)));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, res);
    if (rc == EAI_AGAIN)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "resolving '%s' failed for now: %s", host,
                           gai_strerror(rc));
    if (rc != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "cannot resolve the host of '%s': %s",
                           address, gai_strerror(rc));
    return MNNVL_SUCCESS;
}

static void format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf, size_t buf_len)
{
    char host[NI_MAXHOST];
    char port[NI_MAXSERV];
    if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, buf_len, "?");
        return;
    }
    if (sa->sa_family == AF_INET6)
        snprintf(buf, buf_len, "[%s]:%s", host, port);
    else
        snprintf(buf, buf_len, "%s:%s", host, port);
}

static int is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

void mnnvl_sock_nodelay(int fd)
{
    int one = 1;
    /* Best effort: a socket without it still works, only slower. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int listen_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    /* Fixed ports are the common case (root=host:port), and a root restarted on the same
     * port must not wait for TIME_WAIT of its previous connections. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
        return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

mnnvl_status_t mnnvl_sock_listen(const char *address, int *fd, char *bound, size_t bound_len)
{
    struct addrinfo *res = NULL;
    MNNVL_CHECK(resolve(address, 1, &res));
    int lfd = -1;
    int err = 0;
    for (struct addrinfo *ai = res; ai && lfd < 0; ai = ai->ai_next) {
        lfd = listen_one(ai);
        if (lfd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (lfd < 0)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "cannot listen on %s: %s", address, strerror(err));
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) != 0) {
        err = errno;
        close(lfd);
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "getsockname on %s failed: %s", address,
                           strerror(err));
    }
    if (is_wildcard(&ss)) {
        /* Others cannot connect to 0.0.0.0; name an address of this host instead. */
        char host[MNNVL_SOCK_ADDR_MAX];
        mnnvl_sock_host_address(host, sizeof(host));
        snprintf(bound, bound_len, "%s:%d", host, port_of(&ss));
    } else {
        format_sockaddr((struct sockaddr *)&ss, len, bound, bound_len);
    }
    *fd = lfd;
    return MNNVL_SUCCESS;
}

/* One connect attempt to one resolved address; returns the connected fd or -1 with errno. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline, const atomic_int *abort_flag)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else if (wait_fd(fd, POLLOUT, deadline, abort_flag) != MNNVL_SUCCESS) {
            err = ETIMEDOUT;
        } else {
            socklen_t len = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
    }
    if (err != 0) {
        close(fd);
        errno = err;
        return -1;
    }
    mnnvl_sock_nodelay(fd);
    return fd;
}

mnnvl_status_t mnnvl_sock_connect(const char *address, uint64_t deadline,
                                  const atomic_int *abort_flag, int *fd)
{
    uint64_t start = mnnvl_now_ms();
    int backoff = CONNECT_BACKOFF_FIRST_MS;
    int attempts = 0;
    char last[128] = "none";
    /* Every failure is retried until the deadline: in root_mode=rank0 the other ranks
     * usually start before rank 0 listens, and networks flap. The last error is reported. */
    for (;;) {
        struct addrinfo *res = NULL;
        mnnvl_status_t st = resolve(address, 0, &res);
        if (st == MNNVL_ERR_INVALID_ARGUMENT)
            return st;
        if (st == MNNVL_SUCCESS) {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                attempts++;
                int cfd = connect_one(ai, deadline, abort_flag);
                if (cfd >= 0) {
                    freeaddrinfo(res);
                    *fd = cfd;
                    return MNNVL_SUCCESS;
                }
                snprintf(last, sizeof(last), "%s", strerror(errno));
            }
            freeaddrinfo(res);
        } else {
            snprintf(last, sizeof(last), "%s", mnnvl_last_error());
        }
        if (is_aborted(abort_flag))
            return aborted_error();
        if (mnnvl_deadline_left(deadline) == 0)
            return mnnvl_error(MNNVL_ERR_TIMEOUT,
                               "could not connect to %s within %d ms (%d attempts; last error: "
                               "%s)",
                               address, (int)(mnnvl_now_ms() - start), attempts, last);
        MNNVL_CHECK(mnnvl_sock_sleep(backoff, deadline, abort_flag));
        backoff = backoff * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS : backoff * 2;
    }
}

mnnvl_status_t mnnvl_sock_sendv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline,
                                    const atomic_int *abort_flag)
{
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        if (is_aborted(abort_flag))
            return aborted_error();
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                MNNVL_CHECK(wait_fd(fd, POLLOUT, deadline, abort_flag));
                continue;
            }
            if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
                return is_aborted(abort_flag)
                           ? aborted_error()
                           : mnnvl_error(MNNVL_ERR_PEER_LOST, "the connection was closed (%s)",
                                         strerror(errno));
            return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "send failed: %s", strerror(errno));
        }
        size_t sent = (size_t)n;
        while (iovcnt > 0 && sent >= iov->iov_len) {
            sent -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + sent;
            iov->iov_len -= sent;
        }
    }
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_sock_send_all(int fd, const void *buf, size_t len, uint64_t deadline,
                                   const atomic_int *abort_flag)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return mnnvl_sock_sendv_all(fd, &iov, 1, deadline, abort_flag);
}

mnnvl_status_t mnnvl_sock_recv_all(int fd, void *buf, size_t len, uint64_t deadline,
                                   const atomic_int *abort_flag)
{
    size_t got = 0;
    while (got < len) {
        if (is_aborted(abort_flag))
            return aborted_error();
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            MNNVL_CHECK(wait_fd(fd, POLLIN, deadline, abort_flag));
            continue;
        }
        /* abort() shuts the socket down, which reads as an end of stream here. */
        if (is_aborted(abort_flag))
            return aborted_error();
        if (n == 0)
            return mnnvl_error(MNNVL_ERR_PEER_LOST,
                               "the connection was closed by the other side (%zu of %zu bytes "
                               "received)",
                               got, len);
        if (errno == ECONNRESET || errno == ENOTCONN)
            return mnnvl_error(MNNVL_ERR_PEER_LOST, "the connection was reset (%s)",
                               strerror(errno));
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "recv failed: %s", strerror(errno));
    }
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_sock_wait_readable(int fd, uint64_t deadline, const atomic_int *abort_flag)
{
    return wait_fd(fd, POLLIN, deadline, abort_flag);
}

mnnvl_status_t mnnvl_sock_sleep(int ms, uint64_t deadline, const atomic_int *abort_flag)
{
    uint64_t until = mnnvl_deadline_after(ms);
    if (until > deadline)
        until = deadline;
    for (;;) {
        if (is_aborted(abort_flag))
            return aborted_error();
        int left = mnnvl_deadline_left(until);
        if (left == 0)
            return MNNVL_SUCCESS;
        poll(NULL, 0, left > ABORT_POLL_MS ? ABORT_POLL_MS : left);
    }
}

void mnnvl_sock_peer_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(buf, len, "?");
        return;
    }
    format_sockaddr((struct sockaddr *)&ss, sl, buf, len);
}

void mnnvl_sock_host_address(char *buf, size_t len)
{
    char name[256];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    snprintf(buf, len, "127.0.0.1");
    if (gethostname(name, sizeof(name)) != 0)
        return;
    name[sizeof(name) - 1] = '\0';
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return;
    /* Prefer IPv4: it is what peers on most clusters reach each other by. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    char host[NI_MAXHOST];
    if (pick && getnameinfo(pick->ai_addr, pick->ai_addrlen, host, sizeof(host), NULL, 0,
                            NI_NUMERICHOST) == 0)
        snprintf(buf, len, pick->ai_family == AF_INET6 ? "[%s]" : "%s", host);
    freeaddrinfo(res);
}
