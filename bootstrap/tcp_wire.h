/* The wire protocol between a rank (bootstrap/tcp.c) and the root (bootstrap/tcp_root.c).
 *
 * Framing. Every message is a 16-byte header followed by `length` payload bytes. All
 * integers are big-endian.
 *
 *     offset 0   u32 magic     MNNVL_WIRE_MAGIC, "MNVL": catches strangers and lost framing
 *     offset 4   u16 version   MNNVL_WIRE_VERSION; the root refuses other versions
 *     offset 6   u16 type      enum mnnvl_wire_type
 *     offset 8   u64 length    payload bytes that follow
 *
 * A connection, from the rank's side:
 *
 *     rank -> root   CHALLENGE   rank nonce                         (authentication, 1/3)
 *     root -> rank   CHALLENGE   root nonce, nothing else           (2/3)
 *     rank -> root   PROOF       rank proof                         (3/3)
 *     root -> rank   PROOF       root proof, only once the rank's checked out; a wrong one
 *                                is answered with ERROR(AUTH) and a close instead
 *     from here on every frame, both ways, is followed by a MNNVL_WIRE_MAC_BYTES tag (not
 *     counted in `length`) under the session key (auth.h), over (direction, sequence
 *     number, header, payload): a frame altered, dropped, replayed or reordered fails the
 *     connection with AUTH.
 *     rank -> root   HELLO       group id, rank, size, label        (sent right after PROOF)
 *     root -> rank   FORMED      once `size` distinct ranks said HELLO with that group id
 *     then, any number of times:
 *     rank -> root   COLL        one contribution to a collective
 *     root -> rank   RESULT      when every rank contributed, or ERROR
 *     finally:
 *     rank -> root   BYE         graceful leave (communicator destroyed), then close
 *
 * At any time the root may send ERROR (a peer was lost, the job key was refused, ...), and
 * the rank may send QUERY (answered with STATUS) and ABORT.
 *
 * Payloads (offsets within the payload):
 *
 *   CHALLENGE  rank->root: u8 nonce[32]; root->rank: u8 nonce[32]
 *   PROOF      u8 proof[32] (auth.h). A wrong rank proof is answered with ERROR(AUTH) and a
 *              close; the root logs the peer's address.
 *   HELLO      u64 group_id (public: a hash of the communicator's name, nothing from the
 *              key), u32 rank, u32 size, u32 timeout_ms, then a label of up to
 *              MNNVL_WIRE_MAX_LABEL bytes (the communicator's name, for messages only). A
 *              HELLO whose group id names a group that already formed starts a new
 *              generation of it. timeout_ms (at most MNNVL_WIRE_MAX_TIMEOUT_MS) is how long
 *              the rank waits: the root bounds the time the rank may spend in a group that
 *              does not form, and in one message, by it.
 *   FORMED     u32 size
 *   COLL       u8 op (enum mnnvl_wire_op), u8 pad[3], u32 root (broadcast only), u64 bytes,
 *              then the data: `bytes` for an allgather and for the broadcast root, nothing
 *              for the other broadcast ranks. A barrier is an allgather of 0 bytes.
 *   RESULT     allgather: size*bytes, rank r's block at r*bytes; broadcast: the root's
 *              `bytes` (0 bytes to the broadcast root itself).
 *   ERROR      i32 status (an mnnvl_status_t), i32 rank it concerns (-1: none), then a
 *              sentence of up to MNNVL_WIRE_MAX_TEXT bytes (not NUL-terminated).
 *   QUERY      empty: asks how far the group got (sent by a rank whose wait timed out).
 *   STATUS     u8 phase (0: forming, 1: collective), u8 pad[3], u32 arrived, u32 size,
 *              i32 first missing rank (-1: none), then the missing ranks as text of up to
 *              MNNVL_WIRE_MAX_TEXT bytes ("ranks 1-3, 7"; ranges, cut with "and N more"),
 *              then, while forming, maybe a newline and a note that the root refused
 *              connections with a different job key (and the last one's address).
 *              One STATUS at most is queued per connection: QUERYs while one waits are
 *              dropped.
 *   ABORT      an optional reason of up to MNNVL_WIRE_MAX_TEXT bytes; the root fails the
 *              group and tells every other member PEER_LOST.
 *   BYE        empty.
 */
#ifndef MNNVL_TCP_WIRE_H
#define MNNVL_TCP_WIRE_H

#include <stdint.h>

#define MNNVL_WIRE_MAGIC 0x4d4e564cu /* "MNVL" */
/* 2: HELLO carries timeout_ms, STATUS the missing ranks. 3: libsodium handshake (the root
 * proves last), frame MACs, public group ids. */
#define MNNVL_WIRE_VERSION 3
#define MNNVL_WIRE_HEADER_BYTES 16

#define MNNVL_WIRE_NONCE_BYTES 32
#define MNNVL_WIRE_PROOF_BYTES 32
#define MNNVL_WIRE_MAC_BYTES 16
#define MNNVL_WIRE_MAX_LABEL 128
#define MNNVL_WIRE_MAX_TEXT 512
/* Largest payload before authentication: unauthenticated peers cannot make the root
 * allocate more than this. */
#define MNNVL_WIRE_MAX_AUTH_PAYLOAD 64
/* Largest result of one collective (size*bytes): the root holds it in memory. */
#define MNNVL_WIRE_MAX_RESULT (1ull << 30)
/* Largest group the root accepts. */
#define MNNVL_WIRE_MAX_RANKS (1 << 20)

/* The longest timeout_ms a HELLO may announce (24 h). */
#define MNNVL_WIRE_MAX_TIMEOUT_MS (24 * 3600 * 1000)

#define MNNVL_WIRE_HELLO_FIXED 20
#define MNNVL_WIRE_COLL_FIXED 16
#define MNNVL_WIRE_ERROR_FIXED 8
#define MNNVL_WIRE_STATUS_BYTES 16

enum mnnvl_wire_type {
    MNNVL_WIRE_CHALLENGE = 1,
    MNNVL_WIRE_PROOF = 2,
    MNNVL_WIRE_HELLO = 3,
    MNNVL_WIRE_FORMED = 4,
    MNNVL_WIRE_COLL = 5,
    MNNVL_WIRE_RESULT = 6,
    MNNVL_WIRE_ERROR = 7,
    MNNVL_WIRE_QUERY = 8,
    MNNVL_WIRE_STATUS = 9,
    MNNVL_WIRE_ABORT = 10,
    MNNVL_WIRE_BYE = 11
};

enum mnnvl_wire_op { MNNVL_WIRE_OP_ALLGATHER = 1, MNNVL_WIRE_OP_BROADCAST = 2 };

enum mnnvl_wire_phase { MNNVL_WIRE_PHASE_FORMING = 0, MNNVL_WIRE_PHASE_COLLECTIVE = 1 };

static inline void mnnvl_wire_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mnnvl_wire_put32(uint8_t *p, uint32_t v)
{
    mnnvl_wire_put16(p, (uint16_t)(v >> 16));
    mnnvl_wire_put16(p + 2, (uint16_t)v);
}

static inline void mnnvl_wire_put64(uint8_t *p, uint64_t v)
{
    mnnvl_wire_put32(p, (uint32_t)(v >> 32));
    mnnvl_wire_put32(p + 4, (uint32_t)v);
}

static inline uint16_t mnnvl_wire_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t mnnvl_wire_get32(const uint8_t *p)
{
    return ((uint32_t)mnnvl_wire_get16(p) << 16) | mnnvl_wire_get16(p + 2);
}

static inline uint64_t mnnvl_wire_get64(const uint8_t *p)
{
    return ((uint64_t)mnnvl_wire_get32(p) << 32) | mnnvl_wire_get32(p + 4);
}

static inline void mnnvl_wire_header(uint8_t out[MNNVL_WIRE_HEADER_BYTES], uint16_t type,
                                     uint64_t length)
{
    mnnvl_wire_put32(out, MNNVL_WIRE_MAGIC);
    mnnvl_wire_put16(out + 4, MNNVL_WIRE_VERSION);
    mnnvl_wire_put16(out + 6, type);
    mnnvl_wire_put64(out + 8, length);
}

/* Returns 0 and the type and length of a valid header, -1 for a wrong magic or version. */
static inline int mnnvl_wire_parse_header(const uint8_t in[MNNVL_WIRE_HEADER_BYTES], uint16_t *type,
                                          uint64_t *length)
{
    if (mnnvl_wire_get32(in) != MNNVL_WIRE_MAGIC || mnnvl_wire_get16(in + 4) != MNNVL_WIRE_VERSION)
        return -1;
    *type = mnnvl_wire_get16(in + 6);
    *length = mnnvl_wire_get64(in + 8);
    return 0;
}

#endif
