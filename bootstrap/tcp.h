/* The root of the tcp bootstrap: a rendezvous and relay server on a background thread.
 *
 * Ranks connect, prove the job key (auth.h) and join a group by its 64-bit id; the root
 * relays the star-shaped collectives of each group (tcp_wire.h describes the protocol). One
 * root serves any number of groups at once, and a group id may be reused once its previous
 * generation formed, so communicators with the same name can be created again and again.
 *
 * Used by lib/root.c (mnnvl_root_start), tools/mnnvl-store (through that) and tcp.c (the
 * embedded root of root_mode=rank0).
 */
#ifndef MNNVL_TCP_H
#define MNNVL_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "mnnvl.h"

typedef struct mnnvl_tcp_root mnnvl_tcp_root_t;

/* Listens on `listen_address` ("host:port", port 0 for a free one) and starts the root's
 * thread. `job_key` is the secret every connection must prove (NULL reads as ""). The root
 * starts with one reference. Returns INVALID_ARGUMENT (bad address), BOOTSTRAP (cannot
 * listen or start the thread), NO_MEMORY. */
mnnvl_status_t mnnvl_tcp_root_start(const char *listen_address, const char *job_key,
                                    mnnvl_tcp_root_t **root);

/* The numeric "ip:port" the root listens on, owned by the root. */
const char *mnnvl_tcp_root_address(const mnnvl_tcp_root_t *root);

/* Adds a reference: split children of a root_mode=rank0 communicator hold one each, so the
 * root lives while any communicator of rank 0's process still needs it. Thread-safe. */
void mnnvl_tcp_root_retain(mnnvl_tcp_root_t *root);

/* Drops a reference (the one from start, or one from retain). The last one stops the root:
 * it stops accepting, delivers what it already queued (for at most a short linger), closes
 * every connection (connected ranks see PEER_LOST), joins the thread and frees everything.
 * NULL is a no-op. Thread-safe. */
void mnnvl_tcp_root_stop(mnnvl_tcp_root_t *root);

/* A connection to the root from its own process (rank 0's ranks in root_mode=rank0): one end
 * of a socket pair in *fd, which the caller owns and uses as it would a connection to the
 * root's address. What the root sends on such a connection about a collective goes out only
 * after the group's other members were written theirs (tcp_root.c says why). Returns
 * BOOTSTRAP or NO_MEMORY. Thread-safe. */
mnnvl_status_t mnnvl_tcp_root_connect_local(mnnvl_tcp_root_t *root, int *fd);

/* Makes the last stop wait, after the output linger, until no member of a formed group is
 * still connected (each has left with BYE or dropped), for at most its timeout_ms or 10 s. For
 * the root that rank 0 hosts (root_mode=rank0): its end would read as rank 0's death to the
 * others' liveness, so it outlives rank 0's graceful destroy until they destroy theirs.
 * Thread-safe. */
void mnnvl_tcp_root_outlive_members(mnnvl_tcp_root_t *root);

/* For fuzz harnesses (tests/fuzz), which compile tcp_root.c in: runs `len` received bytes
 * through the root's message handling for one connection that has proved the job key (so
 * HELLO, then member messages) as plain frames without their MAC tags (the root skips the
 * MAC check for this connection only; what it sends back is sealed as usual), in loop turns as the
 * root would, with no socket, thread or listener; then frees everything. Not part of the library's
 * API. */
void mnnvl_tcp_root_feed(const uint8_t *data, size_t len);

/* For fuzz harnesses too (tests/fuzz/fuzz_tcp_rank.c, which compiles tcp.c in): runs rank
 * `rank` of `size` over `fd`, a connected socket whose peer plays the root: HELLO, then the
 * wait for FORMED, an allgather and a broadcast of 8 bytes and a barrier, until the first
 * failure, then destroy (which closes fd). The session is that of zero nonces under the
 * empty job key (mnnvl_auth_session), so the peer can seal valid frames. */
void mnnvl_tcp_rank_feed(int fd, int rank, int size);

#endif
