/* A client of the PyTorch c10d TCPStore wire protocol: one connection, pipelined requests
 * built in a buffer and sent with one write, replies read in order. It knows the commands
 * and their encoding, not what the keys mean (that is bootstrap/torch_store.c).
 *
 * Wire: native-endian u64 integers; strings and values are a u64 length then the bytes.
 * Protocol generations: torch 2.x servers (legacy and libuv) expect VALIDATE first and
 * answer PING; torch 1.13 has neither and numbers its commands one lower.
 * mnnvl_tcpstore_detect finds out which one a server speaks.
 *
 * Trust: a store is unauthenticated, so every length a reply carries is checked against a
 * bound the caller gives before anything is received into memory.
 *
 * Statuses: those of sock.h's helpers (TIMEOUT, ABORTED, PEER_LOST, BOOTSTRAP), NO_MEMORY
 * for a request buffer that cannot grow, and BOOTSTRAP naming the value's length and the
 * bound for a reply over it.
 */
#ifndef MNNVL_TCPSTORE_CLIENT_H
#define MNNVL_TCPSTORE_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mnnvl.h"
#include "sock.h"

/* The libuv server resets a connection that sends a larger value (torch 2.x). */
#define MNNVL_TCPSTORE_MAX_VALUE ((size_t)8 << 20)

/* One connection to a store. `abort_flag` (may be NULL) makes a blocked call return
 * ABORTED; the owner sets it from another thread and shuts the socket down. */
typedef struct mnnvl_tcpstore_conn {
    int fd;     /* -1: not connected */
    int modern; /* the torch 2.x protocol */
    const atomic_int *abort_flag;
    char address[MNNVL_SOCK_ADDR_MAX];
} mnnvl_tcpstore_conn_t;

/* Requests waiting to be sent; {0} is an empty one. After a failed allocation it keeps
 * failing until mnnvl_tcpstore_flush reports NO_MEMORY. */
typedef struct mnnvl_tcpstore_req {
    uint8_t *data;
    size_t len, cap;
    int failed;
} mnnvl_tcpstore_req_t;

/* Sets up an unconnected conn for `address` ("host:port", shorter than MNNVL_SOCK_ADDR_MAX). */
void mnnvl_tcpstore_init(mnnvl_tcpstore_conn_t *c, const char *address, int modern,
                         const atomic_int *abort_flag);

/* Connects (with retries until `deadline`) and, on torch 2.x, sends VALIDATE. */
mnnvl_status_t mnnvl_tcpstore_connect(mnnvl_tcpstore_conn_t *c, uint64_t deadline);

/* Connects and finds the server's protocol generation (sets c->modern). BOOTSTRAP with a
 * sentence when the server at the address is not a TCPStore of a generation we know. */
mnnvl_status_t mnnvl_tcpstore_detect(mnnvl_tcpstore_conn_t *c, uint64_t deadline);

/* Closes the connection (a no-op when not connected). */
void mnnvl_tcpstore_close(mnnvl_tcpstore_conn_t *c);

/* Requests, queued in `b`. The replies, in order: SET none; COMPARE_SET the value now
 * stored (a value); GET a value; ADD the new count (u64); WAIT one byte once the key exists;
 * DELETE a u64; GETNUMKEYS a u64; MULTI_GET one value per key. COMPARE_SET here sets only
 * when the key is absent. */
void mnnvl_tcpstore_set(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                        const void *value, size_t len);
/* SET of a value given in pieces (their concatenation is the value). */
void mnnvl_tcpstore_setv(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                         const struct iovec *iov, int iovcnt);
void mnnvl_tcpstore_compare_set(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b,
                                const char *key, const void *desired, size_t len);
void mnnvl_tcpstore_get(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key);
void mnnvl_tcpstore_add(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                        int64_t delta);
void mnnvl_tcpstore_wait(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key);
void mnnvl_tcpstore_delete(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b,
                           const char *key);
void mnnvl_tcpstore_getnumkeys(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b);
/* MULTI_GET (torch 2.x only): the command and its count, then `n` keys. */
void mnnvl_tcpstore_multi_get(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, size_t n);
void mnnvl_tcpstore_multi_get_key(mnnvl_tcpstore_req_t *b, const char *key);

/* Sends what `b` holds and empties it (it keeps its memory). */
mnnvl_status_t mnnvl_tcpstore_flush(mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b,
                                    uint64_t deadline);
void mnnvl_tcpstore_req_free(mnnvl_tcpstore_req_t *b);

/* Replies. read_u64: ADD, DELETE, GETNUMKEYS. read_stop: WAIT's byte. read_len: the length
 * of a value reply, refused (BOOTSTRAP naming `what`, the length and `limit`) over `limit`;
 * recv then reads that many bytes. read_value: a value of at most `cap` bytes into buf. */
mnnvl_status_t mnnvl_tcpstore_read_u64(mnnvl_tcpstore_conn_t *c, uint64_t *v, uint64_t deadline);
mnnvl_status_t mnnvl_tcpstore_read_stop(mnnvl_tcpstore_conn_t *c, uint64_t deadline);
mnnvl_status_t mnnvl_tcpstore_read_len(mnnvl_tcpstore_conn_t *c, const char *what, size_t limit,
                                       size_t *len, uint64_t deadline);
mnnvl_status_t mnnvl_tcpstore_recv(mnnvl_tcpstore_conn_t *c, void *buf, size_t len,
                                   uint64_t deadline);
mnnvl_status_t mnnvl_tcpstore_read_value(mnnvl_tcpstore_conn_t *c, const char *what, void *buf,
                                         size_t cap, size_t *len, uint64_t deadline);

#endif
