/* What the libFuzzer harnesses share: every log line formatted (so that peer-controlled
 * text goes through the formatting) and dropped (so that stderr does not slow the run), and
 * a socket pair whose one end already holds everything "the peer" says, for harnesses that
 * play a peer (no thread: thread creation under ASan costs more than a run). */
#ifndef MNNVL_FUZZ_UTIL_H
#define MNNVL_FUZZ_UTIL_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mnnvl.h"

static void fuzz_drop_line(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    (void)user_data;
}

static void fuzz_quiet_logs(void)
{
    static int done;
    if (!done) {
        mnnvl_set_log_callback(fuzz_drop_line, NULL);
        mnnvl_set_log_level(MNNVL_LOG_TRACE);
        done = 1;
    }
}

/* Inputs up to this size fit in a socket's buffer at once. */
#define FUZZ_MAX_STREAM 32768

/* A connected pair: sv[0] non-blocking for the code under test, and the peer's `len` bytes
 * already waiting in it, then the end of the stream (what did not fit is dropped). */
static int fuzz_socketpair(const void *data, size_t len, int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(sv[1], p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    return 0;
}

#endif
