/* Job-key proof, session keys and frame MACs for the tcp bootstrap and the ucx and ofi
 * plugins' star protocol (and random names for the fd exchange), all from libsodium. The
 * threat model is at the top of auth.c. The plugins compile auth.c in with MNNVL_PLUGIN
 * defined; mnnvl_auth_client (auth_client.c) is libmnnvl's only.
 *
 * Handshake (tcp_wire.h has the frames): the rank sends a fresh nonce; the root answers
 * with a fresh nonce of its own and nothing else; the rank proves the key with a MAC over
 * a role label and both nonces; only when that proof checks out does the root send its own
 * proof. Then both derive a session key from the job key and both nonces, and every frame
 * in either direction carries a MAC under it over (direction, sequence number, header,
 * payload). The star protocol (plugins/star.h) runs the same exchange with its own
 * messages, and carries each frame's sequence number (mnnvl_auth_seal_seq/open_seq) since
 * its transports may complete one connection's messages out of order.
 *
 * An empty job key still derives a key: jobs without a secret work, and a job with a
 * secret refuses ranks without one.
 */
#ifndef MNNVL_AUTH_H
#define MNNVL_AUTH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mnnvl.h"
#include "tcp_wire.h"

#define MNNVL_AUTH_KEY_BYTES 32
#define MNNVL_AUTH_TAG_BYTES 16
#define MNNVL_AUTH_WINDOW 64 /* open_seq: how far behind the newest a frame may arrive */

typedef struct mnnvl_auth_key {
    uint8_t k[MNNVL_AUTH_KEY_BYTES];
} mnnvl_auth_key_t;

typedef enum mnnvl_auth_role { MNNVL_AUTH_ROOT = 0, MNNVL_AUTH_RANK = 1 } mnnvl_auth_role_t;

/* One connection's session: its key and the next sequence number in each direction. */
typedef struct mnnvl_auth_session {
    uint8_t k[MNNVL_AUTH_KEY_BYTES];
    uint8_t send_dir; /* the direction byte of what this side sends (its role) */
    uint64_t send_seq;
    uint64_t recv_seq;
    uint64_t recv_window; /* open_seq: which of the frames before recv_seq were accepted */
} mnnvl_auth_session_t;

/* Initializes libsodium once (thread-safe). Returns BOOTSTRAP when it cannot. Every other
 * function here needs it; mnnvl_auth_derive_key calls it. */
mnnvl_status_t mnnvl_auth_init(void);

/* Derives the job's key from the job_key string (NULL reads as ""): BLAKE2b-256 under a
 * fixed label. Fast on purpose (no password hash): 256 ranks on 2 cores must bootstrap in
 * well under 2 s; a good job key (mnnvl-store --new-key) needs no stretching. */
mnnvl_status_t mnnvl_auth_derive_key(const char *job_key, mnnvl_auth_key_t *key);

/* Fills `buf` with random bytes (libsodium's randombytes_buf); after mnnvl_auth_init. */
void mnnvl_auth_random(void *buf, size_t len);

/* A 64-bit id from public data (unkeyed BLAKE2b under `label`): names carry nothing that
 * depends on the key. */
uint64_t mnnvl_auth_public_id(const char *label, const void *data, size_t len);

/* The proof `role` sends: keyed BLAKE2b over its label and both nonces. */
void mnnvl_auth_proof(const mnnvl_auth_key_t *key, mnnvl_auth_role_t role,
                      const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                      const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES],
                      uint8_t proof[MNNVL_WIRE_PROOF_BYTES]);

/* Compares `len` bytes in constant time. Returns 1 when equal. */
int mnnvl_auth_equal(const void *a, const void *b, size_t len);

/* The session of one connection seen from `self`, from the job key and both nonces. */
void mnnvl_auth_session(const mnnvl_auth_key_t *key, mnnvl_auth_role_t self,
                        const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                        const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES],
                        mnnvl_auth_session_t *session);

/* The MAC of the next frame this side sends (the header and payload in `iov`); takes the
 * next send sequence number. */
void mnnvl_auth_seal(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                     uint8_t tag[MNNVL_WIRE_MAC_BYTES]);

/* Checks the MAC of the next frame received; takes the next receive sequence number
 * either way (after a failure the connection is unusable). Returns 1 when it is right. */
int mnnvl_auth_open(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                    const uint8_t tag[MNNVL_WIRE_MAC_BYTES]);

/* The tag of data that a third party keeps for the job (the torch-store bootstrap's values
 * in a TCPStore, which authenticates nobody): keyed BLAKE2b under the job key over `label`
 * and the bytes of `iov`, into which the caller puts what the data is bound to (its store
 * key, round, writer) before the data itself. Check a received tag with mnnvl_auth_equal. */
void mnnvl_auth_tag(const mnnvl_auth_key_t *key, const char *label, const struct iovec *iov,
                    int iovcnt, uint8_t tag[MNNVL_AUTH_TAG_BYTES]);

/* Like seal, for frames that carry their sequence number: returns the one it took. */
uint64_t mnnvl_auth_seal_seq(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                             uint8_t tag[MNNVL_WIRE_MAC_BYTES]);

/* Checks a frame that says it is number `seq`: 1 when its MAC is right and no frame of
 * that number was accepted before, 0 for a forgery or a replay (a frame more than
 * MNNVL_AUTH_WINDOW behind the newest counts as one). Frames may arrive in any order
 * within the window; a frame that never arrives is not detected here (its receiver times
 * out waiting for it). */
int mnnvl_auth_open_seq(mnnvl_auth_session_t *s, uint64_t seq, const struct iovec *iov, int iovcnt,
                        const uint8_t tag[MNNVL_WIRE_MAC_BYTES]);

/* In libmnnvl only (auth_client.c). The rank's half of the handshake on a fresh connection to the
 * root at `root_address`: CHALLENGE out, CHALLENGE in, PROOF out, then the root's PROOF (or its
 * ERROR) in. Fills `session`. Returns AUTH when the root refused this rank's proof (the job keys
 * differ) or sent a wrong one, BOOTSTRAP when the peer does not speak this protocol, and the
 * statuses of the sock.h helpers. */
mnnvl_status_t mnnvl_auth_client(int fd, const mnnvl_auth_key_t *key, const char *root_address,
                                 uint64_t deadline, const atomic_int *abort_flag,
                                 mnnvl_auth_session_t *session);

#endif
