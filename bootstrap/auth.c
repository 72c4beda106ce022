/* Job-key proof, session keys and frame MACs (libsodium), and the rank's side of the
 * handshake. The root's side is a state machine inside tcp_root.c built on the same
 * functions.
 *
 * Threat model. Trusted: the processes that hold the job key. An attacker on the path
 * between a rank and the root (or any local user who can connect to the root's port) who
 * does not hold the key can delay and drop connections and frames, so it can make a job
 * fail (with TIMEOUT, PEER_LOST or AUTH); it cannot learn the key from the root, join a
 * group, forge a frame, or alter, replay or reorder one without the receiver failing with
 * AUTH. Before the connecting side proved the key the root sends only a fresh nonce (and,
 * on a wrong proof, an error), so probing the root gives nothing to test key guesses
 * against. A passive eavesdropper on a legitimate handshake does see MACs under the key
 * and can test guesses offline: the job key must be a real secret (mnnvl-store --new-key
 * prints a random 256-bit one), not a password. Frames are authenticated, not encrypted:
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

#include "error.h"
#include "sock.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void init_sodium(void)
{
    init_result = sodium_init() < 0 ? -1 : 0;
}

mnnvl_status_t mnnvl_auth_init(void)
{
    pthread_once(&init_once, init_sodium);
    if (init_result != 0)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "libsodium failed to initialize (sodium_init)");
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_auth_derive_key(const char *job_key, mnnvl_auth_key_t *key)
{
    static const char label[] = "mnnvl job key v3";
    MNNVL_CHECK(mnnvl_auth_init());
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

/* Receives a frame header and checks it is of `type` with `len` bytes; an ERROR frame of
 * at most MNNVL_WIRE_MAX_TEXT becomes its status and sentence. */
static mnnvl_status_t recv_handshake(int fd, const char *root_address, uint64_t deadline,
                                     const atomic_int *abort_flag, uint16_t want, void *out,
                                     size_t want_len)
{
    uint8_t head[MNNVL_WIRE_HEADER_BYTES];
    uint16_t type;
    uint64_t length;
    MNNVL_CHECK(mnnvl_sock_recv_all(fd, head, sizeof(head), deadline, abort_flag));
    if (mnnvl_wire_parse_header(head, &type, &length) != 0)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "%s does not speak the mnnvl tcp protocol version %d (it answered "
                           "0x%08x version %u); is root= pointing at an mnnvl root of this "
                           "version?",
                           root_address, MNNVL_WIRE_VERSION, mnnvl_wire_get32(head),
                           mnnvl_wire_get16(head + 4));
    if (type == MNNVL_WIRE_ERROR && length >= MNNVL_WIRE_ERROR_FIXED &&
        length <= MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT) {
        uint8_t msg[MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT];
        MNNVL_CHECK(mnnvl_sock_recv_all(fd, msg, (size_t)length, deadline, abort_flag));
        int32_t status = (int32_t)mnnvl_wire_get32(msg);
        int text = (int)(length - MNNVL_WIRE_ERROR_FIXED);
        if (status == MNNVL_ERR_AUTH)
            return mnnvl_error(MNNVL_ERR_AUTH,
                               "the root at %s refused this rank's proof of the job key: this "
                               "rank's job_key differs from the root's (the root said: %.*s)",
                               root_address, text, (const char *)msg + MNNVL_WIRE_ERROR_FIXED);
        if (status >= 0 || status < MNNVL_ERR_INTERNAL)
            status = MNNVL_ERR_BOOTSTRAP;
        return mnnvl_error((mnnvl_status_t)status, "the root at %s refused the connection: %.*s",
                           root_address, text, (const char *)msg + MNNVL_WIRE_ERROR_FIXED);
    }
    if (type != want || length != want_len)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the root at %s answered the handshake with message type %u of %llu "
                           "bytes, expected type %u of %zu",
                           root_address, type, (unsigned long long)length, want, want_len);
    return mnnvl_sock_recv_all(fd, out, want_len, deadline, abort_flag);
}

static mnnvl_status_t send_handshake(int fd, uint16_t type, const uint8_t *payload, size_t len,
                                     uint64_t deadline, const atomic_int *abort_flag)
{
    uint8_t msg[MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_PROOF_BYTES + MNNVL_WIRE_NONCE_BYTES];
    mnnvl_wire_header(msg, type, len);
    memcpy(msg + MNNVL_WIRE_HEADER_BYTES, payload, len);
    return mnnvl_sock_send_all(fd, msg, MNNVL_WIRE_HEADER_BYTES + len, deadline, abort_flag);
}

mnnvl_status_t mnnvl_auth_client(int fd, const mnnvl_auth_key_t *key, const char *root_address,
                                 uint64_t deadline, const atomic_int *abort_flag,
                                 mnnvl_auth_session_t *session)
{
    uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES];
    uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES];
    uint8_t proof[MNNVL_WIRE_PROOF_BYTES];
    uint8_t expected[MNNVL_WIRE_PROOF_BYTES];

    MNNVL_CHECK(mnnvl_auth_init());
    mnnvl_auth_random(rank_nonce, sizeof(rank_nonce));
    MNNVL_CHECK(send_handshake(fd, MNNVL_WIRE_CHALLENGE, rank_nonce, sizeof(rank_nonce), deadline,
                               abort_flag));
    MNNVL_CHECK(recv_handshake(fd, root_address, deadline, abort_flag, MNNVL_WIRE_CHALLENGE,
                               root_nonce, sizeof(root_nonce)));
    mnnvl_auth_proof(key, MNNVL_AUTH_RANK, rank_nonce, root_nonce, proof);
    MNNVL_CHECK(send_handshake(fd, MNNVL_WIRE_PROOF, proof, sizeof(proof), deadline, abort_flag));
    MNNVL_CHECK(recv_handshake(fd, root_address, deadline, abort_flag, MNNVL_WIRE_PROOF, proof,
                               sizeof(proof)));
    mnnvl_auth_proof(key, MNNVL_AUTH_ROOT, rank_nonce, root_nonce, expected);
    /* The root only proves after checking ours, so a wrong proof here is not a key
     * mismatch: something between us answered in the root's place. */
    if (!mnnvl_auth_equal(proof, expected, sizeof(proof)))
        return mnnvl_error(MNNVL_ERR_AUTH,
                           "the peer at %s accepted this rank's proof but did not prove the "
                           "job key itself: something between this rank and the root "
                           "answered in its place",
                           root_address);
    mnnvl_auth_session(key, MNNVL_AUTH_RANK, rank_nonce, root_nonce, session);
    return MNNVL_SUCCESS;
}
