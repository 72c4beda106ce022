/* The torch-store bootstrap: ranks meet in a PyTorch c10d TCPStore that the application
 * already runs, speaking its wire protocol directly (no torch dependency).
 *
 * This file holds what the keys mean: the rounds, their tags, the failure marks and the key
 * names; tcpstore_client.{c,h} speaks the wire protocol (both torch generations). It is
 * about 1000 lines, half of them comments, because rounds, tags, marks, create and split
 * share one state and one set of key names: split apart they would need a private header
 * exposing that state.
 *
 * Config keys: store (host:port, required), store_prefix (default "mnnvl").
 *
 * Keys: like torch's own client we prefix every key with "/", so Python code sees ours as
 * "<store_prefix>/..." and never collides with them, nor with torch's raw "init/" key. A
 * communicator lives under "/<prefix>/<comm_name>/n<size>/g<gen>", where gen comes from
 * an ADD on ".../n<size>/joins": creation ends with a barrier, so all joins of one
 * generation happen before any join of the next and every rank computes the same gen.
 * Creation is three rounds: an allgather of a fresh random nonce per rank (the session,
 * below), an allgather of empty blobs bound to that session (every rank checks that all
 * agree on it), and a barrier, so that a rank failing one of the first two fails
 * everybody's create.
 * Children (split, shrink) live under their parent: ".../g<gen>/s<child>t<tag>", and tag
 * their values with the parent's session. Only the joins counter (one small key per name and
 * size) outlives the communicators.
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
 * Trust: a TCPStore authenticates nobody, so whoever reaches its port (the store's
 * operator, any other client) can read, write and delete our keys. Every length it returns
 * is checked against what the reader expects before anything is written: a chunk of the
 * wrong length is BOOTSTRAP naming the key, the expected and the received length (a peer
 * that passed another byte count shows in its header instead: MISMATCH, alike on every
 * rank). And every value this backend writes (blob chunks and round outcomes) ends with a
 * 16-byte tag, keyed BLAKE2b under the job key (auth.h), over the value's store key (which
 * names the communicator, its generation, the round, the writer and the chunk), the round
 * number, the writer's rank, the session and the value itself. The session is a hash of
 * the nonces of the first round, so a value from an earlier communicator of the same name
 * (a replay after the joins counter was reset) fails too. A reader checks the tag before
 * it uses a byte: a value a client without the key injected, altered, replayed from
 * another round, communicator or session, or moved to another rank's or chunk's key fails
 * with AUTH and a sentence naming the key, and that rank's failure mark (itself tagged)
 * makes the others fail with AUTH as well. A rank with another job key fails the first
 * round: AUTH on every rank. What the store's operator can still do: see every value (they
 * are authenticated, not encrypted: addresses and memory-handle descriptors, of use only on
 * the job's machines), delay, drop or delete values and counters, and so deny service (the
 * ranks fail with TIMEOUT, PEER_LOST, BOOTSTRAP or AUTH); not forge or alter what a rank
 * receives. The job key itself never goes to the store, into a key name, a log line or a
 * sentence.
 */
#include "bootstrap.h"

#include <sys/uio.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "deadline.h"
#include "error.h"
#include "log.h"
#include "sock.h"
#include "tcpstore_client.h"
#include "torch_store.h"

#define MAX_VALUE MNNVL_TCPSTORE_MAX_VALUE
/* Keys must stay far below the libuv server's 8192-byte limit. */
#define KEY_MAX 1024
#define BASE_MAX 800
/* Pipelined requests per batch: small enough that requests never fill the socket buffer
 * while the server waits for us to read its replies. */
#define BATCH 64
/* An abort or a timeout publishes its mark within this long. */
#define MARK_TIMEOUT_MS 2000

#define HEADER_BYTES 16
#define HEADER_MAGIC 0x53544e4du /* "MNTS" */
#define OK_MARK "ok"
#define ABORT_MARK "abort:"
/* After ABORT_MARK: the rank gave up because a value failed authentication. */
#define AUTH_REASON "auth:"
#define MARK_MAX 600
#define TAG_BYTES MNNVL_AUTH_TAG_BYTES
#define SESSION_BYTES MNNVL_AUTH_TAG_BYTES
#define NONCE_BYTES 16
#define VALUE_LABEL "mnnvl torch-store value v1"
#define SESSION_LABEL "mnnvl torch-store session v1"

enum { OP_ALLGATHER = 1, OP_BROADCAST = 2 };

typedef struct ts_state {
    mnnvl_tcpstore_conn_t conn;
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
    size_t max_value; /* of a value, its tag included */
    mnnvl_auth_key_t key;
    /* Bound into every blob's tag: zero in the first round, then the hash of its nonces. */
    uint8_t session[SESSION_BYTES];
    int plain_input; /* mnnvl_torch_store_feed only: tags are not checked */
    char base[BASE_MAX];
    char label[BASE_MAX + MNNVL_SOCK_ADDR_MAX + 64];
} ts_state_t;

typedef struct ts_bootstrap {
    mnnvl_bootstrap_t bs;
    ts_state_t st;
} ts_bootstrap_t;

/* ---------------------------------------------------------------------------------------- */
/* Failure marks                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void round_key(const char *base, char *key, unsigned seq, const char *what)
{
    snprintf(key, KEY_MAX, "%s/%u/%s", base, seq, what);
}

static void chunk_key(const char *base, char *key, unsigned seq, int rank, size_t chunk)
{
    snprintf(key, KEY_MAX, "%s/%u/%d.%zu", base, seq, rank, chunk);
}

/* ---------------------------------------------------------------------------------------- */
/* Tags                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* What every tag is bound to, then the value's pieces. `writer` is -1 and `session` NULL
 * for round outcomes: any rank may write one, and an outcome replayed from another session
 * could only delay or fail a round, never change what a rank receives. */
static void value_tag(const ts_state_t *st, const char *key, unsigned seq, int writer,
                      const uint8_t *session, const struct iovec *parts, int nparts,
                      uint8_t tag[TAG_BYTES])
{
    static const uint8_t no_session[SESSION_BYTES];
    uint8_t bind[8 + 4 + 8];
    size_t len = 0;
    for (int i = 0; i < nparts; i++)
        len += parts[i].iov_len;
    uint64_t seq64 = seq, len64 = len;
    int32_t writer32 = writer;
    memcpy(bind, &seq64, 8);
    memcpy(bind + 8, &writer32, 4);
    memcpy(bind + 12, &len64, 8);
    struct iovec iov[6] = {{(void *)key, strlen(key) + 1},
                           {(void *)(session ? session : no_session), SESSION_BYTES},
                           {bind, sizeof(bind)}};
    int n = 3;
    for (int i = 0; i < nparts && n < 6; i++)
        iov[n++] = parts[i];
    mnnvl_auth_tag(&st->key, VALUE_LABEL, iov, n, tag);
}

/* Checks the tag at the end of a value of `len` bytes; SUCCESS or AUTH naming the key. */
static mnnvl_status_t check_tag(const ts_state_t *st, const char *key, unsigned seq, int writer,
                                const uint8_t *session, const uint8_t *v, size_t len)
{
    uint8_t expected[TAG_BYTES];
    if (len >= TAG_BYTES) {
        struct iovec part = {(void *)v, len - TAG_BYTES};
        value_tag(st, key, seq, writer, session, &part, 1, expected);
    }
    if (st->plain_input ||
        (len >= TAG_BYTES && mnnvl_auth_equal(expected, v + len - TAG_BYTES, TAG_BYTES)))
        return MNNVL_SUCCESS;
    return mnnvl_error(MNNVL_ERR_AUTH,
                       "the value of '%s' in the store (%zu bytes) failed authentication: a "
                       "rank with a different job_key wrote it, or another client of the store "
                       "wrote, altered, replayed or moved it",
                       key, len);
}

/* A round outcome ("ok", "abort:...") as stored: the text, then its tag. */
static size_t outcome_value(const ts_state_t *st, const char *key, unsigned seq, const char *text,
                            uint8_t *out)
{
    size_t len = strlen(text);
    memcpy(out, text, len);
    struct iovec part = {out, len};
    value_tag(st, key, seq, -1, NULL, &part, 1, out + len);
    return len + TAG_BYTES;
}

/* ---------------------------------------------------------------------------------------- */
/* Failure marks                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Writes "abort:<reason>" into the done keys of the rounds a peer may be waiting in (the one
 * before `seq`, in case this rank is still inside it, `seq` and the one after), over a
 * connection of its own: the main one may be in use by another thread, or out of step.
 * When `arrived` is not NULL, also reads how many ranks reached round `seq` into it (-1 when
 * unknown). Best effort, bounded by MARK_TIMEOUT_MS. */
static void publish_abort(const ts_state_t *st, unsigned seq, const char *reason, int *arrived)
{
    mnnvl_tcpstore_conn_t aux;
    mnnvl_tcpstore_init(&aux, st->conn.address, st->conn.modern, NULL);
    int timeout = st->timeout_ms < MARK_TIMEOUT_MS ? st->timeout_ms : MARK_TIMEOUT_MS;
    uint64_t deadline = mnnvl_deadline_after(timeout);
    char mark[MARK_MAX];
    snprintf(mark, sizeof(mark), ABORT_MARK "%s", reason);
    uint8_t values[3][MARK_MAX + TAG_BYTES];
    size_t lens[3];
    char key[KEY_MAX];
    mnnvl_tcpstore_req_t b = {0};
    int replies = 0;
    for (unsigned r = seq ? seq - 1 : 0; r <= seq + 1; r++, replies++) {
        round_key(st->base, key, r, "done");
        lens[replies] = outcome_value(st, key, r, mark, values[replies]);
        mnnvl_tcpstore_compare_set(&aux, &b, key, values[replies], lens[replies]);
    }
    if (arrived) {
        round_key(st->base, key, seq, "cnt");
        mnnvl_tcpstore_add(&aux, &b, key, 0);
        *arrived = -1;
    }
    mnnvl_status_t s = mnnvl_tcpstore_connect(&aux, deadline);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_flush(&aux, &b, deadline);
    unsigned won = 0; /* bit i: the mark went into round seq-1+i */
    for (int i = 0; s == MNNVL_SUCCESS && i < replies; i++) {
        uint8_t value[MARK_MAX + TAG_BYTES];
        size_t len;
        s = mnnvl_tcpstore_read_value(&aux, "an abort mark", value, sizeof(value), &len, deadline);
        if (s == MNNVL_SUCCESS && len == lens[i] && memcmp(value, values[i], len) == 0)
            won |= 1u << i;
    }
    uint64_t count;
    if (s == MNNVL_SUCCESS && arrived &&
        mnnvl_tcpstore_read_u64(&aux, &count, deadline) == MNNVL_SUCCESS)
        *arrived = (int)count;
    for (int i = 0; s == MNNVL_SUCCESS && i < replies; i++) {
        if (won & (1u << i)) {
            round_key(st->base, key, (seq ? seq - 1 : 0) + (unsigned)i, "done");
            mnnvl_tcpstore_set(&aux, &b, key, values[i], lens[i]);
        }
    }
    if (s == MNNVL_SUCCESS && b.len)
        s = mnnvl_tcpstore_flush(&aux, &b, deadline);
    if (s != MNNVL_SUCCESS)
        MNNVL_DEBUG("torch-store bootstrap: rank %d could not mark %s aborted: %s", st->rank,
                    st->label, mnnvl_last_error());
    mnnvl_tcpstore_close(&aux);
    mnnvl_tcpstore_req_free(&b);
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
        char reason[200];
        snprintf(reason, sizeof(reason), "rank %d gave up: %s timed out after %d ms", st->rank,
                 what, waited);
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
        s = mnnvl_error_wrap(s, "torch-store bootstrap: %s on rank %d of %s", what, st->rank,
                             st->label);
        /* The round may already be decided "ok" for the others (this rank's read failed
         * after the last arrival): the mark then lands in the next round, which every peer
         * fails with PEER_LOST (AUTH when this rank read a value that failed
         * authentication) instead of carrying on with a rank that is gone. */
        char reason[200];
        snprintf(reason, sizeof(reason), "%srank %d gave up: %s failed with %s",
                 s == MNNVL_ERR_AUTH ? AUTH_REASON : "", st->rank, what, mnnvl_status_string(s));
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

/* The bytes of header and data a value holds: all but its tag. */
static size_t chunk_room(const ts_state_t *st)
{
    return st->max_value - TAG_BYTES;
}

static size_t chunks_of(const ts_state_t *st, size_t bytes)
{
    return (HEADER_BYTES + bytes + chunk_room(st) - 1) / chunk_room(st);
}

/* Queues SETs of this rank's blob: the stream header+data cut into chunk_room pieces, each
 * stored with its tag. */
static void queue_blob(const ts_state_t *st, mnnvl_tcpstore_req_t *b, const round_t *r)
{
    uint8_t header[HEADER_BYTES];
    uint32_t magic = HEADER_MAGIC;
    uint64_t bytes = r->bytes;
    memcpy(header, &magic, 4);
    memcpy(header + 4, &r->op, 4);
    memcpy(header + 8, &bytes, 8);
    size_t total = HEADER_BYTES + r->bytes, room = chunk_room(st);
    char key[KEY_MAX];
    for (size_t c = 0, off = 0; off < total; c++, off += room) {
        size_t len = total - off < room ? total - off : room;
        chunk_key(st->base, key, r->seq, st->rank, c);
        size_t from_header = off < HEADER_BYTES ? HEADER_BYTES - off : 0;
        if (from_header > len)
            from_header = len;
        size_t data_off = off + from_header - HEADER_BYTES;
        uint8_t tag[TAG_BYTES];
        /* No pointer past the header's end, nor an offset from a NULL empty blob. */
        struct iovec parts[3] = {
            {from_header ? header + off : header, from_header},
            {len > from_header ? (uint8_t *)r->data + data_off : header, len - from_header},
            {tag, sizeof(tag)}};
        value_tag(st, key, r->seq, st->rank, st->session, parts, 2, tag);
        mnnvl_tcpstore_setv(&st->conn, b, key, parts, 3);
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
        return mnnvl_error(
            MNNVL_ERR_MISMATCH, "rank %d called %s with %llu bytes but rank %d called %s with %zu",
            writer, op == OP_ALLGATHER ? "allgather" : "broadcast", (unsigned long long)bytes,
            st->rank, r->op == OP_ALLGATHER ? "allgather" : "broadcast", r->bytes);
    return MNNVL_SUCCESS;
}

/* The bytes chunk c of a blob of `bytes` data bytes holds before its tag: every chunk is
 * chunk_room long but the last. */
static size_t chunk_len(const ts_state_t *st, size_t bytes, size_t c)
{
    size_t total = HEADER_BYTES + bytes, room = chunk_room(st);
    size_t off = c * room;
    return total - off < room ? total - off : room;
}

/* Reads one value reply whole into *buf (grown as needed; *cap is its size), its length into
 * *len. A length over MAX_VALUE, more than any value can hold, is refused before a byte of it
 * is read: BOOTSTRAP naming the key. */
static mnnvl_status_t read_reply(ts_state_t *st, const char *key, uint8_t **buf, size_t *cap,
                                 size_t *len, uint64_t deadline)
{
    char what[KEY_MAX + 8];
    snprintf(what, sizeof(what), "key '%s'", key);
    MNNVL_CHECK(mnnvl_tcpstore_read_len(&st->conn, what, MAX_VALUE, len, deadline));
    if (*len > *cap) {
        uint8_t *grown = realloc(*buf, *len);
        if (!grown)
            return mnnvl_error(MNNVL_ERR_NO_MEMORY, "out of memory for a value of %zu bytes", *len);
        *buf = grown;
        *cap = *len;
    }
    return mnnvl_tcpstore_recv(&st->conn, *buf, *len, deadline);
}

static mnnvl_status_t wrong_length(const ts_state_t *st, const round_t *r, const char *key,
                                   int writer, size_t c, size_t len, size_t expect)
{
    return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                       "the store returned %zu bytes for key '%s' (rank %d's chunk %zu of %zu) "
                       "where that value holds %zu: nothing of it was written; is something "
                       "else writing under the prefix?",
                       len, key, writer, c, chunks_of(st, r->bytes), expect);
}

/* Reads the writers' blobs of a completed round into r->out, in batches of pipelined GETs
 * (one MULTI_GET per batch on torch 2.x). Nothing of a value is written before its length
 * is the one that chunk of this round holds (else BOOTSTRAP naming the key and both
 * lengths) and its tag checks out (else AUTH). Only a value that passed its tag is read as a
 * header: a writer that called with another byte count shows there (MISMATCH, the same on
 * every rank). */
static mnnvl_status_t read_blobs(ts_state_t *st, const round_t *r, uint64_t deadline)
{
    size_t nchunks = chunks_of(st, r->bytes);
    size_t total = (size_t)r->writers * nchunks;
    size_t cap = chunk_len(st, r->bytes, 0) + TAG_BYTES;
    uint8_t *v = malloc(cap);
    mnnvl_tcpstore_req_t b = {0};
    mnnvl_status_t s =
        v ? MNNVL_SUCCESS : mnnvl_error(MNNVL_ERR_NO_MEMORY, "out of memory for %zu bytes", cap);
    mnnvl_status_t mismatch = MNNVL_SUCCESS;
    char key[KEY_MAX];
    /* Chunk-major order: every writer's header is read before any second chunk. */
    for (size_t first = 0; s == MNNVL_SUCCESS && first < total; first += BATCH) {
        size_t n = total - first < BATCH ? total - first : BATCH;
        if (st->conn.modern)
            mnnvl_tcpstore_multi_get(&st->conn, &b, n);
        for (size_t i = first; i < first + n; i++) {
            chunk_key(st->base, key, r->seq, r->first_writer + (int)(i % r->writers),
                      i / r->writers);
            if (st->conn.modern)
                mnnvl_tcpstore_multi_get_key(&b, key);
            else
                mnnvl_tcpstore_get(&st->conn, &b, key);
        }
        s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
        for (size_t i = first; s == MNNVL_SUCCESS && i < first + n; i++) {
            size_t len = 0, c = i / r->writers;
            int w = (int)(i % r->writers), writer = r->first_writer + w;
            chunk_key(st->base, key, r->seq, writer, c);
            s = read_reply(st, key, &v, &cap, &len, deadline);
            if (s != MNNVL_SUCCESS)
                break;
            if (mismatch != MNNVL_SUCCESS)
                continue; /* still drain the replies of this batch */
            size_t expect = chunk_len(st, r->bytes, c) + TAG_BYTES;
            /* A first chunk may be of another length from an honest writer that passed
             * another byte count: its tag, then its header, tell. */
            if (c > 0 && len != expect) {
                s = wrong_length(st, r, key, writer, c, len, expect);
                break;
            }
            s = check_tag(st, key, r->seq, writer, st->session, v, len);
            if (s != MNNVL_SUCCESS)
                break;
            if (c == 0) {
                mismatch = check_header(st, r, writer, v, len >= TAG_BYTES ? len - TAG_BYTES : 0);
                if (mismatch != MNNVL_SUCCESS)
                    continue;
            }
            if (len != expect) {
                s = wrong_length(st, r, key, writer, c, len, expect);
                break;
            }
            size_t off = c * chunk_room(st);
            size_t skip = off < HEADER_BYTES ? HEADER_BYTES - off : 0;
            size_t data = len - TAG_BYTES;
            if (data > skip)
                memcpy((uint8_t *)r->out + (size_t)w * r->bytes + off + skip - HEADER_BYTES,
                       v + skip, data - skip);
        }
        if (mismatch != MNNVL_SUCCESS && mismatch != MNNVL_ERR_MISMATCH)
            s = mismatch;
        if (mismatch != MNNVL_SUCCESS)
            break;
    }
    free(v);
    mnnvl_tcpstore_req_free(&b);
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
    mnnvl_tcpstore_req_t b = {0};
    char key[KEY_MAX];
    round_key(st->base, key, st->prev_seq, "cnt");
    mnnvl_tcpstore_delete(&st->conn, &b, key);
    round_key(st->base, key, st->prev_seq, "done");
    mnnvl_tcpstore_delete(&st->conn, &b, key);
    size_t n = 2;
    for (int w = 0; w < st->prev_writers; w++) {
        for (size_t c = 0; c < st->prev_chunks; c++, n++) {
            chunk_key(st->base, key, st->prev_seq, st->prev_first_writer + w, c);
            mnnvl_tcpstore_delete(&st->conn, &b, key);
        }
    }
    mnnvl_status_t s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    mnnvl_tcpstore_req_free(&b);
    for (size_t i = 0; s == MNNVL_SUCCESS && i < n; i++) {
        uint64_t deleted;
        s = mnnvl_tcpstore_read_u64(&st->conn, &deleted, deadline);
    }
    st->prev_valid = 0;
    return s;
}

/* Interprets the value of "<s>/done". */
static mnnvl_status_t check_done(const ts_state_t *st, const char *key, unsigned seq,
                                 const uint8_t *value, size_t len)
{
    MNNVL_CHECK(check_tag(st, key, seq, -1, NULL, value, len));
    const char *v = (const char *)value;
    len = len >= TAG_BYTES ? len - TAG_BYTES : 0;
    size_t abort_len = strlen(ABORT_MARK), auth_len = strlen(AUTH_REASON);
    if (len == strlen(OK_MARK) && memcmp(v, OK_MARK, len) == 0)
        return MNNVL_SUCCESS;
    if (len >= abort_len + auth_len && memcmp(v, ABORT_MARK AUTH_REASON, abort_len + auth_len) == 0)
        return mnnvl_error(MNNVL_ERR_AUTH,
                           "a peer read a value from the store that failed authentication: "
                           "%.*s",
                           (int)(len - abort_len - auth_len), v + abort_len + auth_len);
    if (len >= abort_len && memcmp(v, ABORT_MARK, abort_len) == 0)
        return mnnvl_error(MNNVL_ERR_PEER_LOST, "the communicator was aborted by a peer: %.*s",
                           (int)(len - abort_len), v + abort_len);
    return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "the store holds an unexpected round outcome '%.*s'",
                       (int)len, v);
}

/* Arrives in the round and waits until every rank did; the last arriver decides the
 * outcome and cleans up the previous round. */
static mnnvl_status_t arrive(ts_state_t *st, const round_t *r, uint64_t deadline)
{
    mnnvl_tcpstore_req_t b = {0};
    char key[KEY_MAX];
    if (st->rank >= r->first_writer && st->rank < r->first_writer + r->writers)
        queue_blob(st, &b, r);
    round_key(st->base, key, r->seq, "cnt");
    mnnvl_tcpstore_add(&st->conn, &b, key, 1);
    mnnvl_status_t s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    uint64_t count = 0;
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_read_u64(&st->conn, &count, deadline);
    round_key(st->base, key, r->seq, "done");
    uint8_t ok[sizeof(OK_MARK) + TAG_BYTES];
    size_t ok_len = outcome_value(st, key, r->seq, OK_MARK, ok);
    int last = s == MNNVL_SUCCESS && count == (uint64_t)st->size;
    if (last)
        mnnvl_tcpstore_compare_set(&st->conn, &b, key, ok, ok_len);
    else if (s == MNNVL_SUCCESS)
        mnnvl_tcpstore_wait(&st->conn, &b, key);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    if (s == MNNVL_SUCCESS && !last) {
        s = mnnvl_tcpstore_read_stop(&st->conn, deadline);
        if (s == MNNVL_SUCCESS) {
            mnnvl_tcpstore_get(&st->conn, &b, key); /* never pipelined behind a pending WAIT */
            s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
        }
    }
    uint8_t v[MARK_MAX + TAG_BYTES];
    size_t len = 0;
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_read_value(&st->conn, "a round's outcome", v, sizeof(v), &len, deadline);
    if (s == MNNVL_SUCCESS)
        s = check_done(st, key, r->seq, v, len);
    if (s == MNNVL_SUCCESS && last) {
        mnnvl_tcpstore_set(&st->conn, &b, key, ok, ok_len);
        s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    }
    mnnvl_tcpstore_req_free(&b);
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
        return mnnvl_error_wrap(s, "torch-store bootstrap: %s on rank %d of %s", r->what, st->rank,
                                st->label);
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
    round_t r = {.op = OP_ALLGATHER,
                 .first_writer = 0,
                 .writers = st->size,
                 .data = send,
                 .bytes = bytes,
                 .out = recv,
                 .what = what};
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
    round_t r = {.op = OP_BROADCAST,
                 .first_writer = root,
                 .writers = 1,
                 .data = buf,
                 .bytes = bytes,
                 .out = buf,
                 .what = what};
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
    if (st->conn.fd >= 0)
        shutdown(st->conn.fd, SHUT_RDWR); /* wakes a thread blocked on this connection */
    char reason[64];
    snprintf(reason, sizeof(reason), "rank %d aborted", st->rank);
    publish_abort(st, atomic_load(&st->seq), reason, NULL);
}

static void state_free(ts_bootstrap_t *tb)
{
    mnnvl_tcpstore_close(&tb->st.conn);
    free(tb);
}

/* The last rank to leave deletes what is left: the final round's keys and the rounds an
 * abort may have marked, and the leave counter itself. */
static void leave(ts_state_t *st)
{
    if (st->conn.fd < 0 || st->broken || atomic_load(&st->aborted)) {
        MNNVL_DEBUG("torch-store bootstrap: rank %d leaves %s without cleaning up the store: "
                    "the communicator failed or was aborted",
                    st->rank, st->label);
        return;
    }
    uint64_t deadline = mnnvl_deadline_after(st->timeout_ms);
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%s/left", st->base);
    mnnvl_tcpstore_req_t b = {0};
    mnnvl_tcpstore_add(&st->conn, &b, key, 1);
    mnnvl_status_t s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    uint64_t left = 0;
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_read_u64(&st->conn, &left, deadline);
    if (s == MNNVL_SUCCESS && left == (uint64_t)st->size) {
        s = delete_prev(st, deadline);
        unsigned seq = atomic_load(&st->seq);
        size_t n = 1;
        mnnvl_tcpstore_delete(&st->conn, &b, key);
        for (unsigned r = seq; s == MNNVL_SUCCESS && r <= seq + 1; r++, n += 2) {
            round_key(st->base, key, r, "cnt");
            mnnvl_tcpstore_delete(&st->conn, &b, key);
            round_key(st->base, key, r, "done");
            mnnvl_tcpstore_delete(&st->conn, &b, key);
        }
        if (s == MNNVL_SUCCESS)
            s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
        for (size_t i = 0; s == MNNVL_SUCCESS && i < n; i++) {
            uint64_t deleted;
            s = mnnvl_tcpstore_read_u64(&st->conn, &deleted, deadline);
        }
    }
    mnnvl_tcpstore_req_free(&b);
    if (s != MNNVL_SUCCESS)
        MNNVL_DEBUG("torch-store bootstrap: rank %d could not clean up %s: %s", st->rank, st->label,
                    mnnvl_last_error());
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
    tb->st.conn.fd = -1;
    atomic_init(&tb->st.aborted, 0);
    atomic_init(&tb->st.seq, 0);
    tb->st.rank = rank;
    tb->st.size = size;
    tb->st.timeout_ms = timeout_ms;
    tb->st.max_value = MAX_VALUE;
    /* For tests: a smaller limit exercises the splitting of values without 8 MiB blobs. */
    const char *limit = getenv("MNNVL_TORCH_STORE_MAX_VALUE");
    if (limit && atol(limit) > HEADER_BYTES + TAG_BYTES && (size_t)atol(limit) < MAX_VALUE)
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
    mnnvl_tcpstore_init(&cs->conn, st->conn.address, st->conn.modern, &cs->aborted);
    cs->max_value = st->max_value;
    cs->key = st->key;
    memcpy(cs->session, st->session, sizeof(cs->session));
    int n = snprintf(cs->base, sizeof(cs->base), "%.*s/s%ut%016llx", BASE_MAX - 40, st->base,
                     counter, (unsigned long long)child->tag);
    snprintf(cs->label, sizeof(cs->label), "comm '%s' (store %s)", cs->base, cs->conn.address);
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (n >= (int)sizeof(cs->base))
        s = mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                        "torch-store bootstrap: child of %s: the key prefix would exceed %zu "
                        "bytes",
                        st->label, sizeof(cs->base));
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_connect(&cs->conn, mnnvl_deadline_after(st->timeout_ms));
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
static mnnvl_status_t join(ts_state_t *st, const char *prefix, const char *name, uint64_t deadline)
{
    char key[KEY_MAX];
    int n = snprintf(key, sizeof(key), "/%s%s%s/n%d/joins", prefix, prefix[0] ? "/" : "", name,
                     st->size);
    if (n >= BASE_MAX - 32)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "torch-store bootstrap: store_prefix '%s' and comm_name '%s' make "
                           "keys over %d bytes",
                           prefix, name, BASE_MAX - 32);
    mnnvl_tcpstore_req_t b = {0};
    mnnvl_tcpstore_add(&st->conn, &b, key, 1);
    mnnvl_status_t s = mnnvl_tcpstore_flush(&st->conn, &b, deadline);
    mnnvl_tcpstore_req_free(&b);
    uint64_t joins = 0;
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_read_u64(&st->conn, &joins, deadline);
    if (s != MNNVL_SUCCESS)
        return s;
    uint64_t gen = (joins - 1) / (uint64_t)st->size;
    snprintf(st->base, sizeof(st->base), "%.*s/g%llu", (int)(n - strlen("/joins")), key,
             (unsigned long long)gen);
    snprintf(st->label, sizeof(st->label), "comm '%s' (store %s, torch %s protocol)", st->base,
             st->conn.address, st->conn.modern ? "2.x" : "1.13");
    return MNNVL_SUCCESS;
}

/* Creation's three rounds (see the top of this file): the nonces, from which every rank
 * computes the session; empty blobs bound to it, which fail with AUTH where ranks' sessions
 * differ; then the barrier that makes a failure of either everybody's. */
static mnnvl_status_t open_session(ts_state_t *st, uint64_t deadline)
{
    uint8_t nonce[NONCE_BYTES];
    uint8_t *all = malloc((size_t)st->size * NONCE_BYTES);
    if (!all)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY,
                           "torch-store bootstrap: out of memory for %d "
                           "nonces",
                           st->size);
    mnnvl_auth_random(nonce, sizeof(nonce));
    round_t joining = {.op = OP_ALLGATHER,
                       .writers = st->size,
                       .data = nonce,
                       .bytes = sizeof(nonce),
                       .out = all,
                       .what = "joining"};
    round_t checking = {
        .op = OP_ALLGATHER, .writers = st->size, .out = nonce, .what = "checking the session"};
    round_t confirm = {.op = OP_ALLGATHER, .what = "confirming the communicator"};
    round_t *rounds[3] = {&joining, &checking, &confirm};
    mnnvl_status_t s = MNNVL_SUCCESS;
    for (int i = 0; i < 3 && s == MNNVL_SUCCESS; i++) {
        st->timeout_ms = mnnvl_deadline_left(deadline) > 0 ? mnnvl_deadline_left(deadline) : 1;
        s = run_round(st, rounds[i]);
        if (s == MNNVL_SUCCESS && i == 0) {
            struct iovec iov[2] = {{st->base, strlen(st->base) + 1},
                                   {all, (size_t)st->size * NONCE_BYTES}};
            mnnvl_auth_tag(&st->key, SESSION_LABEL, iov, 2, st->session);
        }
    }
    free(all);
    return s;
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
    mnnvl_tcpstore_init(&st->conn, store, 0, &st->aborted);
    snprintf(st->label, sizeof(st->label), "comm '%s' (store %s)", args->comm_name, store);
    uint64_t started = mnnvl_now_ms();
    uint64_t deadline = mnnvl_deadline_after(args->timeout_ms);
    mnnvl_status_t s = mnnvl_auth_derive_key(args->job_key, &st->key);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_tcpstore_detect(&st->conn, deadline);
    if (s == MNNVL_SUCCESS)
        s = join(st, prefix ? prefix : "", args->comm_name, deadline);
    if (s != MNNVL_SUCCESS) {
        s = mnnvl_error_wrap(s, "torch-store bootstrap: rank %d joining %s", st->rank, st->label);
        state_free(tb);
        return s;
    }
    /* The rounds that make the joins counter safe (see the top of this file): a rank whose
     * read of one failed after the last arrival decided it marks the next aborted
     * (fail_round), so that no rank comes out of create with a communicator that a peer does
     * not have. */
    s = open_session(st, deadline);
    st->timeout_ms = args->timeout_ms;
    if (s != MNNVL_SUCCESS) {
        if (s == MNNVL_ERR_TIMEOUT)
            s = mnnvl_error_wrap(s,
                                 "torch-store bootstrap: creating the communicator failed "
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

/* ---------------------------------------------------------------------------------------- */
/* Fuzzing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

void mnnvl_torch_store_feed(int fd, int rank, int size, size_t bytes, size_t max_value, int modern)
{
    if (size < 1 || size > 64 || rank < 0 || rank >= size || bytes > 4096)
        return;
    ts_bootstrap_t *tb = state_new(rank, size, 1000);
    if (!tb)
        return;
    ts_state_t *st = &tb->st;
    if (max_value > HEADER_BYTES + TAG_BYTES && max_value < MAX_VALUE)
        st->max_value = max_value;
    /* An address that no connect accepts: a failure mark goes nowhere, at once. */
    mnnvl_tcpstore_init(&st->conn, "fuzz", modern, &st->aborted);
    st->conn.fd = fd;
    st->plain_input = 1;
    fill_interface(tb);
    uint8_t *data = calloc(1, bytes ? bytes : 1);
    uint8_t *all = calloc((size_t)size, bytes ? bytes : 1);
    mnnvl_status_t s =
        data && all ? join(st, "fuzz", "world", mnnvl_deadline_after(1000)) : MNNVL_ERR_NO_MEMORY;
    if (s == MNNVL_SUCCESS)
        s = open_session(st, mnnvl_deadline_after(1000));
    if (s == MNNVL_SUCCESS)
        s = ts_allgather(&tb->bs, data, all, bytes);
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        s = ts_broadcast(&tb->bs, data, bytes, size - 1);
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        s = ts_barrier(&tb->bs);
    free(data);
    free(all);
    ts_destroy(&tb->bs);
}
