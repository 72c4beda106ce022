/* libFuzzer harness for the tcp bootstrap's rank side (bootstrap/tcp.c): how a rank parses
 * what the root sends. The first byte picks the rank and the group size; the rest is what
 * "the root" sends, as frames: every header that parses is sent with its payload (as much
 * as the input holds) and then a valid MAC, so that the fuzzer reaches the rank's handling
 * of FORMED, RESULT, ERROR and STATUS frames instead of spending itself on tags; the bytes
 * after a header that does not parse go out raw. The rank must fail or succeed cleanly,
 * never read or write out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/tcp.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The root's side: every frame whose header parses, sealed; the rest raw. */
static size_t seal_frames(const uint8_t *in, size_t len, uint8_t *out)
{
    mnnvl_auth_key_t key;
    mnnvl_auth_session_t sess;
    uint8_t zero[MNNVL_WIRE_NONCE_BYTES] = {0};
    if (mnnvl_auth_derive_key("", &key) != MNNVL_SUCCESS)
        return 0;
    mnnvl_auth_session(&key, MNNVL_AUTH_ROOT, zero, zero, &sess);
    size_t off = 0, n = 0;
    while (off < len) {
        uint16_t type;
        uint64_t length;
        if (len - off < MNNVL_WIRE_HEADER_BYTES ||
            mnnvl_wire_parse_header(in + off, &type, &length) != 0) {
            memcpy(out + n, in + off, len - off);
            return n + len - off;
        }
        size_t left = len - off - MNNVL_WIRE_HEADER_BYTES;
        size_t frame = MNNVL_WIRE_HEADER_BYTES + (length < left ? (size_t)length : left);
        struct iovec iov = {(void *)(in + off), frame};
        memcpy(out + n, in + off, frame);
        mnnvl_auth_seal(&sess, &iov, 1, out + n + frame);
        n += frame + MNNVL_WIRE_MAC_BYTES;
        off += frame;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each frame grows by its tag, 16 bytes per 16-byte header at most. */
    static uint8_t sealed[2 * FUZZ_MAX_STREAM];
    if (size < 1 || size > FUZZ_MAX_STREAM)
        return 0;
    fuzz_quiet_logs();
    int group = 1 + (data[0] & 3);
    int rank = (data[0] >> 2 & 3) % group;
    size_t n = seal_frames(data + 1, size - 1, sealed);
    int sv[2];
    if (fuzz_socketpair(sealed, n, sv) != 0)
        return 0;
    mnnvl_tcp_rank_feed(sv[0], rank, group); /* closes sv[0] */
    close(sv[1]);
    return 0;
}
