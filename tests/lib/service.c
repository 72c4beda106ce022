#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif

#include "service.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadline.h"

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 30000
#define INFO_MAX 256

/* One socket pair: the service sends its info at ready and its result at the end; the test
 * sends one byte to ask it to stop. A socket, not pipes, so that a write to a service that is
 * gone fails with EPIPE (MSG_NOSIGNAL) instead of killing the test with SIGPIPE. */
struct mt_service_io {
    int fd;
};

struct mt_service {
    pid_t pid;
    int fd;
    char info[INFO_MAX];
};

/* Reads exactly len bytes before the deadline; 0 on success. */
static int read_until(int fd, void *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)mnnvl_deadline_left(deadline);
        if (left == 0)
            return -1;
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The messages are at most INFO_MAX bytes on an otherwise idle socket pair, whose buffer
 * takes them whole in one send. */
static int write_all(int fd, const void *buf, size_t len)
{
    ssize_t w;
    do
        w = send(fd, buf, len, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)len ? 0 : -1;
}

void mt_service_ready(mt_service_io_t *io, const char *info)
{
    char buf[INFO_MAX] = {0};
    snprintf(buf, sizeof(buf), "%s", info ? info : "");
    (void)write_all(io->fd, buf, sizeof(buf));
}

void mt_service_wait(mt_service_io_t *io)
{
    char byte;
    /* A byte from mt_service_stop, or EOF once the test process and the ranks that inherited
     * its end are gone. */
    while (read(io->fd, &byte, 1) < 0 && errno == EINTR)
        ;
}

mt_service_t *mt_service_start(mt_service_fn fn, void *arg)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Gone with the test process, even when a failed assertion ends it early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        mt_service_io_t io = {.fd = sv[1]};
        int result = fn(arg, &io);
        (void)write_all(io.fd, &result, sizeof(result));
        fflush(NULL);
        _exit(0);
    }
    close(sv[1]);
    mt_service_t *s = calloc(1, sizeof(*s));
    if (pid < 0 || !s) {
        fprintf(stderr, "mt_service_start: %s\n", pid < 0 ? strerror(errno) : "out of memory");
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        close(sv[0]);
        free(s);
        return NULL;
    }
    s->pid = pid;
    s->fd = sv[0];
    if (read_until(s->fd, s->info, sizeof(s->info), mnnvl_deadline_after(READY_TIMEOUT_MS))) {
        fprintf(stderr, "mt_service_start: the service did not come up within %d ms\n",
                READY_TIMEOUT_MS);
        mt_service_stop(s);
        return NULL;
    }
    s->info[sizeof(s->info) - 1] = '\0';
    return s;
}

const char *mt_service_info(const mt_service_t *s)
{
    return s->info;
}

int mt_service_stop(mt_service_t *s)
{
    if (!s)
        return -1;
    (void)write_all(s->fd, "x", 1);
    int result = -1;
    if (read_until(s->fd, &result, sizeof(result), mnnvl_deadline_after(STOP_TIMEOUT_MS))) {
        fprintf(stderr, "mt_service_stop: no result from the service within %d ms: killing it\n",
                STOP_TIMEOUT_MS);
        result = -1;
        kill(s->pid, SIGKILL);
    }
    waitpid(s->pid, NULL, 0);
    close(s->fd);
    free(s);
    return result;
}
