/* The rank's side of the tcp handshake (auth.h); the primitives are in auth.c. */
#include <string.h>

#include "auth.h"
#include "error.h"
#include "sock.h"

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
