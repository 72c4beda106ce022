/* Job-key proof: SipHash-2-4, key derivation, and the rank's side of the handshake. The
 * root's side is a state machine inside tcp_root.c built on the same functions. */
#include "auth.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "error.h"
#include "sock.h"

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl64(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl64(v[0], 32);
    v[2] += v[3];
    v[3] = rotl64(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl64(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl64(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl64(v[2], 32);
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t mnnvl_siphash24(const mnnvl_auth_key_t *key, const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t v[4] = {
        key->k0 ^ 0x736f6d6570736575ull,
        key->k1 ^ 0x646f72616e646f6dull,
        key->k0 ^ 0x6c7967656e657261ull,
        key->k1 ^ 0x7465646279746573ull,
    };
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8)
        sip_absorb(v, load_le64(in + i));
    /* The last block carries the remaining bytes and the length's low byte on top. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)in[full + i] << (8 * i);
    sip_absorb(v, last);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

void mnnvl_auth_derive_key(const char *job_key, mnnvl_auth_key_t *key)
{
    /* Two fixed domain keys turn the string into two independent 64-bit halves. */
    static const mnnvl_auth_key_t half0 = {0x6d6e6e766c2d6a6full, 0x622d6b65792d6b30ull};
    static const mnnvl_auth_key_t half1 = {0x6d6e6e766c2d6a6full, 0x622d6b65792d6b31ull};
    const char *s = job_key ? job_key : "";
    size_t len = strlen(s);
    key->k0 = mnnvl_siphash24(&half0, s, len);
    key->k1 = mnnvl_siphash24(&half1, s, len);
}

mnnvl_status_t mnnvl_auth_nonce(uint8_t nonce[MNNVL_WIRE_NONCE_BYTES])
{
    size_t got = 0;
    while (got < MNNVL_WIRE_NONCE_BYTES) {
        ssize_t n = getrandom(nonce + got, MNNVL_WIRE_NONCE_BYTES - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "getrandom failed: %s", strerror(errno));
        got += (size_t)n;
    }
    return MNNVL_SUCCESS;
}

uint64_t mnnvl_auth_proof(const mnnvl_auth_key_t *key, mnnvl_auth_role_t role,
                          const uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES],
                          const uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES])
{
    static const char labels[2][16] = {"mnnvl tcp root", "mnnvl tcp rank"};
    uint8_t msg[16 + 2 * MNNVL_WIRE_NONCE_BYTES];
    memcpy(msg, labels[role], 16);
    memcpy(msg + 16, rank_nonce, MNNVL_WIRE_NONCE_BYTES);
    memcpy(msg + 16 + MNNVL_WIRE_NONCE_BYTES, root_nonce, MNNVL_WIRE_NONCE_BYTES);
    return mnnvl_siphash24(key, msg, sizeof(msg));
}

int mnnvl_auth_proof_equal(uint64_t a, uint64_t b)
{
    volatile uint64_t diff = a ^ b;
    return diff == 0;
}

/* Receives the root's CHALLENGE reply: its nonce and its proof. */
static mnnvl_status_t recv_challenge(int fd, const char *root_address, uint64_t deadline,
                                     const atomic_int *abort_flag,
                                     uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES],
                                     uint64_t *root_proof)
{
    uint8_t head[MNNVL_WIRE_HEADER_BYTES];
    uint8_t body[MNNVL_WIRE_NONCE_BYTES + 8];
    uint16_t type;
    uint64_t length;
    MNNVL_CHECK(mnnvl_sock_recv_all(fd, head, sizeof(head), deadline, abort_flag));
    if (mnnvl_wire_parse_header(head, &type, &length) != 0)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "%s does not speak the mnnvl tcp protocol version %d (it answered "
                           "0x%08x version %u); is root= pointing at an mnnvl root?",
                           root_address, MNNVL_WIRE_VERSION, mnnvl_wire_get32(head),
                           mnnvl_wire_get16(head + 4));
    if (type != MNNVL_WIRE_CHALLENGE || length != sizeof(body))
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the root at %s answered the challenge with message type %u of %llu "
                           "bytes",
                           root_address, type, (unsigned long long)length);
    MNNVL_CHECK(mnnvl_sock_recv_all(fd, body, sizeof(body), deadline, abort_flag));
    memcpy(root_nonce, body, MNNVL_WIRE_NONCE_BYTES);
    *root_proof = mnnvl_wire_get64(body + MNNVL_WIRE_NONCE_BYTES);
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_auth_client(int fd, const mnnvl_auth_key_t *key, const char *root_address,
                                 uint64_t deadline, const atomic_int *abort_flag)
{
    uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES];
    uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES] = {0};
    uint8_t msg[MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_NONCE_BYTES];
    uint64_t root_proof = 0;

    MNNVL_CHECK(mnnvl_auth_nonce(rank_nonce));
    mnnvl_wire_header(msg, MNNVL_WIRE_CHALLENGE, MNNVL_WIRE_NONCE_BYTES);
    memcpy(msg + MNNVL_WIRE_HEADER_BYTES, rank_nonce, MNNVL_WIRE_NONCE_BYTES);
    MNNVL_CHECK(mnnvl_sock_send_all(fd, msg, sizeof(msg), deadline, abort_flag));
    MNNVL_CHECK(recv_challenge(fd, root_address, deadline, abort_flag, root_nonce, &root_proof));

    uint8_t proof_msg[MNNVL_WIRE_HEADER_BYTES + 8];
    mnnvl_wire_header(proof_msg, MNNVL_WIRE_PROOF, 8);
    mnnvl_wire_put64(proof_msg + MNNVL_WIRE_HEADER_BYTES,
                     mnnvl_auth_proof(key, MNNVL_AUTH_RANK, rank_nonce, root_nonce));
    MNNVL_CHECK(mnnvl_sock_send_all(fd, proof_msg, sizeof(proof_msg), deadline, abort_flag));

    uint64_t expected = mnnvl_auth_proof(key, MNNVL_AUTH_ROOT, rank_nonce, root_nonce);
    if (!mnnvl_auth_proof_equal(root_proof, expected))
        return mnnvl_error(MNNVL_ERR_AUTH,
                           "the root at %s did not prove the job key: it was started with a "
                           "different job_key than this rank's",
                           root_address);
    return MNNVL_SUCCESS;
}
