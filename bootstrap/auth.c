/* Job-key proof, session keys and frame MACs (libsodium). The tcp rank's side of the
 * handshake is in auth_client.c, the root's a state machine inside tcp_root.c, and the ucx
 * and ofi plugins' handshake in plugins/star.c: all built on these functions. The plugins
 * compile this file in (with MNNVL_PLUGIN defined: they cannot reach libmnnvl's error.h).
 *
 * Threat model. Trusted: the processes that hold the job key. An attacker on the path
 * between a rank and the root (tcp: the root; ucx, ofi: rank 0, the star's hub), or any
 * local user who can connect to the root's port, who does not hold the key can delay and
 * drop connections and frames, so it can make a job fail (with TIMEOUT, PEER_LOST or AUTH);
 * it cannot learn the key from the root, join a group, forge a frame, or alter or replay
 * one without the receiver failing with AUTH (tcp also fails a reordered or missing frame
 * with AUTH; the star protocol accepts an authentic frame that its transport completed out
 * of order, matches it by collective, and times out on a missing one). Before the
 * connecting side proved the key the root sends only a fresh nonce (and, on a wrong
 * proof, an error), so probing the root gives nothing to test key guesses against. A
 * passive eavesdropper on a legitimate handshake does see MACs under the key and can test
 * guesses offline: the job key must be a real secret (mnnvl-store --new-key prints a
 * random 256-bit one; keys under 16 bytes are refused), not a password. Frames are
 * authenticated, not encrypted:
 * what the bootstrap carries (ranks' addresses, fd-exchange socket names, memory handle
 * descriptors, which only processes with access to the same machine or IMEX domain can
 * use) is not secret from whoever can watch the wire, and encryption would cost a copy of
 * every collective for no gain against that model; use a private network if the contents
 * must not be seen. The key itself never crosses the wire and never appears in names, logs
 * or error messages.
 *
 * Primitives: keyed BLAKE2b (crypto_generichash) for the key derivation, the proofs, the
 * session key, the frame MACs and the torch-store value tags (16 bytes each);
 * randombytes_buf for nonces.
 */
#include "auth.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#ifdef MNNVL_PLUGIN
/* A plugin's caller states the failure through its own set_error. */
#define init_failed() MNNVL_ERR_BOOTSTRAP
#else
#include "error.h"
#define init_failed() \
    mnnvl_error(MNNVL_ERR_BOOTSTRAP, "libsodium failed to initialize (sodium_init)")
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void init_sodium(void)
{
    init_result = sodium_init() < 0 ? -1 : 0;
}

mnnvl_status_t mnnvl_auth_init(void)
{
    pthread_once(&init_once, init_sodium);
    return init_result != 0 ? init_failed() : MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_auth_derive_key(const char *job_key, mnnvl_auth_key_t *key)
{
    static const char label[] = "mnnvl job key v3";
    mnnvl_status_t ready = mnnvl_auth_init();
    if (ready != MNNVL_SUCCESS)
        return ready;
    const char *s = job_key ? job_key : "";
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof(key->k));
    crypto_generichash_update(&h, (const unsigned char *)label, sizeof(label));
    crypto_generichash_update(&h, (const unsigned char *)s, strlen(s));
    crypto_generichash_final(&h, key->k, sizeof(key->k));
    sodium_memzero(&h, sizeof(h));
    return MNNVL_SUCCESS;
}

void mnnvl_auth_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

uint64_t mnnvl_auth_public_id(const char *label, const void *data, size_t len)
{
    uint8_t out[crypto_generichash_BYTES_MIN];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof(out));
    crypto_generichash_update(&h, (const unsigned char *)label, strlen(label) + 1);
    crypto_generichash_update(&h, data, len);
    crypto_generichash_final(&h, out, sizeof(out));
    return mnnvl_wire_get64(out);
}

/* Keyed BLAKE2b of a label and two nonces. */
static void mac_nonces(const uint8_t *key, const char *label, const uint8_t *rank_nonce,
                       const uint8_t *root_nonce, uint8_t *out, size_t out_len)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, key, MNNVL_AUTH_KEY_BYTES, out_len);
    crypto_generichash_update(&h, (const unsigned char *)label, strlen(label) + 1);
    crypto_generichash_update(&h, rank_nonce, MNNVL_WIRE_NONCE_BYTES);
    crypto_generichash_update(&h, root_nonce, MNNVL_WIRE_NONCE_BYTES);
    crypto_generichash_final(&h, out, out_len);
}

void mnnvl_auth_proof(const mnnvl_auth_key_t *key, mnnvl_auth_role_t role,
                      const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                      const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES],
                      uint8_t proof[MNNVL_WIRE_PROOF_BYTES])
{
    /* Distinct labels: a root's proof cannot be reflected back as a rank's. */
    mac_nonces(key->k, role == MNNVL_AUTH_ROOT ? "mnnvl tcp root proof" : "mnnvl tcp rank proof",
               rank_nonce, root_nonce, proof, MNNVL_WIRE_PROOF_BYTES);
}

int mnnvl_auth_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void mnnvl_auth_session(const mnnvl_auth_key_t *key, mnnvl_auth_role_t self,
                        const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                        const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES],
                        mnnvl_auth_session_t *session)
{
    mac_nonces(key->k, "mnnvl tcp session key", rank_nonce, root_nonce, session->k,
               sizeof(session->k));
    session->send_dir = (uint8_t)self;
    session->send_seq = 0;
    session->recv_seq = 0;
    session->recv_window = 0;
}

/* The MAC over (direction, sequence number, the frame's bytes). */
static void frame_mac(const mnnvl_auth_session_t *s, uint8_t dir, uint64_t seq,
                      const struct iovec *iov, int iovcnt, uint8_t tag[MNNVL_WIRE_MAC_BYTES])
{
    uint8_t prefix[9];
    prefix[0] = dir;
    mnnvl_wire_put64(prefix + 1, seq);
    crypto_generichash_state h;
    crypto_generichash_init(&h, s->k, sizeof(s->k), MNNVL_WIRE_MAC_BYTES);
    crypto_generichash_update(&h, prefix, sizeof(prefix));
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            crypto_generichash_update(&h, iov[i].iov_base, iov[i].iov_len);
    crypto_generichash_final(&h, tag, MNNVL_WIRE_MAC_BYTES);
}

void mnnvl_auth_seal(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                     uint8_t tag[MNNVL_WIRE_MAC_BYTES])
{
    frame_mac(s, s->send_dir, s->send_seq++, iov, iovcnt, tag);
}

int mnnvl_auth_open(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                    const uint8_t tag[MNNVL_WIRE_MAC_BYTES])
{
    uint8_t expected[MNNVL_WIRE_MAC_BYTES];
    frame_mac(s, (uint8_t)!s->send_dir, s->recv_seq++, iov, iovcnt, expected);
    return mnnvl_auth_equal(expected, tag, sizeof(expected));
}

void mnnvl_auth_tag(const mnnvl_auth_key_t *key, const char *label, const struct iovec *iov,
                    int iovcnt, uint8_t tag[MNNVL_AUTH_TAG_BYTES])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, key->k, sizeof(key->k), MNNVL_AUTH_TAG_BYTES);
    crypto_generichash_update(&h, (const unsigned char *)label, strlen(label) + 1);
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            crypto_generichash_update(&h, iov[i].iov_base, iov[i].iov_len);
    crypto_generichash_final(&h, tag, MNNVL_AUTH_TAG_BYTES);
}

uint64_t mnnvl_auth_seal_seq(mnnvl_auth_session_t *s, const struct iovec *iov, int iovcnt,
                             uint8_t tag[MNNVL_WIRE_MAC_BYTES])
{
    uint64_t seq = s->send_seq++;
    frame_mac(s, s->send_dir, seq, iov, iovcnt, tag);
    return seq;
}

int mnnvl_auth_open_seq(mnnvl_auth_session_t *s, uint64_t seq, const struct iovec *iov, int iovcnt,
                        const uint8_t tag[MNNVL_WIRE_MAC_BYTES])
{
    uint8_t expected[MNNVL_WIRE_MAC_BYTES];
    frame_mac(s, (uint8_t)!s->send_dir, seq, iov, iovcnt, expected);
    if (!mnnvl_auth_equal(expected, tag, sizeof(expected)))
        return 0;
    /* recv_seq is one past the newest accepted; bit i of recv_window: recv_seq - 1 - i was
     * accepted. Older than the window counts as a replay. */
    if (seq >= s->recv_seq) {
        uint64_t shift = seq - s->recv_seq + 1;
        s->recv_window = shift >= 64 ? 0 : s->recv_window << shift;
        s->recv_window |= 1;
        s->recv_seq = seq + 1;
        return 1;
    }
    uint64_t age = s->recv_seq - 1 - seq;
    if (age >= MNNVL_AUTH_WINDOW || (s->recv_window >> age) & 1)
        return 0;
    s->recv_window |= 1ull << age;
    return 1;
}
