/* TCP socket helpers of the tcp bootstrap: address parsing, listening, connecting with retry,
 * and whole-buffer send/receive. Every blocking helper takes a deadline (base/deadline.h) and
 * an optional abort flag, so that no call can hang past its deadline or outlive an abort.
 *
 * Sockets are created CLOEXEC and non-blocking; waits happen in poll(). Sends use
 * MSG_NOSIGNAL, so a closed peer is an error status, never a SIGPIPE.
 *
 * Statuses of the blocking helpers: TIMEOUT (deadline passed), ABORTED (the abort flag was
 * set), PEER_LOST (the peer closed or reset the connection), BOOTSTRAP (other socket errors).
 * Their sentences describe the socket event only; callers wrap them with who the peer is.
 */
#ifndef MNNVL_SOCK_H
#define MNNVL_SOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mnnvl.h"

/* Room for any "host:port" this module formats: a bracketed IPv6 address and a port, or a
 * host name of reasonable length. */
#define MNNVL_SOCK_ADDR_MAX 300

/* Splits "host:port", "[ipv6]:port" or ":port" (every interface) into its parts, by the
 * base layer's rule (base/hostport.h) with the last error set. Returns INVALID_ARGUMENT
 * naming the address when the rule refuses it or a part does not fit. */
mnnvl_status_t mnnvl_sock_split(const char *address, char *host, size_t host_len, char *port,
                                size_t port_len);

/* Listens on `address` (port 0 picks a free port) with SO_REUSEADDR and a large backlog.
 * `bound` receives the numeric "ip:port" actually bound. Returns INVALID_ARGUMENT (bad or
 * unresolvable address) or BOOTSTRAP (bind/listen failed, e.g. the port is in use). */
mnnvl_status_t mnnvl_sock_listen(const char *address, int *fd, char *bound, size_t bound_len);

/* Connects to `address`, retrying refused and unreachable attempts with a short back-off
 * until `deadline`. The socket returned has TCP_NODELAY set. Returns INVALID_ARGUMENT (bad
 * address), TIMEOUT (naming the address, the time waited and the last error), ABORTED. */
mnnvl_status_t mnnvl_sock_connect(const char *address, uint64_t deadline,
                                  const atomic_int *abort_flag, int *fd);

/* Sends every byte of the iovecs (which it may modify) before `deadline`. */
mnnvl_status_t mnnvl_sock_sendv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline,
                                    const atomic_int *abort_flag);

mnnvl_status_t mnnvl_sock_send_all(int fd, const void *buf, size_t len, uint64_t deadline,
                                   const atomic_int *abort_flag);

/* Receives exactly `len` bytes before `deadline`. */
mnnvl_status_t mnnvl_sock_recv_all(int fd, void *buf, size_t len, uint64_t deadline,
                                   const atomic_int *abort_flag);

/* Waits until `fd` has something to read (data, end of stream or an error). */
mnnvl_status_t mnnvl_sock_wait_readable(int fd, uint64_t deadline, const atomic_int *abort_flag);

/* Sleeps `ms` milliseconds, less when the deadline comes sooner. Returns ABORTED when the
 * abort flag is set before or during the sleep, else SUCCESS. */
mnnvl_status_t mnnvl_sock_sleep(int ms, uint64_t deadline, const atomic_int *abort_flag);

/* Formats the remote address of a connected socket as "ip:port" ("?" when unknown). */
void mnnvl_sock_peer_name(int fd, char *buf, size_t len);

/* This host's name resolved to a numeric address, or "127.0.0.1" when it does not resolve.
 * IPv6 addresses come bracketed, ready for appending ":port". */
void mnnvl_sock_host_address(char *buf, size_t len);

/* Sets TCP_NODELAY (small collective messages must not wait for Nagle). */
void mnnvl_sock_nodelay(int fd);

#endif
