/* The tcp bootstrap, rank side: one connection to the root per communicator, star-shaped
 * collectives through it (tcp_wire.h), and the embedded root of root_mode=rank0.
 *
 * Config keys: root (host:port, required), root_mode (rank0 | external, default rank0).
 *
 * Threads: the collectives run on the caller's thread; abort() may come from any thread. It
 * sets a flag, sends ABORT if no other thread is in the middle of a send (send_lock), and
 * shuts the socket down, which wakes a thread blocked in poll at once. The descriptor is
 * only closed by destroy, so abort never races with a reuse of the fd number.
 *
 * Liveness (poll_lost, at the end): the root tells every member of a group each rank it
 * loses (an ERROR frame naming it). A collective that is waiting reads that frame itself;
 * between collectives the library's watcher thread reads it. recv_lock keeps the two apart:
 * a collective holds it from its send to its answer, and the watcher reads only while it can
 * take it, so it never takes a frame a collective waits for.
 *
 * A little over 800 lines: the liveness and fuzz-entry sections at the end read the same
 * connection state as the collectives and are kept beside them.
 */
#include "bootstrap.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
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
#include "tcp.h"
#include "tcp_wire.h"

/* After a wait times out, the root gets this long to say how far the group got. */
#define QUERY_GRACE_MS 500
/* Pause before reconnecting when a connection drops before its group formed. */
#define REJOIN_PAUSE_MS 20

/* Labels separating the group ids of named communicators and of splits. The ids are
 * public (nothing from the key): only ranks that proved the key can join a group anyway. */
#define GROUP_LABEL_NAME "mnnvl group name"
#define GROUP_LABEL_SPLIT "mnnvl group split"

typedef struct tcp_state {
    int fd;
    atomic_int aborted;
    pthread_mutex_t send_lock; /* held for a whole frame, so frames never interleave */
    pthread_mutex_t recv_lock; /* held by a collective, taken by the watcher (liveness) */
    atomic_int heard_lost;     /* 1 + a rank the root reported lost, not yet polled; 0: none */
    int root_is_rank0;         /* root_mode=rank0 and no split: the root dies with rank 0 */
    int liveness_ended;        /* the watcher found the root gone (watcher only) */
    mnnvl_status_t broken;     /* a failure that left the connection unusable */
    char broken_msg[MNNVL_WIRE_MAX_TEXT + 256];
    int rank;
    int size;
    int timeout_ms;
    uint64_t group_id;
    uint32_t splits; /* split calls so far: part of the children's group ids */
    char label[MNNVL_WIRE_MAX_LABEL + 1];
    char root_address[MNNVL_SOCK_ADDR_MAX];
    char root_host[MNNVL_WIRE_MAX_LABEL + 32]; /* which rank hosts the root; "" if external */
    char root_said[MNNVL_WIRE_MAX_TEXT + 1];   /* the text of the root's last ERROR */
    mnnvl_auth_key_t key;
    mnnvl_auth_session_t sess;  /* of the connection; send_seq under send_lock */
    mnnvl_tcp_root_t *embedded; /* a reference on the root this process hosts, or NULL */
} tcp_state_t;

typedef struct tcp_bootstrap {
    mnnvl_bootstrap_t bs;
    tcp_state_t st;
} tcp_bootstrap_t;

/* ---------------------------------------------------------------------------------------- */
/* Frames                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t send_frame(tcp_state_t *st, uint16_t type, const void *fixed,
                                 size_t fixed_len, const void *data, size_t data_len,
                                 uint64_t deadline)
{
    uint8_t head[MNNVL_WIRE_HEADER_BYTES];
    uint8_t tag[MNNVL_WIRE_MAC_BYTES];
    mnnvl_wire_header(head, type, fixed_len + data_len);
    struct iovec iov[4] = {{head, sizeof(head)},
                           {(void *)fixed, fixed_len},
                           {(void *)data, data_len},
                           {tag, sizeof(tag)}};
    pthread_mutex_lock(&st->send_lock);
    mnnvl_auth_seal(&st->sess, iov, 3, tag);
    mnnvl_status_t s = mnnvl_sock_sendv_all(st->fd, iov, 4, deadline, &st->aborted);
    pthread_mutex_unlock(&st->send_lock);
    return s;
}

/* Sends a small frame now or never: for BYE and ABORT, which must not block (abort runs
 * while another thread may own the socket; the root also treats a plain close as a loss). */
static void send_frame_nowait(tcp_state_t *st, uint16_t type, const char *text)
{
    uint8_t msg[MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_MAX_TEXT + MNNVL_WIRE_MAC_BYTES];
    size_t len = text ? strnlen(text, MNNVL_WIRE_MAX_TEXT) : 0;
    mnnvl_wire_header(msg, type, len);
    if (len)
        memcpy(msg + MNNVL_WIRE_HEADER_BYTES, text, len);
    if (pthread_mutex_trylock(&st->send_lock) != 0)
        return;
    struct iovec iov = {msg, MNNVL_WIRE_HEADER_BYTES + len};
    mnnvl_auth_seal(&st->sess, &iov, 1, msg + MNNVL_WIRE_HEADER_BYTES + len);
    (void)!send(st->fd, msg, MNNVL_WIRE_HEADER_BYTES + len + MNNVL_WIRE_MAC_BYTES,
                MSG_NOSIGNAL | MSG_DONTWAIT);
    pthread_mutex_unlock(&st->send_lock);
}

/* Turns a socket failure into a sentence naming this rank and the root. */
static mnnvl_status_t connection_error(const tcp_state_t *st, mnnvl_status_t s, const char *what)
{
    if (s == MNNVL_ERR_ABORTED)
        return mnnvl_error(s,
                           "tcp bootstrap: %s on rank %d was interrupted: the communicator "
                           "was aborted",
                           what, st->rank);
    if (s == MNNVL_ERR_TIMEOUT)
        return mnnvl_error(s,
                           "tcp bootstrap: %s on rank %d timed out (timeout_ms %d) in the middle "
                           "of a message to or from the root at %s",
                           what, st->rank, st->timeout_ms, st->root_address);
    if (s == MNNVL_ERR_PEER_LOST && st->root_host[0])
        return mnnvl_error_wrap(s,
                                "tcp bootstrap: %s on rank %d: lost the connection to the root "
                                "at %s, which %s hosts (root_mode=rank0): that process died or "
                                "destroyed its communicator",
                                what, st->rank, st->root_address, st->root_host);
    return mnnvl_error_wrap(s,
                            "tcp bootstrap: %s on rank %d: lost the connection to the root at %s",
                            what, st->rank, st->root_address);
}

/* Receives the payload of the frame whose header is `head` into `out` and checks its MAC:
 * a frame altered, dropped, replayed or reordered on the way fails with AUTH. */
static mnnvl_status_t recv_sealed(tcp_state_t *st, const uint8_t *head, void *out, size_t len,
                                  uint64_t deadline, const char *what)
{
    uint8_t tag[MNNVL_WIRE_MAC_BYTES];
    mnnvl_status_t s = mnnvl_sock_recv_all(st->fd, out, len, deadline, &st->aborted);
    if (s == MNNVL_SUCCESS)
        s = mnnvl_sock_recv_all(st->fd, tag, sizeof(tag), deadline, &st->aborted);
    if (s != MNNVL_SUCCESS)
        return connection_error(st, s, what);
    struct iovec iov[2] = {{(void *)head, MNNVL_WIRE_HEADER_BYTES}, {out, len}};
    if (!mnnvl_auth_open(&st->sess, iov, 2, tag))
        return mnnvl_error(MNNVL_ERR_AUTH,
                           "tcp bootstrap: %s on rank %d: a message from the root at %s failed "
                           "authentication: it was altered, dropped, replayed or reordered on "
                           "the way",
                           what, st->rank, st->root_address);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t recv_error_frame(tcp_state_t *st, const uint8_t *head, uint64_t len,
                                       uint64_t deadline, const char *what)
{
    uint8_t msg[MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT];
    if (len < MNNVL_WIRE_ERROR_FIXED || len > sizeof(msg))
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                           "tcp bootstrap: %s on rank %d: the root at %s sent a malformed error "
                           "of %llu bytes",
                           what, st->rank, st->root_address, (unsigned long long)len);
    MNNVL_CHECK(recv_sealed(st, head, msg, (size_t)len, deadline, what));
    int32_t status = (int32_t)mnnvl_wire_get32(msg);
    int32_t who = (int32_t)mnnvl_wire_get32(msg + 4);
    if (status == MNNVL_ERR_PEER_LOST && who >= 0 && who < st->size && who != st->rank)
        atomic_store(&st->heard_lost, who + 1); /* for poll_lost */
    snprintf(st->root_said, sizeof(st->root_said), "%.*s", (int)(len - MNNVL_WIRE_ERROR_FIXED),
             (const char *)msg + MNNVL_WIRE_ERROR_FIXED);
    if (status >= 0 || status < MNNVL_ERR_INTERNAL)
        status = MNNVL_ERR_BOOTSTRAP;
    return mnnvl_error((mnnvl_status_t)status, "tcp bootstrap: %s on rank %d failed: %.*s", what,
                       st->rank, (int)(len - MNNVL_WIRE_ERROR_FIXED),
                       (const char *)msg + MNNVL_WIRE_ERROR_FIXED);
}

/* The TIMEOUT sentence, with the root's STATUS answer (`status_len` bytes) when there is
 * one: how many ranks got there, and which did not. */
static mnnvl_status_t timeout_error(const tcp_state_t *st, const char *what, uint64_t started,
                                    const uint8_t *status, size_t status_len)
{
    int waited = (int)(mnnvl_now_ms() - started);
    if (!status)
        return mnnvl_error(MNNVL_ERR_TIMEOUT,
                           "tcp bootstrap: %s on rank %d timed out after %d ms (timeout_ms %d); "
                           "the root at %s did not say how far the others got",
                           what, st->rank, waited, st->timeout_ms, st->root_address);
    int forming = status[0] == MNNVL_WIRE_PHASE_FORMING;
    int missing = (int32_t)mnnvl_wire_get32(status + 12);
    char missing_text[2 * MNNVL_WIRE_MAX_TEXT + 48] = "";
    /* The text: the missing ranks, then maybe a newline and the root's note on why (it
     * refused connections with a different job key). */
    const char *text = (const char *)status + MNNVL_WIRE_STATUS_BYTES;
    int text_len = (int)(status_len - MNNVL_WIRE_STATUS_BYTES);
    const char *nl =
        status_len > MNNVL_WIRE_STATUS_BYTES ? memchr(text, '\n', (size_t)text_len) : NULL;
    int list_len = nl ? (int)(nl - text) : text_len;
    if (status_len > MNNVL_WIRE_STATUS_BYTES)
        snprintf(missing_text, sizeof(missing_text), " (%.*s %s)%s%.*s", list_len, text,
                 forming ? "never joined" : "did not arrive", nl ? "; " : "",
                 nl ? text_len - list_len - 1 : 0, nl ? nl + 1 : "");
    else if (missing >= 0)
        snprintf(missing_text, sizeof(missing_text), " (rank %d is missing)", missing);
    return mnnvl_error(MNNVL_ERR_TIMEOUT,
                       "tcp bootstrap: %s on rank %d timed out after %d ms (timeout_ms %d): %u of "
                       "%u ranks %s at the root %s%s",
                       what, st->rank, waited, st->timeout_ms, mnnvl_wire_get32(status + 4),
                       mnnvl_wire_get32(status + 8), forming ? "joined" : "arrived",
                       st->root_address, missing_text);
}

/* Waits for the frame of type `expect` with exactly `out_len` payload bytes, which land in
 * `out`. ERROR frames become their status; stray STATUS frames (answers to a query whose
 * reply overtook them) are skipped. When the deadline passes, asks the root how far the
 * group got and reports that in the TIMEOUT sentence. */
static mnnvl_status_t await_frame(tcp_state_t *st, uint16_t expect, void *out, size_t out_len,
                                  uint64_t deadline, const char *what)
{
    uint64_t started = mnnvl_now_ms();
    int queried = 0;
    for (;;) {
        mnnvl_status_t s = mnnvl_sock_wait_readable(st->fd, deadline, &st->aborted);
        if (s == MNNVL_ERR_TIMEOUT) {
            if (queried)
                return timeout_error(st, what, started, NULL, 0);
            deadline = mnnvl_deadline_after(QUERY_GRACE_MS);
            if (send_frame(st, MNNVL_WIRE_QUERY, NULL, 0, NULL, 0, deadline) != MNNVL_SUCCESS)
                return timeout_error(st, what, started, NULL, 0);
            queried = 1;
            continue;
        }
        uint8_t head[MNNVL_WIRE_HEADER_BYTES];
        uint16_t type;
        uint64_t len;
        if (s == MNNVL_SUCCESS)
            s = mnnvl_sock_recv_all(st->fd, head, sizeof(head), deadline, &st->aborted);
        if (s != MNNVL_SUCCESS)
            return connection_error(st, s, what);
        if (mnnvl_wire_parse_header(head, &type, &len) != 0)
            return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                               "tcp bootstrap: %s on rank %d: garbled message from the root at "
                               "%s",
                               what, st->rank, st->root_address);
        if (type == MNNVL_WIRE_ERROR)
            return recv_error_frame(st, head, len, deadline, what);
        if (type == MNNVL_WIRE_STATUS && len >= MNNVL_WIRE_STATUS_BYTES &&
            len <= MNNVL_WIRE_STATUS_BYTES + MNNVL_WIRE_MAX_TEXT) {
            uint8_t status[MNNVL_WIRE_STATUS_BYTES + MNNVL_WIRE_MAX_TEXT];
            MNNVL_CHECK(recv_sealed(st, head, status, (size_t)len, deadline, what));
            if (queried)
                return timeout_error(st, what, started, status, (size_t)len);
            continue;
        }
        if (type != expect || len != out_len)
            return mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                               "tcp bootstrap: %s on rank %d: the root at %s sent message type "
                               "%u of %llu bytes, expected type %u of %zu bytes",
                               what, st->rank, st->root_address, type, (unsigned long long)len,
                               expect, out_len);
        return recv_sealed(st, head, out, out_len, deadline, what);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Joining a group                                                                          */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t send_hello(tcp_state_t *st, uint64_t deadline)
{
    uint8_t fixed[MNNVL_WIRE_HELLO_FIXED];
    mnnvl_wire_put64(fixed, st->group_id);
    mnnvl_wire_put32(fixed + 8, (uint32_t)st->rank);
    mnnvl_wire_put32(fixed + 12, (uint32_t)st->size);
    mnnvl_wire_put32(fixed + 16, (uint32_t)st->timeout_ms);
    return send_frame(st, MNNVL_WIRE_HELLO, fixed, sizeof(fixed), st->label, strlen(st->label),
                      deadline);
}

/* Connects, proves the job key, says HELLO and waits until the group formed. */
static mnnvl_status_t join_once(tcp_state_t *st, uint64_t deadline)
{
    char what[MNNVL_WIRE_MAX_LABEL + 64];
    snprintf(what, sizeof(what), "joining comm '%s' of %d ranks", st->label, st->size);
    /* The root of this process is reached over a socket pair, which it knows for its host's
     * (tcp_root.c: one outcome when rank 0 dies right after a collective). */
    mnnvl_status_t s = st->embedded
                           ? mnnvl_tcp_root_connect_local(st->embedded, &st->fd)
                           : mnnvl_sock_connect(st->root_address, deadline, &st->aborted, &st->fd);
    if (s != MNNVL_SUCCESS)
        return mnnvl_error_wrap(s, "tcp bootstrap: %s, rank %d found no root", what, st->rank);
    s = mnnvl_auth_client(st->fd, &st->key, st->root_address, deadline, &st->aborted, &st->sess);
    if (s == MNNVL_ERR_AUTH || s == MNNVL_ERR_BOOTSTRAP)
        s = mnnvl_error_wrap(s, "tcp bootstrap: %s, rank %d", what, st->rank);
    else if (s != MNNVL_SUCCESS)
        s = connection_error(st, s, what);
    if (s == MNNVL_SUCCESS) {
        s = send_hello(st, deadline);
        if (s != MNNVL_SUCCESS)
            s = connection_error(st, s, what);
    }
    if (s == MNNVL_SUCCESS) {
        uint8_t formed[4];
        s = await_frame(st, MNNVL_WIRE_FORMED, formed, sizeof(formed), deadline, what);
        if (s == MNNVL_SUCCESS && mnnvl_wire_get32(formed) != (uint32_t)st->size)
            s = mnnvl_error(MNNVL_ERR_BOOTSTRAP,
                            "tcp bootstrap: %s: the root formed the group with %u ranks", what,
                            mnnvl_wire_get32(formed));
    }
    if (s != MNNVL_SUCCESS) {
        close(st->fd);
        st->fd = -1;
    }
    return s;
}

/* A connection that drops before the group formed is retried: in root_mode=rank0 a rank
 * may reach the root of the previous communicator on the same port just as it closes. */
static mnnvl_status_t join(tcp_state_t *st, uint64_t deadline)
{
    uint64_t started = mnnvl_now_ms();
    char said[sizeof(st->root_said)] = "";
    for (;;) {
        st->root_said[0] = '\0';
        mnnvl_status_t s = join_once(st, deadline);
        if (s == MNNVL_ERR_PEER_LOST && st->root_said[0])
            memcpy(said, st->root_said, sizeof(said));
        /* The root said why the group did not form before it went (see stop_forming in
         * tcp_root.c): that, not the root's absence since, is the cause to report. */
        if (said[0] && (s == MNNVL_ERR_TIMEOUT ||
                        (s == MNNVL_ERR_PEER_LOST && mnnvl_deadline_left(deadline) == 0)))
            return mnnvl_error(MNNVL_ERR_TIMEOUT,
                               "tcp bootstrap: joining comm '%s' of %d ranks on rank %d timed out "
                               "after %d ms (timeout_ms %d): %s",
                               st->label, st->size, st->rank, (int)(mnnvl_now_ms() - started),
                               st->timeout_ms, said);
        if (s != MNNVL_ERR_PEER_LOST || mnnvl_deadline_left(deadline) == 0)
            return s;
        MNNVL_DEBUG("tcp bootstrap: rank %d reconnects: %s", st->rank, mnnvl_last_error());
        MNNVL_CHECK(mnnvl_sock_sleep(REJOIN_PAUSE_MS, deadline, &st->aborted));
    }
}

static tcp_bootstrap_t *bootstrap_new(int rank, int size, int timeout_ms)
{
    tcp_bootstrap_t *tb = calloc(1, sizeof(*tb));
    if (!tb)
        return NULL;
    tcp_state_t *st = &tb->st;
    st->fd = -1;
    atomic_init(&st->aborted, 0);
    pthread_mutex_init(&st->send_lock, NULL);
    pthread_mutex_init(&st->recv_lock, NULL);
    atomic_init(&st->heard_lost, 0);
    st->rank = rank;
    st->size = size;
    st->timeout_ms = timeout_ms;
    return tb;
}

static void bootstrap_free(tcp_bootstrap_t *tb)
{
    tcp_state_t *st = &tb->st;
    if (st->fd >= 0)
        close(st->fd);
    mnnvl_tcp_root_stop(st->embedded);
    pthread_mutex_destroy(&st->send_lock);
    pthread_mutex_destroy(&st->recv_lock);
    free(tb);
}

/* ---------------------------------------------------------------------------------------- */
/* Collectives                                                                              */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t check_usable(const tcp_state_t *st, const char *what)
{
    if (atomic_load(&st->aborted))
        return mnnvl_error(MNNVL_ERR_ABORTED,
                           "tcp bootstrap: %s on rank %d: the communicator "
                           "was aborted",
                           what, st->rank);
    if (st->broken)
        return mnnvl_error(st->broken,
                           "tcp bootstrap: %s on rank %d: an earlier failure left the "
                           "communicator unusable: %s",
                           what, st->rank, st->broken_msg);
    return MNNVL_SUCCESS;
}

/* Records a failure after which the connection is out of step with the root. A rank that
 * gives up on a collective (timed out, or got a frame that failed its MAC) says so, so that its
 * peers fail now rather than time out too. */
/* A failure of this rank's own that mark_broken announces to the root with ABORT (this rank
 * gives up), as opposed to one it only heard of (PEER_LOST). */
static int gives_up(mnnvl_status_t s)
{
    return s == MNNVL_ERR_TIMEOUT || s == MNNVL_ERR_AUTH;
}

static mnnvl_status_t mark_broken(tcp_state_t *st, mnnvl_status_t s, const char *what)
{
    st->broken = s;
    snprintf(st->broken_msg, sizeof(st->broken_msg), "%s", mnnvl_last_error());
    if (gives_up(s)) {
        char reason[128];
        if (s == MNNVL_ERR_TIMEOUT)
            snprintf(reason, sizeof(reason), "%s timed out after %d ms", what, st->timeout_ms);
        else
            snprintf(reason, sizeof(reason), "%s: a message from the root failed authentication",
                     what);
        send_frame_nowait(st, MNNVL_WIRE_ABORT, reason);
    }
    return s;
}

static mnnvl_status_t collective_locked(tcp_state_t *st, uint8_t op, int root, uint64_t bytes,
                                        const void *data, size_t data_len, void *out,
                                        size_t out_len, const char *what);

/* One collective through the root: sends `data`, receives `out_len` bytes into `out`. The
 * receive lock keeps the liveness watcher off the socket meanwhile. */
static mnnvl_status_t collective(tcp_state_t *st, uint8_t op, int root, uint64_t bytes,
                                 const void *data, size_t data_len, void *out, size_t out_len,
                                 const char *what)
{
    pthread_mutex_lock(&st->recv_lock);
    mnnvl_status_t s = collective_locked(st, op, root, bytes, data, data_len, out, out_len, what);
    pthread_mutex_unlock(&st->recv_lock);
    return s;
}

static mnnvl_status_t collective_locked(tcp_state_t *st, uint8_t op, int root, uint64_t bytes,
                                        const void *data, size_t data_len, void *out,
                                        size_t out_len, const char *what)
{
    MNNVL_CHECK(check_usable(st, what));
    uint64_t deadline = mnnvl_deadline_after(st->timeout_ms);
    uint8_t fixed[MNNVL_WIRE_COLL_FIXED] = {op};
    mnnvl_wire_put32(fixed + 4, (uint32_t)root);
    mnnvl_wire_put64(fixed + 8, bytes);
    mnnvl_status_t s =
        send_frame(st, MNNVL_WIRE_COLL, fixed, sizeof(fixed), data, data_len, deadline);
    if (s != MNNVL_SUCCESS)
        return mark_broken(st, connection_error(st, s, what), what);
    s = await_frame(st, MNNVL_WIRE_RESULT, out, out_len, deadline, what);
    /* After MISMATCH every rank got the same answer: the connection is still in step. */
    if (s != MNNVL_SUCCESS && s != MNNVL_ERR_MISMATCH)
        mark_broken(st, s, what);
    return s;
}

static mnnvl_status_t tcp_allgather(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                    size_t bytes)
{
    tcp_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "allgather of %zu bytes", bytes);
    if (bytes > MNNVL_WIRE_MAX_RESULT / (uint64_t)st->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: %s over %d ranks exceeds the root's limit of %llu "
                           "bytes per collective",
                           what, st->size, (unsigned long long)MNNVL_WIRE_MAX_RESULT);
    if (bytes > 0 && (!send || !recv))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "tcp bootstrap: %s: a buffer is NULL", what);
    return collective(st, MNNVL_WIRE_OP_ALLGATHER, 0, bytes, send, bytes, recv,
                      bytes * (size_t)st->size, what);
}

static mnnvl_status_t tcp_broadcast(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root)
{
    tcp_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "broadcast of %zu bytes from rank %d", bytes, root);
    if (root < 0 || root >= st->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: %s: the root rank is not in 0..%d", what, st->size - 1);
    if (bytes > MNNVL_WIRE_MAX_RESULT || (bytes > 0 && !buf))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: %s: the buffer is NULL or larger than %llu bytes", what,
                           (unsigned long long)MNNVL_WIRE_MAX_RESULT);
    int am_root = st->rank == root;
    return collective(st, MNNVL_WIRE_OP_BROADCAST, root, bytes, buf, am_root ? bytes : 0, buf,
                      am_root ? 0 : bytes, what);
}

static mnnvl_status_t tcp_barrier(mnnvl_bootstrap_t *bs)
{
    return collective(bs->state, MNNVL_WIRE_OP_ALLGATHER, 0, 0, NULL, 0, NULL, 0, "barrier");
}

static void tcp_abort(mnnvl_bootstrap_t *bs)
{
    tcp_state_t *st = bs->state;
    if (atomic_exchange(&st->aborted, 1))
        return;
    if (st->fd < 0)
        return;
    send_frame_nowait(st, MNNVL_WIRE_ABORT, NULL);
    /* Wakes a thread blocked in poll on this socket; the root sees the end of stream. */
    shutdown(st->fd, SHUT_RDWR);
}

static void tcp_destroy(mnnvl_bootstrap_t *bs)
{
    if (!bs)
        return;
    tcp_bootstrap_t *tb = (tcp_bootstrap_t *)bs;
    tcp_state_t *st = &tb->st;
    /* BYE tells the root this departure is not a failure, also after a failure of another
     * rank (PEER_LOST): otherwise the members still there would record this live rank as
     * dead. Not after this rank said it gave up (abort, or mark_broken's ABORT). */
    if (st->fd >= 0 && !atomic_load(&st->aborted) && !gives_up(st->broken))
        send_frame_nowait(st, MNNVL_WIRE_BYE, NULL);
    bootstrap_free(tb);
}

static mnnvl_status_t tcp_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                                mnnvl_bootstrap_t **out);
static mnnvl_status_t tcp_poll_lost(mnnvl_bootstrap_t *bs, int wait_ms, int *ranks, int capacity,
                                    int *count);

static const mnnvl_bootstrap_ops_t tcp_ops = {
    .size = sizeof(mnnvl_bootstrap_ops_t),
    .name = "tcp",
    .allgather = tcp_allgather,
    .broadcast = tcp_broadcast,
    .barrier = tcp_barrier,
    .child = tcp_child,
    .abort = tcp_abort,
    .destroy = tcp_destroy,
    .poll_lost = tcp_poll_lost,
};

static void fill_interface(tcp_bootstrap_t *tb)
{
    tb->bs.ops = &tcp_ops;
    tb->bs.rank = tb->st.rank;
    tb->bs.size = tb->st.size;
    tb->bs.state = &tb->st;
}

/* ---------------------------------------------------------------------------------------- */
/* Children                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* A child's group id: the parent's, the number of the child and the library's tag (which
 * stands for the members), so that siblings built at once, and later children with the
 * same members, are different groups at the root. */
static uint64_t child_group_id(const tcp_state_t *st, uint32_t counter, uint64_t tag)
{
    uint8_t msg[20];
    mnnvl_wire_put64(msg, st->group_id);
    mnnvl_wire_put32(msg + 8, counter);
    mnnvl_wire_put64(msg + 12, tag);
    return mnnvl_auth_public_id(GROUP_LABEL_SPLIT, msg, sizeof(msg));
}

/* The child is a new group at the same root, joined by its members alone: nothing goes
 * over the parent's connection, which may already be broken by a lost peer. */
static mnnvl_status_t tcp_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                                mnnvl_bootstrap_t **out)
{
    tcp_state_t *st = bs->state;
    *out = NULL;
    uint32_t counter = st->splits++;
    tcp_bootstrap_t *tb = bootstrap_new(child->rank, child->size, st->timeout_ms);
    if (!tb)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "tcp bootstrap: child: out of memory");
    tcp_state_t *cs = &tb->st;
    cs->key = st->key;
    cs->group_id = child_group_id(st, counter, child->tag);
    snprintf(cs->label, sizeof(cs->label), "%.64s/child%u.%d-of-%d", st->label, counter,
             child->members[0], child->size);
    memcpy(cs->root_address, st->root_address, sizeof(cs->root_address));
    memcpy(cs->root_host, st->root_host, sizeof(cs->root_host));
    if (st->embedded) {
        mnnvl_tcp_root_retain(st->embedded);
        cs->embedded = st->embedded;
    }
    mnnvl_status_t s = join(cs, mnnvl_deadline_after(st->timeout_ms));
    if (s != MNNVL_SUCCESS) {
        bootstrap_free(tb);
        return s;
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
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "tcp bootstrap: args or out is NULL");
    if (args->abi_version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: caller uses bootstrap ABI %d, this backend %d",
                           args->abi_version, MNNVL_BOOTSTRAP_ABI_VERSION);
    if (args->size < 1 || args->size > MNNVL_WIRE_MAX_RANKS || args->rank < 0 ||
        args->rank >= args->size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: rank %d of size %d is invalid (size 1..%d, rank "
                           "0..size-1)",
                           args->rank, args->size, MNNVL_WIRE_MAX_RANKS);
    if (!mnnvl_bootstrap_timeout_valid(args->timeout_ms))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: timeout_ms is %d; it must be positive",
                           args->timeout_ms);
    return MNNVL_SUCCESS;
}

/* Reads root and root_mode; `embed` tells whether this rank hosts the root. */
static mnnvl_status_t read_config(const mnnvl_bootstrap_args_t *args, const char **root,
                                  int *rank0_mode, int *embed)
{
    *root = args->config_get(args->config, "root");
    const char *mode = args->config_get(args->config, "root_mode");
    if (!*root || !**root)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: no root address: set the config key root=host:port "
                           "(or MNNVL_ROOT) to where rank 0 should listen, or start a root with "
                           "mnnvl_root_start() or mnnvl-store and pass its address with "
                           "root_mode=external");
    int rank0 = !mode || !*mode || strcmp(mode, "rank0") == 0;
    if (!rank0 && strcmp(mode, "external") != 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: root_mode '%s' is neither rank0 nor external", mode);
    char host[MNNVL_SOCK_ADDR_MAX];
    char port[8];
    MNNVL_CHECK(mnnvl_sock_split(*root, host, sizeof(host), port, sizeof(port)));
    if (rank0 && atoi(port) == 0)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "tcp bootstrap: root %s has port 0, but with root_mode=rank0 every "
                           "rank must know rank 0's port in advance; pick a fixed port",
                           *root);
    *embed = rank0 && args->rank == 0;
    *rank0_mode = rank0;
    return MNNVL_SUCCESS;
}

mnnvl_status_t mnnvl_bootstrap_tcp_create(const mnnvl_bootstrap_args_t *args,
                                          mnnvl_bootstrap_t **out)
{
    const char *root = NULL;
    int rank0_mode = 0;
    int embed = 0;
    MNNVL_CHECK(check_args(args, out));
    *out = NULL;
    MNNVL_CHECK(read_config(args, &root, &rank0_mode, &embed));

    tcp_bootstrap_t *tb = bootstrap_new(args->rank, args->size, args->timeout_ms);
    if (!tb)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "tcp bootstrap: out of memory");
    tcp_state_t *st = &tb->st;
    mnnvl_status_t ks = mnnvl_auth_derive_key(args->job_key, &st->key);
    if (ks != MNNVL_SUCCESS) {
        bootstrap_free(tb);
        return ks;
    }
    st->group_id = mnnvl_auth_public_id(GROUP_LABEL_NAME, args->comm_name, strlen(args->comm_name));
    snprintf(st->label, sizeof(st->label), "%s", args->comm_name);
    snprintf(st->root_address, sizeof(st->root_address), "%s", root);
    if (rank0_mode)
        snprintf(st->root_host, sizeof(st->root_host), "rank 0 of comm '%.*s'",
                 MNNVL_WIRE_MAX_LABEL, args->comm_name);
    st->root_is_rank0 = rank0_mode;
    if (embed) {
        mnnvl_status_t s = mnnvl_tcp_root_start(root, args->job_key, &st->embedded);
        if (s == MNNVL_SUCCESS)
            mnnvl_tcp_root_outlive_members(st->embedded);
        if (s != MNNVL_SUCCESS) {
            bootstrap_free(tb);
            return mnnvl_error_wrap(s,
                                    "tcp bootstrap: rank 0 cannot host the root at %s "
                                    "(root_mode=rank0)",
                                    root);
        }
        /* Connect to the bound numeric address: the same socket, without a name lookup. */
        snprintf(st->root_address, sizeof(st->root_address), "%s",
                 mnnvl_tcp_root_address(st->embedded));
    }
    mnnvl_status_t s = join(st, mnnvl_deadline_after(args->timeout_ms));
    if (s != MNNVL_SUCCESS) {
        bootstrap_free(tb);
        return s;
    }
    fill_interface(tb);
    *out = &tb->bs;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Fuzzing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

void mnnvl_tcp_rank_feed(int fd, int rank, int size)
{
    tcp_bootstrap_t *tb = bootstrap_new(rank, size, 1000);
    if (!tb) {
        close(fd);
        return;
    }
    tcp_state_t *st = &tb->st;
    st->fd = fd;
    snprintf(st->label, sizeof(st->label), "fuzz");
    snprintf(st->root_address, sizeof(st->root_address), "fuzz");
    /* As after a handshake of zero nonces under the empty job key: the harness seals what
     * it sends under the root's side of the same session. */
    uint8_t zero[MNNVL_WIRE_NONCE_BYTES] = {0};
    mnnvl_status_t s = mnnvl_auth_derive_key("", &st->key);
    if (s == MNNVL_SUCCESS) {
        mnnvl_auth_session(&st->key, MNNVL_AUTH_RANK, zero, zero, &st->sess);
        s = send_hello(st, mnnvl_deadline_after(st->timeout_ms));
    }
    uint8_t formed[4];
    if (s == MNNVL_SUCCESS)
        s = await_frame(st, MNNVL_WIRE_FORMED, formed, sizeof(formed),
                        mnnvl_deadline_after(st->timeout_ms), "joining");
    fill_interface(tb);
    uint8_t data[8] = {0}, all[8 * 8];
    if (s == MNNVL_SUCCESS && size <= 8)
        s = tcp_allgather(&tb->bs, data, all, sizeof(data));
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        s = tcp_broadcast(&tb->bs, data, sizeof(data), 0);
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        (void)tcp_barrier(&tb->bs);
    tcp_destroy(&tb->bs);
}

/* ---------------------------------------------------------------------------------------- */
/* Liveness                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void liveness_pause(int wait_ms)
{
    struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Moves the rank a collective or take_error_frame heard of into `ranks`. */
static void take_heard(tcp_state_t *st, int *ranks, int capacity, int *count)
{
    if (capacity < 1)
        return;
    int heard = atomic_exchange(&st->heard_lost, 0);
    if (heard > 0)
        ranks[(*count)++] = heard - 1;
}

/* With recv_lock held and the socket readable: reads an ERROR frame that arrived whole
 * between collectives, leaving any other frame (and a partial one) where it is. The frame
 * is the root's news that a rank was lost; it leaves the connection broken as a collective
 * that read it would (the root fails every later collective of the group anyway). */
static mnnvl_status_t take_error_frame(tcp_state_t *st, int wait_ms, int *ranks, int capacity,
                                       int *count)
{
    uint8_t peek[MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT +
                 MNNVL_WIRE_MAC_BYTES];
    ssize_t got = recv(st->fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
    if (atomic_load(&st->aborted)) /* abort shut the socket down: that end is ours */
        return mnnvl_error(MNNVL_ERR_ABORTED,
                           "tcp bootstrap: liveness on rank %d: the communicator was aborted",
                           st->rank);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        st->liveness_ended = 1;
        /* With root_mode=rank0 the root lives in rank 0's process: its end is rank 0's. */
        if (st->root_is_rank0 && st->rank != 0 && capacity > 0) {
            ranks[(*count)++] = 0;
            return MNNVL_SUCCESS;
        }
        return mnnvl_error(MNNVL_ERR_PEER_LOST,
                           "tcp bootstrap: liveness on rank %d: lost the connection to the root "
                           "at %s, so which ranks are alive is unknown from now on",
                           st->rank, st->root_address);
    }
    uint16_t type;
    uint64_t len;
    if (got < MNNVL_WIRE_HEADER_BYTES || mnnvl_wire_parse_header(peek, &type, &len) != 0 ||
        type != MNNVL_WIRE_ERROR || len < MNNVL_WIRE_ERROR_FIXED ||
        len > MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT ||
        (size_t)got < MNNVL_WIRE_HEADER_BYTES + len + MNNVL_WIRE_MAC_BYTES) {
        liveness_pause(wait_ms); /* not ours, or not whole yet: do not spin on it */
        return MNNVL_SUCCESS;
    }
    uint8_t head[MNNVL_WIRE_HEADER_BYTES];
    uint64_t deadline = mnnvl_deadline_after(st->timeout_ms);
    mnnvl_status_t s = mnnvl_sock_recv_all(st->fd, head, sizeof(head), deadline, &st->aborted);
    if (s == MNNVL_SUCCESS)
        s = recv_error_frame(st, head, len, deadline, "liveness");
    if (s != MNNVL_SUCCESS && !st->broken) {
        st->broken = s;
        snprintf(st->broken_msg, sizeof(st->broken_msg), "%s", mnnvl_last_error());
    }
    take_heard(st, ranks, capacity, count);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t tcp_poll_lost(mnnvl_bootstrap_t *bs, int wait_ms, int *ranks, int capacity,
                                    int *count)
{
    tcp_state_t *st = bs->state;
    *count = 0;
    if (atomic_load(&st->aborted))
        return mnnvl_error(MNNVL_ERR_ABORTED,
                           "tcp bootstrap: liveness on rank %d: the communicator was aborted",
                           st->rank);
    if (st->liveness_ended)
        return mnnvl_error(MNNVL_ERR_PEER_LOST,
                           "tcp bootstrap: liveness on rank %d: the root at %s is gone", st->rank,
                           st->root_address);
    take_heard(st, ranks, capacity, count);
    if (*count > 0)
        return MNNVL_SUCCESS;
    struct pollfd p = {.fd = st->fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms < 0 ? 0 : wait_ms) <= 0)
        return MNNVL_SUCCESS;
    if (pthread_mutex_trylock(&st->recv_lock) != 0) {
        /* A collective reads the socket: what came is its answer, or news it passes on. */
        liveness_pause(wait_ms);
        take_heard(st, ranks, capacity, count);
        return MNNVL_SUCCESS;
    }
    mnnvl_status_t s = take_error_frame(st, wait_ms, ranks, capacity, count);
    pthread_mutex_unlock(&st->recv_lock);
    return s;
}
