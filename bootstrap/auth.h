/* Job-key proof for the tcp bootstrap.
 *
 * Both ends of a connection hold a 128-bit key derived from the job_key string. They swap
 * fresh random nonces and each sends SipHash-2-4 (keyed with the job key) over a role label
 * and both nonces. Because each proof covers the other side's fresh nonce, a recorded
 * exchange cannot be replayed, and because the labels differ, a root's proof cannot be
 * reflected back as a rank's. The job key itself never crosses the wire.
 *
 * An empty job key still derives a key: jobs without a secret work, and a job with a
 * secret refuses ranks without one.
 */
#ifndef MNNVL_AUTH_H
#define MNNVL_AUTH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mnnvl.h"
#include "tcp_wire.h"

typedef struct mnnvl_auth_key {
    uint64_t k0;
    uint64_t k1;
} mnnvl_auth_key_t;

typedef enum mnnvl_auth_role { MNNVL_AUTH_ROOT = 0, MNNVL_AUTH_RANK = 1 } mnnvl_auth_role_t;

/* SipHash-2-4 of `len` bytes under `key` (Aumasson and Bernstein, 2012). */
uint64_t mnnvl_siphash24(const mnnvl_auth_key_t *key, const void *data, size_t len);

/* Derives the connection key from the job_key string (NULL reads as ""). */
void mnnvl_auth_derive_key(const char *job_key, mnnvl_auth_key_t *key);

/* Fills a nonce from getrandom(). Returns BOOTSTRAP when the kernel gives no randomness. */
mnnvl_status_t mnnvl_auth_nonce(uint8_t nonce[MNNVL_WIRE_NONCE_BYTES]);

/* The proof `role` sends: a MAC over its label and both nonces. */
uint64_t mnnvl_auth_proof(const mnnvl_auth_key_t *key, mnnvl_auth_role_t role,
                          const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                          const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES]);

/* Compares two proofs in time independent of where they differ. Returns 1 when equal. */
int mnnvl_auth_proof_equal(uint64_t a, uint64_t b);

/* The rank's half of the handshake on a fresh connection to the root at `root_address`:
 * CHALLENGE out, CHALLENGE in, PROOF out. The rank sends its proof even when the root's is
 * wrong, so that the root can log the refused connection too. Returns AUTH when the root
 * did not prove the key, BOOTSTRAP when the peer does not speak this protocol, and the
 * statuses of the sock.h helpers. */
mnnvl_status_t mnnvl_auth_client(int fd, const mnnvl_auth_key_t *key, const char *root_address,
                                 uint64_t deadline, const atomic_int *abort_flag);

#endif
