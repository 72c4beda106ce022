/* Passing POSIX file descriptors (cuMem shareable handles) between the processes of one
 * host: each rank listens on an abstract Unix socket whose name travels over the bootstrap;
 * every rank then connects to each peer and sends its fd with SCM_RIGHTS, and accepts one
 * connection from each peer. The backlog holds the early connections, so no thread is
 * needed and no ordering can deadlock. Both ends check the other's SO_PEERCRED against the
 * pid that peer announced and against our uid; a receiver drops a foreign, silent or
 * garbled connection and keeps waiting for the real peer (fdpass.c). */
#ifndef MNNVL_FDPASS_H
#define MNNVL_FDPASS_H

#include <sys/types.h>

#include "mnnvl.h"

#define MNNVL_FD_NAME_LEN 64

typedef struct mnnvl_fd_listener mnnvl_fd_listener_t;

/* Binds a listener under a fresh random name (128 bits from libsodium; nothing from the
 * job key); `name` receives the abstract name (without the leading NUL) for the peers, to
 * be passed over the authenticated bootstrap. `rank` is for messages only. */
mnnvl_status_t mnnvl_fd_listen(int rank, int backlog, mnnvl_fd_listener_t **listener,
                               char name[MNNVL_FD_NAME_LEN]);

/* Sends `my_fd` to every other rank and receives theirs: fds[p] gets rank p's fd (the
 * caller closes them), fds[rank] = my_fd. names and pids are indexed by rank. On failure,
 * every fd received so far is closed and fds[] holds -1 for the peers. Returns TIMEOUT
 * when a peer's handle did not come in `timeout_ms`, AUTH when a listening socket is not
 * the announced peer's. */
mnnvl_status_t mnnvl_fd_exchange(mnnvl_fd_listener_t *listener, int rank, int size, int my_fd,
                                 const char (*names)[MNNVL_FD_NAME_LEN], const pid_t *pids,
                                 int timeout_ms, int *fds);

void mnnvl_fd_listener_close(mnnvl_fd_listener_t *listener);

/* Sends one handle message (the header naming `rank`, with `fd` attached) on a connected
 * socket. Returns 0, or -1 with errno. The exchange's one writer of the message; the tests
 * use it to play a forging peer. */
int mnnvl_fd_send_handle(int sock, int rank, int fd);

#endif
