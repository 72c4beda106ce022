/* The torch-store bootstrap: ranks meet in a PyTorch c10d TCPStore that the application
 * already runs, speaking its wire protocol directly (no torch dependency).
 *
 * One file of ~950 lines: the wire client, the round protocol and the failure marks share
 * one state and one set of key names; split apart they would need a private header.
 *
 * Config keys: store (host:port, required), store_prefix (default "mnnvl").
 *
 * Protocol generations: torch 2.x servers (legacy and libuv) expect VALIDATE first and
 * answer PING; torch 1.13 has neither and numbers its commands one lower. A new
 * connection sends VALIDATE+PING: an echo means 2.x; a reset means 1.13, and the
 * connection is made again without them (see detect_generation).
 *
 * Keys: like torch's own client we prefix every key with "/", so Python code sees ours as
 * "<store_prefix>/..." and never collides with them, nor with torch's raw "init/" key. A
 * communicator lives under "/<prefix>/<comm_name>/n<size>/g<gen>", where gen comes from
 * an ADD on ".../n<size>/joins": creation ends with a barrier, so all joins of one
 * generation happen before any join of the next and every rank computes the same gen.
 * (Creation is two rounds, so that a rank failing the first one fails everybody's create.)
 * Children (split, shrink) live under their parent: ".../g<gen>/s<child>t<tag>". Only the
 * joins counter (one small key per name and size) outlives the communicators.
 *
 * A collective is a numbered round s: each writer SETs its blob (a 16-byte header, then the
 * data, split into values of at most MAX_VALUE bytes, the libuv server's limit), then ADDs
 * 1 to "<s>/cnt"; the rank that brings it to size writes "ok" into "<s>/done" and everybody
 * else WAITs for that key, then reads the blobs. The last arriver of round s also deletes
 * round s-1's keys: its arrival proves everybody finished reading them. The last rank to
 * leave (an ADD on "left") deletes the final round's keys.
 *
 * Peer loss: the store cannot tell us that a rank died (a dead client just disconnects).
 * Two things bound it instead: every wait has timeout_ms; and a rank that aborts or gives up
 * on a timeout marks the rounds its peers may be waiting in as aborted, by writing
 * "abort:<reason>" into their "done" keys (COMPARE_SET, so that it never overwrites an
 * outcome already decided). Peers then fail at once with PEER_LOST. A rank killed outright
 * (SIGKILL) writes nothing: its peers fail with TIMEOUT after timeout_ms, and then mark the
 * round aborted for the others. Any other failure inside a round (a read the store failed
 * or garbled) marks the rounds too, so that one rank's failure is every rank's.
 *
 * Trust: the store is unauthenticated, so every length it returns is checked against what
 * the reader expects before anything is written. A chunk of the wrong length is BOOTSTRAP
 * naming the key, the expected and the received length (a peer that passed another byte
 * count shows in its header instead: MISMATCH, alike on every rank).
 */
#include "bootstrap.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "error.h"
#include "log.h"
#include "sock.h"

/* The libuv server resets a connection that sends a larger value (torch 2.x). */
#define MAX_VALUE ((size_t)8 << 20)
/* Keys must stay far below the libuv server's 8192-byte limit. */
#define KEY_MAX 1024
#define BASE_MAX 800
/* Pipelined requests per batch: small enough that requests never fill the socket buffer
 * while the server waits for us to read its replies. */
#define BATCH 64
/* An abort or a timeout publishes its mark within this long. */
#define MARK_TIMEOUT_MS 2000

#define VALIDATE_MAGIC 0x3C85F7CEu
#define HEADER_BYTES 16
#define HEADER_MAGIC 0x53544e4du /* "MNTS" */
#define OK_MARK "ok"
#define ABORT_MARK "abort:"

/* Commands, in torch 2.x numbering; torch 1.13 numbers SET..GETNUMKEYS one lower. */
enum { CMD_VALIDATE = 0, CMD_SET = 1, CMD_COMPARE_SET = 2, CMD_GET = 3, CMD_ADD = 4,
       CMD_WAIT = 6, CMD_GETNUMKEYS = 7, CMD_DELETE = 8, CMD_MULTI_GET = 10, CMD_PING = 13 };

enum { OP_ALLGATHER = 1, OP_BROADCAST = 2 };

typedef struct ts_state {
    int fd;
    int modern; /* torch 2.x protocol */
    atomic_int aborted;
    atomic_uint seq; /* the next round; read by abort() on another thread */
    mnnvl_status_t broken;
    char broken_msg[512];
    int rank;
    int size;
    int timeout_ms;
    uint32_t splits;
    /* Keys of the last completed round, deleted by the next round's last arriver. */
    int prev_valid;
    unsigned prev_seq;
    int prev_first_writer, prev_writers;
    size_t prev_chunks;
    size_t max_value;
    char address[MNNVL_SOCK_ADDR_MAX];
    char base[BASE_MAX];
    char label[BASE_MAX + MNNVL_SOCK_ADDR_MAX + 64];
} ts_state_t;

typedef struct ts_bootstrap {
    mnnvl_bootstrap_t bs;
    ts_state_t st;
} ts_bootstrap_t;

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* A growing buffer of requests, sent with one write. */
typedef struct reqbuf {
    uint8_t *data;
    size_t len, cap;
    int failed;
} reqbuf_t;

static void put(reqbuf_t *b, const void *p, size_t n)
{
    if (b->failed)
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

static void put_u64(reqbuf_t *b, uint64_t v)
{
    put(b, &v, sizeof(v)); /* the protocol uses native byte order */
}

static void put_cmd(const ts_state_t *st, reqbuf_t *b, uint8_t cmd)
{
    if (!st->modern && cmd >= CMD_SET && cmd <= CMD_GETNUMKEYS)
        cmd--;
    put(b, &cmd, 1);
}

static void put_key(reqbuf_t *b, const char *key)
{
    put_u64(b, strlen(key));
    put(b, key, strlen(key));
}

static void req_key(const ts_state_t *st, reqbuf_t *b, uint8_t cmd, const char *key)
{
    put_cmd(st, b, cmd);
    put_key(b, key);
}

/* torch 1.13 wakes WAITers on SET only, not on COMPARE_SET: a value decided by COMPARE_SET
 * is SET again (to itself) for them. */
static void req_set(const ts_state_t *st, reqbuf_t *b, const char *key, const void *v, size_t n)
{
    req_key(st, b, CMD_SET, key);
    put_u64(b, n);
    put(b, v, n);
}

static void req_add(const ts_state_t *st, reqbuf_t *b, const char *key, int64_t delta)
{
    req_key(st, b, CMD_ADD, key);
    put_u64(b, (uint64_t)delta);
}

static void req_compare_set(const ts_state_t *st, reqbuf_t *b, const char *key,
                            const char *desired)
{
    req_key(st, b, CMD_COMPARE_SET, key);
    put_u64(b, 0); /* expected "": set only when absent */
    put_u64(b, strlen(desired));
    put(b, desired, strlen(desired));
}

static void req_wait(const ts_state_t *st, reqbuf_t *b, const char *key)
{
    put_cmd(st, b, CMD_WAIT);
    put_u64(b, 1);
    put_key(b, key);
}

/* Sends the buffer and empties it. */
static mnnvl_status_t flush(ts_state_t *st, reqbuf_t *b, uint64_t deadline)
{
    if (b->failed)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "out of memory building %zu bytes of requests",
                           b->len);
    mnnvl_status_t s = mnnvl_sock_send_all(st->fd, b->data, b->len, deadline, &st->aborted);
    b->len = 0;
    return s;
}

static mnnvl_status_t read_u64(ts_state_t *st, uint64_t *v, uint64_t deadline)
{
    return mnnvl_sock_recv_all(st->fd, v, sizeof(*v), deadline, &st->aborted);
}

/* Reads one "bytes" reply of at most `cap` bytes into buf; *len receives its length. */
static mnnvl_status_t read_value(ts_state_t *st, void *buf, size_t cap, size_t *len,
                                 uint64_t deadline)
{
    uint64_t n;
    MNNVL_CHECK(read_u64(st, &n, deadline));
    if (n > cap)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the store sent a value of %llu bytes where at most %zu were "
                           "expected",
                           (unsigned long long)n, cap);
    *len = (size_t)n;
    return mnnvl_sock_recv_all(st->fd, buf, (size_t)n, deadline, &st->aborted);
}

/* ---------------------------------------------------------------------------------------- */
/* Connection and server generation                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Sends VALIDATE + PING. The nonce's third byte is 0xff so that a torch 1.13 server, which
 * reads these bytes as a SET with an 8-byte key length, sees a length over 2^56 that it
 * cannot allocate and drops the connection at once instead of waiting for the key. */
static mnnvl_status_t send_handshake(ts_state_t *st, uint32_t nonce, uint64_t deadline)
{
    uint8_t msg[10];
    uint32_t magic = VALIDATE_MAGIC;
    msg[0] = CMD_VALIDATE;
    memcpy(msg + 1, &magic, 4);
    msg[5] = CMD_PING;
    memcpy(msg + 6, &nonce, 4);
    return mnnvl_sock_send_all(st->fd, msg, sizeof(msg), deadline, &st->aborted);
}

static mnnvl_status_t connect_store(ts_state_t *st, uint64_t deadline)
{
    MNNVL_CHECK(mnnvl_sock_connect(st->address, deadline, &st->aborted, &st->fd));
    if (!st->modern)
        return MNNVL_SUCCESS;
    uint32_t magic = VALIDATE_MAGIC;
    uint8_t msg[5] = {CMD_VALIDATE};
    memcpy(msg + 1, &magic, 4);
    return mnnvl_sock_send_all(st->fd, msg, sizeof(msg), deadline, &st->aborted);
}

static void close_fd(ts_state_t *st)
{
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
}

/* Sends GETNUMKEYS and reads its 8-byte answer: a request every generation knows. */
static mnnvl_status_t probe_getnumkeys(ts_state_t *st, uint64_t deadline)
{
    reqbuf_t b = {0};
    put_cmd(st, &b, CMD_GETNUMKEYS);
    mnnvl_status_t s = flush(st, &b, deadline);
    free(b.data);
    uint64_t nkeys;
    return s == MNNVL_SUCCESS ? read_u64(st, &nkeys, deadline) : s;
}

/* Three probes, newest first: VALIDATE+PING (torch >= 2.4, both servers); then, after a
 * reset, the 1.13 numbering without VALIDATE (torch 1.13 and 2.0); then VALIDATE without
 * PING (torch 2.1-2.3, whose legacy server resets on the unknown PING). A libuv server
 * ignores what it does not understand instead of resetting, but it always knows PING. */
static mnnvl_status_t detect_generation(ts_state_t *st, uint64_t deadline)
{
    uint32_t nonce = ((uint32_t)getpid() & 0xff00ffffu) | 0x00ff0000u;
    uint32_t echo = 0;
    mnnvl_status_t s = mnnvl_sock_connect(st->address, deadline, &st->aborted, &st->fd);
    if (s == MNNVL_SUCCESS)
        s = send_handshake(st, nonce, deadline);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_sock_recv_all(st->fd, &echo, sizeof(echo), deadline, &st->aborted);
    if (s == MNNVL_SUCCESS && echo == nonce) {
        st->modern = 1;
        return MNNVL_SUCCESS;
    }
    if (s == MNNVL_SUCCESS)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the server at %s answered PING with 0x%08x instead of 0x%08x: not "
                           "a TCPStore",
                           st->address, echo, nonce);
    if (s != MNNVL_ERR_PEER_LOST)
        return mnnvl_error_wrap(s, "the server at %s answered neither the torch 2.x handshake "
                                   "nor reset it as torch 1.13 does",
                                st->address);
    for (int modern = 0; modern <= 1; modern++) {
        close_fd(st);
        st->modern = modern;
        s = connect_store(st, deadline);
        if (s == MNNVL_SUCCESS)
            s = probe_getnumkeys(st, deadline);
        if (s != MNNVL_ERR_PEER_LOST)
            break;
    }
    if (s != MNNVL_SUCCESS)
        return mnnvl_error_wrap(s, "the server at %s reset the torch 2.x handshake and did not "
                                   "answer GETNUMKEYS with or without VALIDATE",
                                st->address);
    MNNVL_DEBUG("torch-store bootstrap: %s speaks the torch %s protocol", st->address,
                st->modern ? "2.1-2.3" : "1.13/2.0");
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Failure marks                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void round_key(const ts_state_t *st, char *key, unsigned seq, const char *what)
{
    snprintf(key, KEY_MAX, "%s/%u/%s", st->base, seq, what);
}

static void chunk_key(const ts_state_t *st, char *key, unsigned seq, int rank, size_t chunk)
{
    snprintf(key, KEY_MAX, "%s/%u/%d.%zu", st->base, seq, rank, chunk);
}

/* Writes "abort:<reason>" into the done keys of the rounds a peer may be waiting in (the one
 * before `seq`, in case this rank is still inside it, `seq` and the one after), over a
 * connection of its own: the main one may be in use by another thread, or out of step.
 * When `arrived` is not NULL, also reads how many ranks reached round `seq` into it (-1 when
 * unknown). Best effort, bounded by MARK_TIMEOUT_MS. */
static void publish_abort(const ts_state_t *st, unsigned seq, const char *reason,
                          int *arrived)
{
    ts_state_t aux = {.fd = -1, .modern = st->modern};
    atomic_init(&aux.aborted, 0);
    memcpy(aux.address, st->address, sizeof(aux.address));
    memcpy(aux.base, st->base, sizeof(aux.base));
    int timeout = st->timeout_ms < MARK_TIMEOUT_MS ? st->timeout_ms : MARK_TIMEOUT_MS;
    uint64_t deadline = mnnvl_deadline_after(timeout);
    char mark[600];
    snprintf(mark, sizeof(mark), ABORT_MARK "rank %d %s", st->rank, reason);
    char key[KEY_MAX];
    reqbuf_t b = {0};
    int replies = 0;
    for (unsigned r = seq ? seq - 1 : 0; r <= seq + 1; r++, replies++) {
        round_key(&aux, key, r, "done");
        req_compare_set(&aux, &b, key, mark);
    }
    if (arrived) {
        round_key(&aux, key, seq, "cnt");
        req_add(&aux, &b, key, 0);
        *arrived = -1;
    }
    mnnvl_status_t s = connect_store(&aux, deadline);
    if (s == MNNVL_SUCCESS)
        s = flush(&aux, &b, deadline);
    unsigned won = 0; /* bit i: the mark went into round seq-1+i */
    for (int i = 0; s == MNNVL_SUCCESS && i < replies; i++) {
        char value[sizeof(mark)];
        size_t len;
        s = read_value(&aux, value, sizeof(value), &len, deadline);
        if (s == MNNVL_SUCCESS && len == strlen(mark) && memcmp(value, mark, len) == 0)
            won |= 1u << i;
    }
    uint64_t count;
    if (s == MNNVL_SUCCESS && arrived && read_u64(&aux, &count, deadline) == MNNVL_SUCCESS)
        *arrived = (int)count;
    for (int i = 0; s == MNNVL_SUCCESS && i < replies; i++) {
        if (won & (1u << i)) {
            round_key(&aux, key, (seq ? seq - 1 : 0) + (unsigned)i, "done");
            req_set(&aux, &b, key, mark, strlen(mark));
        }
    }
    if (s == MNNVL_SUCCESS && b.len)
        s = flush(&aux, &b, deadline);
    if (s != MNNVL_SUCCESS)
        MNNVL_DEBUG("torch-store bootstrap: rank %d could not mark %s aborted: %s", st->rank,
                    st->label, mnnvl_last_error());
    close_fd(&aux);
    free(b.data);
}

static mnnvl_status_t check_usable(const ts_state_t *st, const char *what)
{
    if (atomic_load(&st->aborted))
        return mnnvl_error(MNNVL_ERR_ABORTED,
                           "torch-store bootstrap: %s on rank %d of %s: the communicator was "
                           "aborted",
                           what, st->rank, st->label);
    if (st->broken)
        return mnnvl_error(st->broken,
                           "torch-store bootstrap: %s on rank %d of %s: an earlier failure left "
                           "the communicator unusable: %s",
                           what, st->rank, st->label, st->broken_msg);
    return MNNVL_SUCCESS;
}

/* Turns a failure inside round `seq` into its final status and sentence, and leaves the
 * communicator unusable (its connection is out of step). A timeout marks the round aborted
 * so that the other ranks stop waiting too. */
static mnnvl_status_t fail_round(ts_state_t *st, mnnvl_status_t s, unsigned seq, const char *what,
                                 uint64_t started)
{
    if (atomic_load(&st->aborted) || s == MNNVL_ERR_ABORTED) {
        s = mnnvl_error(MNNVL_ERR_ABORTED,
                        "torch-store bootstrap: %s on rank %d of %s was interrupted: the "
                        "communicator was aborted",
                        what, st->rank, st->label);
    } else if (s == MNNVL_ERR_TIMEOUT) {
        int waited = (int)(mnnvl_now_ms() - started);
        char reason[160];
        snprintf(reason, sizeof(reason), "gave up: %s timed out after %d ms", what, waited);
        int arrived = -1;
        publish_abort(st, seq, reason, &arrived);
        char count[64] = "";
        if (arrived >= 0)
            snprintf(count, sizeof(count), "%d of %d ranks arrived; ", arrived, st->size);
        s = mnnvl_error(MNNVL_ERR_TIMEOUT,
                        "torch-store bootstrap: %s on rank %d of %s timed out after %d ms "
                        "(timeout_ms %d): %sa rank that died cannot be seen through a TCPStore, "
                        "it shows up as this timeout",
                        what, st->rank, st->label, waited, st->timeout_ms, count);
    } else {
        s = mnnvl_error_wrap(s, "torch-store bootstrap: %s on rank %d of %s (store %s)", what,
                             st->rank, st->label, st->address);
        /* The round may already be decided "ok" for the others (this rank's read failed
         * after the last arrival): the mark then lands in the next round, which every peer
         * fails with PEER_LOST instead of carrying on with a rank that is gone. */
        char reason[160];
        snprintf(reason, sizeof(reason), "gave up: %s failed with %s", what,
                 mnnvl_status_string(s));
        char sentence[512];
        snprintf(sentence, sizeof(sentence), "%s", mnnvl_last_error());
        publish_abort(st, seq, reason, NULL);
        s = mnnvl_error(s, "%s", sentence);
    }
    st->broken = s;
    snprintf(st->broken_msg, sizeof(st->broken_msg), "%s", mnnvl_last_error());
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Rounds                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* One round's shape: which ranks write a blob, and how. */
typedef struct round {
    unsigned seq;
    uint32_t op;
    int first_writer, writers; /* ranks [first, first+writers) write a blob */
    const void *data;          /* this rank's data when it writes */
    size_t bytes;              /* per-writer data bytes */
    void *out;                 /* writer w's data lands at out + (w - first) * bytes */
    const char *what;
} round_t;

static size_t chunks_of(const ts_state_t *st, size_t bytes)
{
    return (HEADER_BYTES + bytes + st->max_value - 1) / st->max_value;
}

/* Queues SETs of this rank's blob: the stream header+data cut into max_value pieces. */
static void queue_blob(const ts_state_t *st, reqbuf_t *b, const round_t *r)
{
    uint8_t header[HEADER_BYTES];
    uint32_t magic = HEADER_MAGIC;
    uint64_t bytes = r->bytes;
    memcpy(header, &magic, 4);
    memcpy(header + 4, &r->op, 4);
    memcpy(header + 8, &bytes, 8);
    size_t total = HEADER_BYTES + r->bytes;
    char key[KEY_MAX];
    for (size_t c = 0, off = 0; off < total; c++, off += st->max_value) {
        size_t len = total - off < st->max_value ? total - off : st->max_value;
        chunk_key(st, key, r->seq, st->rank, c);
        req_key(st, b, CMD_SET, key);
        put_u64(b, len);
        size_t from_header = off < HEADER_BYTES ? HEADER_BYTES - off : 0;
        if (from_header > len)
            from_header = len;
        put(b, header + off, from_header);
        size_t data_off = off + from_header - HEADER_BYTES;
        put(b, (const uint8_t *)r->data + data_off, len - from_header);
    }
}

/* Checks a writer's header against this rank's call; MISMATCH names both. */
static mnnvl_status_t check_header(const ts_state_t *st, const round_t *r, int writer,
                                   const uint8_t *v, size_t len)
{
    uint32_t magic = 0, op = 0;
    uint64_t bytes = 0;
    if (len >= HEADER_BYTES) {
        memcpy(&magic, v, 4);
        memcpy(&op, v + 4, 4);
        memcpy(&bytes, v + 8, 8);
    }
    if (magic != HEADER_MAGIC)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "rank %d's value in the store is not one this backend wrote (%zu "
                           "bytes); does something else write under the prefix?",
                           writer, len);
    if (op != r->op || bytes != r->bytes)
        return mnnvl_error(MNNVL_ERR_MISMATCH,
                           "rank %d called %s with %llu bytes but rank %d called %s with %zu",
                           writer, op == OP_ALLGATHER ? "allgather" : "broadcast",
                           (unsigned long long)bytes, st->rank,
                           r->op == OP_ALLGATHER ? "allgather" : "broadcast", r->bytes);
    return MNNVL_SUCCESS;
}

/* The bytes chunk c of a blob of `bytes` data bytes holds: every chunk is max_value long
 * but the last. */
static size_t chunk_len(const ts_state_t *st, size_t bytes, size_t c)
{
    size_t total = HEADER_BYTES + bytes;
    size_t off = c * st->max_value;
    return total - off < st->max_value ? total - off : st->max_value;
}

/* Reads one value reply: its length into *len and its first min(*len, cap) bytes into buf;
 * the rest is read and dropped, so that the replies after it stay in step. A length over
 * MAX_VALUE, more than any value can hold, is not drained: BOOTSTRAP naming the key. */
static mnnvl_status_t read_reply(ts_state_t *st, const char *key, uint8_t *buf, size_t cap,
                                 size_t *len, uint64_t deadline)
{
    uint64_t n;
    MNNVL_CHECK(read_u64(st, &n, deadline));
    if (n > MAX_VALUE)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "the store returned %llu bytes for key '%s', more than the %zu any "
                           "value may hold",
                           (unsigned long long)n, key, MAX_VALUE);
    *len = (size_t)n;
    size_t keep = *len < cap ? *len : cap;
    MNNVL_CHECK(mnnvl_sock_recv_all(st->fd, buf, keep, deadline, &st->aborted));
    uint8_t sink[4096];
    for (size_t left = *len - keep; left > 0;) {
        size_t k = left < sizeof(sink) ? left : sizeof(sink);
        MNNVL_CHECK(mnnvl_sock_recv_all(st->fd, sink, k, deadline, &st->aborted));
        left -= k;
    }
    return MNNVL_SUCCESS;
}

/* Reads the writers' blobs of a completed round into r->out, in batches of pipelined GETs
 * (one MULTI_GET per batch on torch 2.x). Every chunk's length is checked against what
 * that chunk of this round holds before a byte of it is written: a writer that called with
 * another byte count shows in its header (MISMATCH, the same on every rank); any other
 * length is a store (or a stranger under the prefix) not to be trusted: BOOTSTRAP naming
 * the key and both lengths. */
static mnnvl_status_t read_blobs(ts_state_t *st, const round_t *r, uint64_t deadline)
{
    size_t nchunks = chunks_of(st, r->bytes);
    size_t total = (size_t)r->writers * nchunks;
    size_t cap = chunk_len(st, r->bytes, 0);
    uint8_t *v = malloc(cap);
    reqbuf_t b = {0};
    mnnvl_status_t s = v ? MNNVL_SUCCESS
                         : mnnvl_error(MNNVL_ERR_NO_MEMORY, "out of memory for %zu bytes", cap);
    mnnvl_status_t mismatch = MNNVL_SUCCESS;
    char key[KEY_MAX];
    /* Chunk-major order: every writer's header is read before any second chunk. */
    for (size_t first = 0; s == MNNVL_SUCCESS && first < total; first += BATCH) {
        size_t n = total - first < BATCH ? total - first : BATCH;
        if (st->modern) {
            put_cmd(st, &b, CMD_MULTI_GET);
            put_u64(&b, n);
        }
        for (size_t i = first; i < first + n; i++) {
            chunk_key(st, key, r->seq, r->first_writer + (int)(i % r->writers),
                      i / r->writers);
            if (st->modern)
                put_key(&b, key);
            else
                req_key(st, &b, CMD_GET, key);
        }
        s = flush(st, &b, deadline);
        for (size_t i = first; s == MNNVL_SUCCESS && i < first + n; i++) {
            size_t len = 0, c = i / r->writers;
            int w = (int)(i % r->writers);
            chunk_key(st, key, r->seq, r->first_writer + w, c);
            s = read_reply(st, key, v, cap, &len, deadline);
            if (s != MNNVL_SUCCESS)
                break;
            if (c == 0 && mismatch == MNNVL_SUCCESS)
                mismatch = check_header(st, r, r->first_writer + w, v, len < cap ? len : cap);
            if (mismatch != MNNVL_SUCCESS)
                continue; /* still drain the replies of this batch */
            size_t expect = chunk_len(st, r->bytes, c);
            if (len != expect) {
                s = mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                                "the store returned %zu bytes for key '%s' (rank %d's chunk %zu "
                                "of %zu) where that chunk holds %zu: nothing of it was "
                                "written; is something else writing under the prefix?",
                                len, key, r->first_writer + w, c, nchunks, expect);
                break;
            }
            size_t off = c * st->max_value;
            size_t skip = off < HEADER_BYTES ? HEADER_BYTES - off : 0;
            if (len > skip)
                memcpy((uint8_t *)r->out + (size_t)w * r->bytes + off + skip - HEADER_BYTES,
                       v + skip, len - skip);
        }
        if (mismatch != MNNVL_SUCCESS && mismatch != MNNVL_ERR_MISMATCH)
            s = mismatch;
        if (mismatch != MNNVL_SUCCESS)
            break;
    }
    free(v);
    free(b.data);
    if (s == MNNVL_SUCCESS && mismatch != MNNVL_SUCCESS)
        s = mnnvl_error(mismatch, "%s", mnnvl_last_error());
    return s;
}

/* Deletes the keys of the previous round; the caller's arrival in the next round proves that
 * everybody is done with them. */
static mnnvl_status_t delete_prev(ts_state_t *st, uint64_t deadline)
{
    if (!st->prev_valid)
        return MNNVL_SUCCESS;
    reqbuf_t b = {0};
    char key[KEY_MAX];
    round_key(st, key, st->prev_seq, "cnt");
    req_key(st, &b, CMD_DELETE, key);
    round_key(st, key, st->prev_seq, "done");
    req_key(st, &b, CMD_DELETE, key);
    size_t n = 2;
    for (int w = 0; w < st->prev_writers; w++) {
        for (size_t c = 0; c < st->prev_chunks; c++, n++) {
            chunk_key(st, key, st->prev_seq, st->prev_first_writer + w, c);
            req_key(st, &b, CMD_DELETE, key);
        }
    }
    mnnvl_status_t s = flush(st, &b, deadline);
    free(b.data);
    for (size_t i = 0; s == MNNVL_SUCCESS && i < n; i++) {
        uint64_t deleted;
        s = read_u64(st, &deleted, deadline);
    }
    st->prev_valid = 0;
    return s;
}

/* Interprets the value of "<s>/done". */
static mnnvl_status_t check_done(const ts_state_t *st, const char *v, size_t len)
{
    if (len == strlen(OK_MARK) && memcmp(v, OK_MARK, len) == 0)
        return MNNVL_SUCCESS;
    if (len >= strlen(ABORT_MARK) && memcmp(v, ABORT_MARK, strlen(ABORT_MARK)) == 0)
        return mnnvl_error(MNNVL_ERR_PEER_LOST, "the communicator was aborted by a peer: %.*s",
                           (int)(len - strlen(ABORT_MARK)), v + strlen(ABORT_MARK));
    return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "the store holds an unexpected round outcome '%.*s'",
                       (int)len, v);
}

/* Arrives in the round and waits until every rank did; the last arriver decides the
 * outcome and cleans up the previous round. */
static mnnvl_status_t arrive(ts_state_t *st, const round_t *r, uint64_t deadline)
{
    reqbuf_t b = {0};
    char key[KEY_MAX];
    if (st->rank >= r->first_writer && st->rank < r->first_writer + r->writers)
        queue_blob(st, &b, r);
    round_key(st, key, r->seq, "cnt");
    req_add(st, &b, key, 1);
    mnnvl_status_t s = flush(st, &b, deadline);
    uint64_t count = 0;
    if (s == MNNVL_SUCCESS)
        s = read_u64(st, &count, deadline);
    round_key(st, key, r->seq, "done");
    int last = s == MNNVL_SUCCESS && count == (uint64_t)st->size;
    if (last)
        req_compare_set(st, &b, key, OK_MARK);
    else if (s == MNNVL_SUCCESS)
        req_wait(st, &b, key);
    if (s == MNNVL_SUCCESS)
        s = flush(st, &b, deadline);
    if (s == MNNVL_SUCCESS && !last) {
        uint8_t stop;
        s = mnnvl_sock_recv_all(st->fd, &stop, 1, deadline, &st->aborted);
        if (s == MNNVL_SUCCESS) {
            req_key(st, &b, CMD_GET, key); /* never pipelined behind a pending WAIT */
            s = flush(st, &b, deadline);
        }
    }
    char v[600];
    size_t len = 0;
    if (s == MNNVL_SUCCESS)
        s = read_value(st, v, sizeof(v), &len, deadline);
    if (s == MNNVL_SUCCESS)
        s = check_done(st, v, len);
    if (s == MNNVL_SUCCESS && last) {
        req_set(st, &b, key, OK_MARK, strlen(OK_MARK));
        s = flush(st, &b, deadline);
    }
    free(b.data);
    if (s == MNNVL_SUCCESS && last)
        s = delete_prev(st, deadline);
    return s;
}

static mnnvl_status_t run_round(ts_state_t *st, round_t *r)
{
    MNNVL_CHECK(check_usable(st, r->what));
    uint64_t started = mnnvl_now_ms();
    uint64_t deadline = mnnvl_deadline_after(st->timeout_ms);
    r->seq = atomic_fetch_add(&st->seq, 1);
    mnnvl_status_t s = arrive(st, r, deadline);
    if (s == MNNVL_SUCCESS && r->out && r->writers > 0)
        s = read_blobs(st, r, deadline);
    if (s != MNNVL_SUCCESS && s != MNNVL_ERR_MISMATCH)
        return fail_round(st, s, r->seq, r->what, started);
    st->prev_valid = 1;
    st->prev_seq = r->seq;
    st->prev_first_writer = r->first_writer;
    st->prev_writers = r->writers;
    st->prev_chunks = r->writers > 0 ? chunks_of(st, r->bytes) : 0;
    if (s == MNNVL_ERR_MISMATCH) /* every rank read the same headers: still in step */
        return mnnvl_error_wrap(s, "torch-store bootstrap: %s on rank %d of %s", r->what,
                                st->rank, st->label);
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Collectives                                                                              */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t ts_allgather(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                   size_t bytes)
{
    ts_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "allgather of %zu bytes", bytes);
    if (bytes > 0 && (!send || !recv))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: %s: a buffer is NULL", what);
    round_t r = {.op = OP_ALLGATHER, .first_writer = 0, .writers = st->size, .data = send,
                 .bytes = bytes, .out = recv, .what = what};
    return run_round(st, &r);
}

static mnnvl_status_t ts_broadcast(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root)
{
    ts_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "broadcast of %zu bytes from rank %d", bytes, root);
    if (root < 0 || root >= st->size || (bytes > 0 && !buf))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: %s: the root is not in 0..%d or the buffer "
                           "is NULL",
                           what, st->size - 1);
    /* The root reads its own blob back too: that checks every rank's byte count alike. */
    round_t r = {.op = OP_BROADCAST, .first_writer = root, .writers = 1, .data = buf,
                 .bytes = bytes, .out = buf, .what = what};
    return run_round(st, &r);
}

static mnnvl_status_t ts_barrier(mnnvl_bootstrap_t *bs)
{
    round_t r = {.op = OP_ALLGATHER, .what = "barrier"};
    return run_round(bs->state, &r);
}

static void ts_abort(mnnvl_bootstrap_t *bs)
{
    ts_state_t *st = bs->state;
    if (atomic_exchange(&st->aborted, 1))
        return;
    if (st->fd >= 0)
        shutdown(st->fd, SHUT_RDWR); /* wakes a thread blocked on this connection */
    publish_abort(st, atomic_load(&st->seq), "aborted", NULL);
}

static void state_free(ts_bootstrap_t *tb)
{
    close_fd(&tb->st);
    free(tb);
}

/* The last rank to leave deletes what is left: the final round's keys and the rounds an
 * abort may have marked, and the leave counter itself. */
static void leave(ts_state_t *st)
{
    if (st->fd < 0 || st->broken || atomic_load(&st->aborted)) {
        MNNVL_DEBUG("torch-store bootstrap: rank %d leaves %s without cleaning up the store: "
                    "the communicator failed or was aborted",
                    st->rank, st->label);
        return;
    }
    uint64_t deadline = mnnvl_deadline_after(st->timeout_ms);
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%s/left", st->base);
    reqbuf_t b = {0};
    req_add(st, &b, key, 1);
    mnnvl_status_t s = flush(st, &b, deadline);
    uint64_t left = 0;
    if (s == MNNVL_SUCCESS)
        s = read_u64(st, &left, deadline);
    if (s == MNNVL_SUCCESS && left == (uint64_t)st->size) {
        s = delete_prev(st, deadline);
        unsigned seq = atomic_load(&st->seq);
        size_t n = 1;
        req_key(st, &b, CMD_DELETE, key);
        for (unsigned r = seq; s == MNNVL_SUCCESS && r <= seq + 1; r++, n += 2) {
            round_key(st, key, r, "cnt");
            req_key(st, &b, CMD_DELETE, key);
            round_key(st, key, r, "done");
            req_key(st, &b, CMD_DELETE, key);
        }
        if (s == MNNVL_SUCCESS)
            s = flush(st, &b, deadline);
        for (size_t i = 0; s == MNNVL_SUCCESS && i < n; i++) {
            uint64_t deleted;
            s = read_u64(st, &deleted, deadline);
        }
    }
    free(b.data);
    if (s != MNNVL_SUCCESS)
        MNNVL_DEBUG("torch-store bootstrap: rank %d could not clean up %s: %s", st->rank,
                    st->label, mnnvl_last_error());
}

static void ts_destroy(mnnvl_bootstrap_t *bs)
{
    if (!bs)
        return;
    leave(bs->state);
    state_free((ts_bootstrap_t *)bs);
}

static mnnvl_status_t ts_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                               mnnvl_bootstrap_t **out);

static const mnnvl_bootstrap_ops_t ts_ops = {
    .size = sizeof(mnnvl_bootstrap_ops_t),
    .name = "torch-store",
    .allgather = ts_allgather,
    .broadcast = ts_broadcast,
    .barrier = ts_barrier,
    .child = ts_child,
    .abort = ts_abort,
    .destroy = ts_destroy,
};

static void fill_interface(ts_bootstrap_t *tb)
{
    tb->bs.ops = &ts_ops;
    tb->bs.rank = tb->st.rank;
    tb->bs.size = tb->st.size;
    tb->bs.state = &tb->st;
}

static ts_bootstrap_t *state_new(int rank, int size, int timeout_ms)
{
    ts_bootstrap_t *tb = calloc(1, sizeof(*tb));
    if (!tb)
        return NULL;
    tb->st.fd = -1;
    atomic_init(&tb->st.aborted, 0);
    atomic_init(&tb->st.seq, 0);
    tb->st.rank = rank;
    tb->st.size = size;
    tb->st.timeout_ms = timeout_ms;
    tb->st.max_value = MAX_VALUE;
    /* For tests: a smaller limit exercises the splitting of values without 8 MiB blobs. */
    const char *limit = getenv("MNNVL_TORCH_STORE_MAX_VALUE");
    if (limit && atol(limit) > HEADER_BYTES && (size_t)atol(limit) < MAX_VALUE)
        tb->st.max_value = (size_t)atol(limit);
    return tb;
}

/* ---------------------------------------------------------------------------------------- */
/* Split                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* The child uses a connection of its own and keys under the parent's, named by the number
 * of the child and the library's tag: no key of the parent is touched, so a parent whose
 * rounds were marked aborted still builds children. */
static mnnvl_status_t ts_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                               mnnvl_bootstrap_t **out)
{
    ts_state_t *st = bs->state;
    *out = NULL;
    uint32_t counter = st->splits++;
    ts_bootstrap_t *tb = state_new(child->rank, child->size, st->timeout_ms);
    if (!tb)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "torch-store bootstrap: child: out of memory");
    ts_state_t *cs = &tb->st;
    cs->modern = st->modern;
    cs->max_value = st->max_value;
    memcpy(cs->address, st->address, sizeof(cs->address));
    int n = snprintf(cs->base, sizeof(cs->base), "%.*s/s%ut%016llx", BASE_MAX - 40, st->base,
                     counter, (unsigned long long)child->tag);
    snprintf(cs->label, sizeof(cs->label), "comm '%s' (store %s)", cs->base, cs->address);
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (n >= (int)sizeof(cs->base))
        s = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                        "torch-store bootstrap: child of %s: the key prefix would exceed %zu "
                        "bytes",
                        st->label, sizeof(cs->base));
    if (s == MNNVL_SUCCESS)
        s = connect_store(cs, mnnvl_deadline_after(st->timeout_ms));
    if (s != MNNVL_SUCCESS) {
        state_free(tb);
        return mnnvl_error_wrap(s, "torch-store bootstrap: child of %s on rank %d", st->label,
                                st->rank);
    }
    fill_interface(tb);
    *out = &tb->bs;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Create                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t check_args(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    if (!args || !out)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: args or out is NULL");
    if (args->abi_version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: caller uses bootstrap ABI %d, this backend %d",
                           args->abi_version, MNNVL_BOOTSTRAP_ABI_VERSION);
    if (args->size < 1 || args->rank < 0 || args->rank >= args->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: rank %d of size %d is invalid", args->rank,
                           args->size);
    if (!mnnvl_bootstrap_timeout_valid(args->timeout_ms))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: timeout_ms is %d; it must be positive",
                           args->timeout_ms);
    return MNNVL_SUCCESS;
}

/* Agrees on the generation through the joins counter and builds the key prefix. */
static mnnvl_status_t join(ts_state_t *st, const char *prefix, const char *name,
                           uint64_t deadline)
{
    char key[KEY_MAX];
    int n = snprintf(key, sizeof(key), "/%s%s%s/n%d/joins", prefix, prefix[0] ? "/" : "", name,
                     st->size);
    if (n >= BASE_MAX - 32)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: store_prefix '%s' and comm_name '%s' make "
                           "keys over %d bytes",
                           prefix, name, BASE_MAX - 32);
    reqbuf_t b = {0};
    req_add(st, &b, key, 1);
    mnnvl_status_t s = flush(st, &b, deadline);
    free(b.data);
    uint64_t joins = 0;
    if (s == MNNVL_SUCCESS)
        s = read_u64(st, &joins, deadline);
    if (s != MNNVL_SUCCESS)
        return s;
    uint64_t gen = (joins - 1) / (uint64_t)st->size;
    snprintf(st->base, sizeof(st->base), "%.*s/g%llu", (int)(n - strlen("/joins")), key,
             (unsigned long long)gen);
    snprintf(st->label, sizeof(st->label), "comm '%s' (store %s, torch %s protocol)", st->base,
             st->address, st->modern ? "2.x" : "1.13");
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_bootstrap_torch_store_create(const mnnvl_bootstrap_args_t *args,
                                                  mnnvl_bootstrap_t **out)
{
    MNNVL_CHECK(check_args(args, out));
    *out = NULL;
    const char *store = args->config_get(args->config, "store");
    const char *prefix = args->config_get(args->config, "store_prefix");
    if (!store || !store[0])
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: no store address: set the config key "
                           "store=host:port (or MNNVL_STORE) to the TCPStore of the job");
    if (strlen(store) >= MNNVL_SOCK_ADDR_MAX)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: store address '%.64s...' is too long", store);
    ts_bootstrap_t *tb = state_new(args->rank, args->size, args->timeout_ms);
    if (!tb)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "torch-store bootstrap: out of memory");
    ts_state_t *st = &tb->st;
    snprintf(st->address, sizeof(st->address), "%s", store);
    snprintf(st->label, sizeof(st->label), "comm '%s' (store %s)", args->comm_name, store);
    uint64_t started = mnnvl_now_ms();
    uint64_t deadline = mnnvl_deadline_after(args->timeout_ms);
    mnnvl_status_t s = detect_generation(st, deadline);
    if (s == MNNVL_SUCCESS)
        s = join(st, prefix ? prefix : "", args->comm_name, deadline);
    if (s != MNNVL_SUCCESS) {
        s = mnnvl_error_wrap(s, "torch-store bootstrap: rank %d joining %s", st->rank,
                             st->label);
        state_free(tb);
        return s;
    }
    /* The barrier that makes the joins counter safe (see the top of this file), then one
     * more: a rank whose read of the first one failed after the last arrival decided it
     * marks the second aborted (fail_round), so that no rank comes out of create with a
     * communicator that a peer does not have. */
    round_t r = {.op = OP_ALLGATHER, .what = "joining"};
    round_t confirm = {.op = OP_ALLGATHER, .what = "confirming the communicator"};
    st->timeout_ms = mnnvl_deadline_left(deadline) > 0 ? mnnvl_deadline_left(deadline) : 1;
    s = run_round(st, &r);
    if (s == MNNVL_SUCCESS) {
        st->timeout_ms = mnnvl_deadline_left(deadline) > 0 ? mnnvl_deadline_left(deadline) : 1;
        s = run_round(st, &confirm);
    }
    st->timeout_ms = args->timeout_ms;
    if (s != MNNVL_SUCCESS) {
        if (s == MNNVL_ERR_TIMEOUT)
            s = mnnvl_error_wrap(s, "torch-store bootstrap: creating the communicator failed "
                                    "after %d ms (if an earlier job with this store_prefix "
                                    "died while joining, it skewed the joins counter: use a "
                                    "fresh store_prefix)",
                                 (int)(mnnvl_now_ms() - started));
        state_free(tb);
        return s;
    }
    fill_interface(tb);
    *out = &tb->bs;
    return MNNVL_SUCCESS;
}
