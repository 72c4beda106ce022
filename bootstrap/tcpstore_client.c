/* The TCPStore wire client of tcpstore_client.h. */
#include "tcpstore_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "tcpstore_wire.h"

void mnnvl_tcpstore_init(mnnvl_tcpstore_conn_t *c, const char *address, int modern,
                         const atomic_int *abort_flag)
{
    c->fd = -1;
    c->modern = modern;
    c->abort_flag = abort_flag;
    snprintf(c->address, sizeof(c->address), "%s", address);
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void put(mnnvl_tcpstore_req_t *b, const void *p, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u64(mnnvl_tcpstore_req_t *b, uint64_t v)
{
    put(b, &v, sizeof(v)); /* the protocol uses native byte order */
}

static void put_cmd(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, uint8_t cmd)
{
    if (!c->modern && cmd >= MNNVL_TCPSTORE_SET && cmd <= MNNVL_TCPSTORE_GETNUMKEYS)
        cmd--;
    put(b, &cmd, 1);
}

static void put_bytes(mnnvl_tcpstore_req_t *b, const void *p, size_t n)
{
    put_u64(b, n);
    put(b, p, n);
}

static void put_key(mnnvl_tcpstore_req_t *b, const char *key)
{
    put_bytes(b, key, strlen(key));
}

static void req_key(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, uint8_t cmd,
                    const char *key)
{
    put_cmd(c, b, cmd);
    put_key(b, key);
}

void mnnvl_tcpstore_set(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                        const void *value, size_t len)
{
    req_key(c, b, MNNVL_TCPSTORE_SET, key);
    put_bytes(b, value, len);
}

void mnnvl_tcpstore_setv(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                         const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    req_key(c, b, MNNVL_TCPSTORE_SET, key);
    put_u64(b, len);
    for (int i = 0; i < iovcnt; i++)
        put(b, iov[i].iov_base, iov[i].iov_len);
}

void mnnvl_tcpstore_compare_set(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b,
                                const char *key, const void *desired, size_t len)
{
    req_key(c, b, MNNVL_TCPSTORE_COMPARE_SET, key);
    put_u64(b, 0); /* expected "": set only when absent */
    put_bytes(b, desired, len);
}

void mnnvl_tcpstore_get(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key)
{
    req_key(c, b, MNNVL_TCPSTORE_GET, key);
}

void mnnvl_tcpstore_add(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key,
                        int64_t delta)
{
    req_key(c, b, MNNVL_TCPSTORE_ADD, key);
    put_u64(b, (uint64_t)delta);
}

void mnnvl_tcpstore_wait(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key)
{
    put_cmd(c, b, MNNVL_TCPSTORE_WAIT);
    put_u64(b, 1);
    put_key(b, key);
}

void mnnvl_tcpstore_delete(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, const char *key)
{
    req_key(c, b, MNNVL_TCPSTORE_DELETE, key);
}

void mnnvl_tcpstore_getnumkeys(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b)
{
    put_cmd(c, b, MNNVL_TCPSTORE_GETNUMKEYS);
}

void mnnvl_tcpstore_multi_get(const mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b, size_t n)
{
    put_cmd(c, b, MNNVL_TCPSTORE_MULTI_GET);
    put_u64(b, n);
}

void mnnvl_tcpstore_multi_get_key(mnnvl_tcpstore_req_t *b, const char *key)
{
    put_key(b, key);
}

mnnvl_status_t mnnvl_tcpstore_flush(mnnvl_tcpstore_conn_t *c, mnnvl_tcpstore_req_t *b,
                                    uint64_t deadline)
{
    if (b->failed) {
        b->failed = 0;
        b->len = 0;
        return mnnvl_error(MNNVL_ERR_NO_MEMORY,
                           "out of memory building requests to the store "
                           "at %s",
                           c->address);
    }
    mnnvl_status_t s = mnnvl_sock_send_all(c->fd, b->data, b->len, deadline, c->abort_flag);
    b->len = 0;
    return s;
}

void mnnvl_tcpstore_req_free(mnnvl_tcpstore_req_t *b)
{
    free(b->data);
    *b = (mnnvl_tcpstore_req_t){0};
}

/* ---------------------------------------------------------------------------------------- */
/* Replies                                                                                  */
/* ---------------------------------------------------------------------------------------- */

mnnvl_status_t mnnvl_tcpstore_read_u64(mnnvl_tcpstore_conn_t *c, uint64_t *v, uint64_t deadline)
{
    return mnnvl_sock_recv_all(c->fd, v, sizeof(*v), deadline, c->abort_flag);
}

mnnvl_status_t mnnvl_tcpstore_read_stop(mnnvl_tcpstore_conn_t *c, uint64_t deadline)
{
    uint8_t stop;
    return mnnvl_sock_recv_all(c->fd, &stop, 1, deadline, c->abort_flag);
}

mnnvl_status_t mnnvl_tcpstore_read_len(mnnvl_tcpstore_conn_t *c, const char *what, size_t limit,
                                       size_t *len, uint64_t deadline)
{
    uint64_t n;
    MNNVL_CHECK(mnnvl_tcpstore_read_u64(c, &n, deadline));
    if (n > limit)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the store at %s returned a value of %llu bytes for %s, where at "
                           "most %zu belong",
                           c->address, (unsigned long long)n, what, limit);
    *len = (size_t)n;
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_tcpstore_recv(mnnvl_tcpstore_conn_t *c, void *buf, size_t len,
                                   uint64_t deadline)
{
    return mnnvl_sock_recv_all(c->fd, buf, len, deadline, c->abort_flag);
}

mnnvl_status_t mnnvl_tcpstore_read_value(mnnvl_tcpstore_conn_t *c, const char *what, void *buf,
                                         size_t cap, size_t *len, uint64_t deadline)
{
    MNNVL_CHECK(mnnvl_tcpstore_read_len(c, what, cap, len, deadline));
    return mnnvl_tcpstore_recv(c, buf, *len, deadline);
}

/* ---------------------------------------------------------------------------------------- */
/* Connection and server generation                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Sends VALIDATE + PING. The nonce's third byte is 0xff so that a torch 1.13 server, which
 * reads these bytes as a SET with an 8-byte key length, sees a length over 2^56 that it
 * cannot allocate and drops the connection at once instead of waiting for the key. */
static mnnvl_status_t send_handshake(mnnvl_tcpstore_conn_t *c, uint32_t nonce, uint64_t deadline)
{
    uint8_t msg[10];
    uint32_t magic = MNNVL_TCPSTORE_VALIDATE_MAGIC;
    msg[0] = MNNVL_TCPSTORE_VALIDATE;
    memcpy(msg + 1, &magic, 4);
    msg[5] = MNNVL_TCPSTORE_PING;
    memcpy(msg + 6, &nonce, 4);
    return mnnvl_sock_send_all(c->fd, msg, sizeof(msg), deadline, c->abort_flag);
}

mnnvl_status_t mnnvl_tcpstore_connect(mnnvl_tcpstore_conn_t *c, uint64_t deadline)
{
    MNNVL_CHECK(mnnvl_sock_connect(c->address, deadline, c->abort_flag, &c->fd));
    if (!c->modern)
        return MNNVL_SUCCESS;
    uint32_t magic = MNNVL_TCPSTORE_VALIDATE_MAGIC;
    uint8_t msg[5] = {MNNVL_TCPSTORE_VALIDATE};
    memcpy(msg + 1, &magic, 4);
    return mnnvl_sock_send_all(c->fd, msg, sizeof(msg), deadline, c->abort_flag);
}

void mnnvl_tcpstore_close(mnnvl_tcpstore_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Sends GETNUMKEYS and reads its 8-byte answer: a request every generation knows. */
static mnnvl_status_t probe_getnumkeys(mnnvl_tcpstore_conn_t *c, uint64_t deadline)
{
    mnnvl_tcpstore_req_t b = {0};
    mnnvl_tcpstore_getnumkeys(c, &b);
    mnnvl_status_t s = mnnvl_tcpstore_flush(c, &b, deadline);
    mnnvl_tcpstore_req_free(&b);
    uint64_t nkeys;
    return s == MNNVL_SUCCESS ? mnnvl_tcpstore_read_u64(c, &nkeys, deadline) : s;
}

/* Three probes, newest first: VALIDATE+PING (torch >= 2.4, both servers); then, after a
 * reset, the 1.13 numbering without VALIDATE (torch 1.13 and 2.0); then VALIDATE without
 * PING (torch 2.1-2.3, whose legacy server resets on the unknown PING). A libuv server
 * ignores what it does not understand instead of resetting, but it always knows PING. */
mnnvl_status_t mnnvl_tcpstore_detect(mnnvl_tcpstore_conn_t *c, uint64_t deadline)
{
    uint32_t nonce = ((uint32_t)getpid() & 0xff00ffffu) | 0x00ff0000u;
    uint32_t echo = 0;
    mnnvl_status_t s = mnnvl_sock_connect(c->address, deadline, c->abort_flag, &c->fd);
    if (s == MNNVL_SUCCESS)
        s = send_handshake(c, nonce, deadline);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_sock_recv_all(c->fd, &echo, sizeof(echo), deadline, c->abort_flag);
    if (s == MNNVL_SUCCESS && echo == nonce) {
        c->modern = 1;
        return MNNVL_SUCCESS;
    }
    if (s == MNNVL_SUCCESS)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the server at %s answered PING with 0x%08x instead of 0x%08x: not "
                           "a TCPStore",
                           c->address, echo, nonce);
    if (s != MNNVL_ERR_PEER_LOST)
        return mnnvl_error_wrap(s,
                                "the server at %s answered neither the torch 2.x handshake "
                                "nor reset it as torch 1.13 does",
                                c->address);
    for (int modern = 0; modern <= 1; modern++) {
        mnnvl_tcpstore_close(c);
        c->modern = modern;
        s = mnnvl_tcpstore_connect(c, deadline);
        if (s == MNNVL_SUCCESS)
            s = probe_getnumkeys(c, deadline);
        if (s != MNNVL_ERR_PEER_LOST)
            break;
    }
    if (s != MNNVL_SUCCESS)
        return mnnvl_error_wrap(s,
                                "the server at %s reset the torch 2.x handshake and did not "
                                "answer GETNUMKEYS with or without VALIDATE",
                                c->address);
    MNNVL_DEBUG("torch-store bootstrap: %s speaks the torch %s protocol", c->address,
                c->modern ? "2.1-2.3" : "1.13/2.0");
    return MNNVL_SUCCESS;
}
