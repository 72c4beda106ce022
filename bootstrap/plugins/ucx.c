/* The ucx bootstrap plugin (libmnnvl-bootstrap-ucx.so): a star around rank 0 over UCX active
 * messages. libmnnvl loads it with dlopen, so the library itself never links UCX.
 * A plugin is one shared object built from one source file, hence ~950 lines here.
 *
 * Config key: root (host:port): rank 0 listens there with UCX's sockaddr listener (works
 * with UCX_TLS=tcp), the other ranks connect and say HELLO; once all arrived rank 0 answers
 * FORMED. One listener serves one communicator: communicators that exist at the same time
 * need different root ports (a root that already formed turns newcomers away, so creating
 * communicators one after another on one port works). A split's members reach their new
 * rank 0 through UCX worker addresses exchanged over the parent, without a listener.
 *
 * Collectives: each rank sends its part to rank 0 (CONTRIB), rank 0 answers everybody with
 * the result (RESULT) or an ERROR (MISMATCH). Every wait polls the worker's event fd in
 * slices until timeout_ms. Peer loss: endpoints use UCX's peer error handling, so a rank
 * that dies breaks its connection; rank 0 then tells everybody (ABORT) and every pending
 * and later call fails with PEER_LOST. abort() sends ABORT the same way.
 */
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <ucp/api/ucp.h>

#include "bootstrap/bootstrap.h"

#define EXPORT __attribute__((visibility("default")))
#define AM_ID 0x4d4e /* "MN" */
#define POLL_SLICE_MS 100
#define RETRY_PAUSE_MS 20
#define CLOSE_GRACE_MS 1000

enum { T_HELLO = 1, T_FORMED, T_REJECT, T_CONTRIB, T_RESULT, T_ERROR, T_ABORT, T_BYE };

typedef struct hdr {
    uint32_t type;
    int32_t rank;
    uint64_t seq; /* collective number; the comm id in HELLO */
    uint64_t bytes;
    int32_t status;
    int32_t size;
} hdr_t;

typedef struct msg {
    struct msg *next;
    hdr_t h;
    ucp_ep_h reply_ep;
    size_t len;
    uint8_t data[];
} msg_t;

struct ucx_state;

typedef struct peer {
    struct ucx_state *st;
    ucp_ep_h ep;
    int rank; /* -1 until its HELLO */
    int bye;
    ucs_status_t failed;
} peer_t;

typedef struct send {
    hdr_t h;
    void *req;
} send_t;

typedef struct ucx_state {
    mnnvl_bootstrap_t bs;
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_listener_h listener;
    int efd;
    peer_t **peers; /* rank 0: one per connection; others: peers[0] is rank 0 */
    int npeers, cap;
    peer_t **by_rank;
    ucp_conn_request_h conn_reqs[64];
    int nconn_reqs;
    msg_t *head, *tail;
    atomic_int aborted;
    int broken;
    char broken_msg[400];
    uint64_t seq;
    uint64_t comm_id;
    uint32_t splits;
    int timeout_ms;
    char root[300];
    void (*set_error)(mnnvl_status_t status, const char *sentence);
} ucx_state_t;

/* ---------------------------------------------------------------------------------------- */
/* Errors, time                                                                             */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t fail(ucx_state_t *st, mnnvl_status_t s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mnnvl_status_t fail(ucx_state_t *st, mnnvl_status_t s, const char *fmt, ...)
{
    char sentence[512];
    int n = snprintf(sentence, sizeof(sentence), "ucx bootstrap: rank %d: ", st->bs.rank);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sentence + n, sizeof(sentence) - (size_t)n, fmt, ap);
    va_end(ap);
    st->set_error(s, sentence);
    return s;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t hash_name(const char *name, int size)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)size;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h;
}

/* ---------------------------------------------------------------------------------------- */
/* Worker, endpoints, messages                                                              */
/* ---------------------------------------------------------------------------------------- */

static ucs_status_t on_message(void *arg, const void *header, size_t header_length, void *data,
                               size_t length, const ucp_am_recv_param_t *param)
{
    ucx_state_t *st = arg;
    if (header_length != sizeof(hdr_t) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV))
        return UCS_OK; /* not ours (we always send eager) */
    const hdr_t *h = header;
    if (h->type == T_BYE) {
        peer_t *p = NULL;
        if (st->bs.rank == 0 && st->by_rank && h->rank > 0 && h->rank < st->bs.size)
            p = st->by_rank[h->rank];
        else if (st->bs.rank != 0 && st->npeers > 0)
            p = st->peers[0];
        if (p)
            p->bye = 1;
        return UCS_OK;
    }
    msg_t *m = malloc(sizeof(*m) + length);
    if (!m)
        return UCS_OK; /* the waiter times out and says so */
    memcpy(&m->h, header, sizeof(hdr_t));
    m->reply_ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ? param->reply_ep : NULL;
    m->len = length;
    memcpy(m->data, data, length);
    m->next = NULL;
    if (st->tail)
        st->tail->next = m;
    else
        st->head = m;
    st->tail = m;
    return UCS_OK;
}

static void on_ep_error(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    peer_t *p = arg;
    p->failed = status;
}

static void on_conn_request(ucp_conn_request_h req, void *arg)
{
    ucx_state_t *st = arg;
    if (st->nconn_reqs < (int)(sizeof(st->conn_reqs) / sizeof(st->conn_reqs[0])))
        st->conn_reqs[st->nconn_reqs++] = req;
    else
        ucp_listener_reject(st->listener, req);
}

static peer_t *add_peer(ucx_state_t *st, int rank)
{
    if (st->npeers == st->cap) {
        int cap = st->cap ? 2 * st->cap : 16;
        peer_t **p = realloc(st->peers, sizeof(*p) * (size_t)cap);
        if (!p)
            return NULL;
        st->peers = p;
        st->cap = cap;
    }
    peer_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->st = st;
    p->rank = rank;
    p->failed = UCS_OK;
    st->peers[st->npeers++] = p;
    return p;
}

static mnnvl_status_t create_ep(ucx_state_t *st, peer_t *p, ucp_ep_params_t *params)
{
    params->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params->err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params->err_handler.cb = on_ep_error;
    params->err_handler.arg = p;
    ucs_status_t s = ucp_ep_create(st->worker, params, &p->ep);
    if (s != UCS_OK) {
        p->ep = NULL;
        p->failed = s;
        return fail(st, MNNVL_ERR_BOOTSTRAP, "ucp_ep_create failed: %s", ucs_status_string(s));
    }
    return MNNVL_SUCCESS;
}

static void close_ep(ucx_state_t *st, peer_t *p)
{
    if (!p->ep)
        return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = p->failed == UCS_OK ? 0 : UCP_EP_CLOSE_FLAG_FORCE};
    void *req = ucp_ep_close_nbx(p->ep, &prm);
    uint64_t deadline = now_ms() + CLOSE_GRACE_MS;
    while (UCS_PTR_IS_PTR(req) && ucp_request_check_status(req) == UCS_INPROGRESS &&
           now_ms() < deadline)
        ucp_worker_progress(st->worker);
    if (UCS_PTR_IS_PTR(req)) {
        if (ucp_request_check_status(req) == UCS_INPROGRESS)
            ucp_request_cancel(st->worker, req);
        ucp_request_free(req);
    }
    p->ep = NULL;
}

/* One step of waiting: progresses, then sleeps on the worker's event fd for at most a
 * slice. TIMEOUT after the deadline, ABORTED after abort(). */
static mnnvl_status_t step(ucx_state_t *st, uint64_t deadline, const char *what)
{
    while (ucp_worker_progress(st->worker))
        ;
    if (atomic_load(&st->aborted))
        return fail(st, MNNVL_ERR_ABORTED, "%s was interrupted: the communicator was aborted",
                    what);
    uint64_t now = now_ms();
    if (now >= deadline)
        return fail(st, MNNVL_ERR_TIMEOUT, "%s timed out (timeout_ms %d)", what, st->timeout_ms);
    if (st->head || st->nconn_reqs)
        return MNNVL_SUCCESS;
    if (ucp_worker_arm(st->worker) == UCS_OK) {
        uint64_t left = deadline - now;
        struct pollfd pfd = {.fd = st->efd, .events = POLLIN};
        poll(&pfd, 1, left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
    }
    return MNNVL_SUCCESS;
}

static void sends_free(ucx_state_t *st, send_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (UCS_PTR_IS_PTR(s[i].req)) {
            if (ucp_request_check_status(s[i].req) == UCS_INPROGRESS)
                ucp_request_cancel(st->worker, s[i].req);
            ucp_request_free(s[i].req);
        }
    }
}

/* Starts one message; `s` (header and request) must live until sends_wait. */
static void post(ucx_state_t *st, peer_t *p, send_t *s, uint32_t type, uint64_t seq,
                 int32_t status, const void *data, size_t len, int reply)
{
    s->h = (hdr_t){.type = type, .rank = st->bs.rank, .seq = seq, .bytes = len,
                   .status = status, .size = st->bs.size};
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_AM_SEND_FLAG_EAGER |
                                        (reply ? UCP_AM_SEND_FLAG_REPLY : 0)};
    s->req = p->ep ? ucp_am_send_nbx(p->ep, AM_ID, &s->h, sizeof(s->h), data, len, &prm)
                   : UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
}

static mnnvl_status_t sends_wait(ucx_state_t *st, send_t *s, int n, uint64_t deadline,
                                 const char *what)
{
    mnnvl_status_t r = MNNVL_SUCCESS;
    for (int i = 0; r == MNNVL_SUCCESS && i < n; i++) {
        while (r == MNNVL_SUCCESS && UCS_PTR_IS_PTR(s[i].req) &&
               ucp_request_check_status(s[i].req) == UCS_INPROGRESS)
            r = step(st, deadline, what);
        ucs_status_t us = UCS_PTR_IS_PTR(s[i].req) ? ucp_request_check_status(s[i].req)
                                                   : UCS_PTR_STATUS(s[i].req);
        if (r == MNNVL_SUCCESS && us != UCS_OK)
            r = fail(st, MNNVL_ERR_PEER_LOST, "%s: sending failed: %s", what,
                     ucs_status_string(us));
    }
    sends_free(st, s, n);
    return r;
}

/* Takes the first queued message matching type and seq (rank -1: any rank); an ABORT from
 * anybody ends the wait. */
static msg_t *take(ucx_state_t *st, uint32_t type, uint64_t seq, int rank, msg_t **abort_msg)
{
    for (msg_t **pp = &st->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        msg_t *m = *pp;
        int match = m->h.type == type && m->h.seq == seq && (rank < 0 || m->h.rank == rank);
        if (m->h.type == T_ABORT)
            *abort_msg = m;
        if (!match)
            continue;
        *pp = m->next;
        if (st->tail == m)
            st->tail = prev;
        return m;
    }
    return NULL;
}

/* A failed connection that did not say BYE is a lost peer. */
static peer_t *lost_peer(ucx_state_t *st)
{
    for (int i = 0; i < st->npeers; i++) {
        peer_t *p = st->peers[i];
        if (p->failed != UCS_OK && !p->bye && (p->rank >= 0 || st->bs.rank != 0))
            return p;
    }
    return NULL;
}

static void tell_everybody_abort(ucx_state_t *st, int32_t status);

/* Waits for a message; PEER_LOST on an ABORT or a lost connection (rank 0 then passes the
 * news on). */
static mnnvl_status_t await(ucx_state_t *st, uint32_t type, uint64_t seq, int rank,
                            uint64_t deadline, const char *what, msg_t **out)
{
    for (;;) {
        msg_t *abort_msg = NULL;
        msg_t *m = take(st, type, seq, rank, &abort_msg);
        if (m) {
            *out = m;
            return MNNVL_SUCCESS;
        }
        if (abort_msg)
            return fail(st, MNNVL_ERR_PEER_LOST, "%s failed: rank %d aborted the communicator",
                        what, abort_msg->h.rank);
        peer_t *waited = NULL;
        if (st->bs.rank == 0 && st->by_rank && rank > 0)
            waited = st->by_rank[rank];
        else if (st->bs.rank != 0 && st->npeers > 0)
            waited = st->peers[0];
        if (waited && waited->bye)
            return fail(st, MNNVL_ERR_PEER_LOST,
                        "%s failed: rank %d left (destroyed its communicator)", what,
                        st->bs.rank == 0 ? rank : 0);
        peer_t *lost = lost_peer(st);
        if (lost) {
            int who = st->bs.rank == 0 ? lost->rank : 0;
            if (st->bs.rank == 0)
                tell_everybody_abort(st, MNNVL_ERR_PEER_LOST);
            return fail(st, MNNVL_ERR_PEER_LOST,
                        "%s failed: the connection to rank %d broke (%s): it died or left",
                        what, who, ucs_status_string(lost->failed));
        }
        mnnvl_status_t s = step(st, deadline, what);
        if (s != MNNVL_SUCCESS)
            return s;
    }
}

static void tell_everybody_abort(ucx_state_t *st, int32_t status)
{
    send_t *s = calloc((size_t)st->npeers, sizeof(*s));
    if (!s)
        return;
    int n = 0;
    for (int i = 0; i < st->npeers; i++)
        if (st->peers[i]->failed == UCS_OK && st->peers[i]->ep)
            post(st, st->peers[i], &s[n++], T_ABORT, 0, status, NULL, 0, 0);
    uint64_t deadline = now_ms() + CLOSE_GRACE_MS;
    for (int i = 0; i < n; i++)
        while (UCS_PTR_IS_PTR(s[i].req) && ucp_request_check_status(s[i].req) == UCS_INPROGRESS &&
               now_ms() < deadline)
            ucp_worker_progress(st->worker);
    sends_free(st, s, n);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Collectives                                                                              */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t check_usable(ucx_state_t *st, const char *what)
{
    if (atomic_load(&st->aborted))
        return fail(st, MNNVL_ERR_ABORTED, "%s: the communicator was aborted", what);
    if (st->broken)
        return fail(st, MNNVL_ERR_PEER_LOST, "%s: an earlier failure left the communicator "
                                             "unusable: %s",
                    what, st->broken_msg);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t broken(ucx_state_t *st, mnnvl_status_t s, const char *sentence)
{
    if (s != MNNVL_SUCCESS && s != MNNVL_ERR_MISMATCH && !st->broken) {
        st->broken = 1;
        snprintf(st->broken_msg, sizeof(st->broken_msg), "%s", sentence);
        if (s == MNNVL_ERR_TIMEOUT)
            tell_everybody_abort(st, MNNVL_ERR_TIMEOUT);
    }
    return s;
}

/* Rank 0's side: gathers the parts of `writers` (every rank, or only `root`), then sends
 * every other rank `out_len` bytes of `out`, or an ERROR when the sizes disagree. */
static mnnvl_status_t hub_round(ucx_state_t *st, int root, const void *mine, size_t bytes,
                                void *out, uint64_t deadline, const char *what)
{
    int size = st->bs.size;
    uint64_t seq = st->seq;
    int mismatch_rank = -1;
    uint64_t mismatch_bytes = 0;
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (root < 0 && bytes)
        memcpy(out, mine, bytes);
    for (int r = 1; r < size && s == MNNVL_SUCCESS; r++) {
        if (root >= 0 && r != root)
            continue;
        msg_t *m = NULL;
        s = await(st, T_CONTRIB, seq, r, deadline, what, &m);
        if (s != MNNVL_SUCCESS)
            break;
        if (m->len != bytes && mismatch_rank < 0) {
            mismatch_rank = r;
            mismatch_bytes = m->len;
        } else if (m->len == bytes && bytes) {
            memcpy((uint8_t *)out + (root < 0 ? (size_t)r * bytes : 0), m->data, bytes);
        }
        free(m);
    }
    if (s != MNNVL_SUCCESS)
        return s;
    char text[200] = "";
    if (mismatch_rank >= 0)
        snprintf(text, sizeof(text), "%s: rank %d passed %llu bytes but rank 0 passed %zu", what,
                 mismatch_rank, (unsigned long long)mismatch_bytes, bytes);
    size_t out_len = root < 0 ? bytes * (size_t)size : bytes;
    send_t *sends = calloc((size_t)size, sizeof(*sends));
    if (!sends)
        return fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory", what);
    for (int r = 1; r < size; r++) {
        if (mismatch_rank >= 0)
            post(st, st->by_rank[r], &sends[r - 1], T_ERROR, seq, MNNVL_ERR_MISMATCH, text,
                 strlen(text) + 1, 0);
        else
            post(st, st->by_rank[r], &sends[r - 1], T_RESULT, seq, 0, out, out_len, 0);
    }
    s = sends_wait(st, sends, size - 1, deadline, what);
    free(sends);
    if (s == MNNVL_SUCCESS && mismatch_rank >= 0)
        s = fail(st, MNNVL_ERR_MISMATCH, "%s", text);
    return s;
}

/* Another rank's side: sends its part (when it has one) and waits for the answer. */
static mnnvl_status_t member_round(ucx_state_t *st, int send_part, const void *mine,
                                   size_t bytes, void *out, size_t out_len, uint64_t deadline,
                                   const char *what)
{
    uint64_t seq = st->seq;
    send_t sent = {0};
    msg_t *m = NULL;
    if (send_part)
        post(st, st->peers[0], &sent, T_CONTRIB, seq, 0, mine, bytes, 0);
    mnnvl_status_t s = send_part ? sends_wait(st, &sent, 1, deadline, what) : MNNVL_SUCCESS;
    /* The answer is RESULT or ERROR: wait for whichever comes. */
    while (s == MNNVL_SUCCESS && !m) {
        msg_t *abort_msg = NULL;
        m = take(st, T_ERROR, seq, 0, &abort_msg);
        if (m) {
            s = fail(st, (mnnvl_status_t)m->h.status, "%.*s", (int)m->len, (char *)m->data);
            break;
        }
        s = await(st, T_RESULT, seq, 0, now_ms() + POLL_SLICE_MS < deadline
                                                 ? now_ms() + POLL_SLICE_MS : deadline,
                  what, &m);
        if (s == MNNVL_ERR_TIMEOUT && now_ms() < deadline)
            s = MNNVL_SUCCESS;
    }
    if (s == MNNVL_SUCCESS && m->len != out_len)
        s = fail(st, MNNVL_ERR_MISMATCH, "%s: rank 0 sent %zu bytes, expected %zu", what,
                 m->len, out_len);
    if (s == MNNVL_SUCCESS && out_len)
        memcpy(out, m->data, out_len);
    free(m);
    return s;
}

static mnnvl_status_t run_round(ucx_state_t *st, int root, const void *mine, size_t bytes,
                                void *out, const char *what)
{
    mnnvl_status_t s = check_usable(st, what);
    if (s != MNNVL_SUCCESS)
        return s;
    uint64_t deadline = now_ms() + (uint64_t)st->timeout_ms;
    if (st->bs.rank == 0)
        s = hub_round(st, root, mine, bytes, out, deadline, what);
    else if (root < 0)
        s = member_round(st, 1, mine, bytes, out, bytes * (size_t)st->bs.size, deadline, what);
    else
        s = member_round(st, st->bs.rank == root, mine, bytes, out, bytes, deadline, what);
    st->seq++;
    return broken(st, s, what);
}

static mnnvl_status_t ucx_allgather(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                    size_t bytes)
{
    char what[64];
    snprintf(what, sizeof(what), "allgather of %zu bytes", bytes);
    return run_round(bs->state, -1, send, bytes, recv, what);
}

static mnnvl_status_t ucx_broadcast(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root)
{
    ucx_state_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "broadcast of %zu bytes from rank %d", bytes, root);
    if (root < 0 || root >= bs->size)
        return fail(st, MNNVL_ERR_INVALID_ARGUMENT, "%s: the root is not in 0..%d", what,
                    bs->size - 1);
    if (bs->size == 1)
        return check_usable(st, what);
    return run_round(st, root, buf, bytes, buf, what);
}

static mnnvl_status_t ucx_barrier(mnnvl_bootstrap_t *bs)
{
    return run_round(bs->state, -1, NULL, 0, NULL, "barrier");
}

/* Tells the others and fails this rank's calls. The messages go out when this rank's
 * thread next progresses the worker (UCX workers are single-threaded here). */
static void ucx_abort(mnnvl_bootstrap_t *bs)
{
    ucx_state_t *st = bs->state;
    atomic_store(&st->aborted, 1);
}

static void state_free(ucx_state_t *st)
{
    for (int i = 0; i < st->npeers; i++) {
        close_ep(st, st->peers[i]);
        free(st->peers[i]);
    }
    for (int i = 0; i < st->nconn_reqs; i++)
        ucp_listener_reject(st->listener, st->conn_reqs[i]);
    if (st->listener)
        ucp_listener_destroy(st->listener);
    while (st->head) {
        msg_t *m = st->head;
        st->head = m->next;
        free(m);
    }
    if (st->worker)
        ucp_worker_destroy(st->worker);
    if (st->ctx)
        ucp_cleanup(st->ctx);
    free(st->peers);
    free(st->by_rank);
    free(st);
}

static void ucx_destroy(mnnvl_bootstrap_t *bs)
{
    if (!bs)
        return;
    ucx_state_t *st = bs->state;
    /* BYE makes the departure graceful; an aborted rank sends ABORT instead. */
    int aborted = atomic_load(&st->aborted);
    if (aborted && !st->broken)
        tell_everybody_abort(st, MNNVL_ERR_ABORTED);
    else if (!st->broken) {
        send_t *s = calloc((size_t)st->npeers + 1, sizeof(*s));
        int n = 0;
        for (int i = 0; s && i < st->npeers; i++)
            if (st->peers[i]->failed == UCS_OK && st->peers[i]->ep)
                post(st, st->peers[i], &s[n++], T_BYE, 0, 0, NULL, 0, 0);
        if (s)
            sends_wait(st, s, n, now_ms() + CLOSE_GRACE_MS, "leaving");
        free(s);
    }
    state_free(st);
}

/* ---------------------------------------------------------------------------------------- */
/* Forming a communicator                                                                   */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t sockaddr_of(ucx_state_t *st, const char *address, int passive,
                                  struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256], port[16];
    const char *colon = strrchr(address, ':');
    size_t hl = colon ? (size_t)(colon - address) : 0;
    if (!colon || hl >= sizeof(host) || strlen(colon + 1) >= sizeof(port))
        return fail(st, MNNVL_ERR_INVALID_ARGUMENT,
                    "root '%s' is not host:port; set the config key root (MNNVL_ROOT)",
                    address);
    memcpy(host, address, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res)
        return fail(st, MNNVL_ERR_INVALID_ARGUMENT, "cannot resolve root '%s': %s", address,
                    gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t open_worker(ucx_state_t *st)
{
    /* Communicators created one after another listen on the same root port, which is still
     * held by the previous one's closed connections (TIME_WAIT). UCX 1.13 takes this
     * transport option from the environment only (ucp_config_modify does not reach it); a
     * value the user set wins. */
    setenv("UCX_TCP_CM_REUSEADDR", "y", 0);
    ucp_config_t *config = NULL;
    ucs_status_t us = ucp_config_read(NULL, NULL, &config);
    ucp_params_t params = {.field_mask = UCP_PARAM_FIELD_FEATURES,
                           .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP};
    if (us == UCS_OK)
        us = ucp_init(&params, config, &st->ctx);
    if (config)
        ucp_config_release(config);
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    if (us == UCS_OK)
        us = ucp_worker_create(st->ctx, &wp, &st->worker);
    if (us == UCS_OK)
        us = ucp_worker_get_efd(st->worker, &st->efd);
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG |
                                               UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
                                 .id = AM_ID, .cb = on_message, .arg = st,
                                 .flags = UCP_AM_FLAG_WHOLE_MSG};
    if (us == UCS_OK)
        us = ucp_worker_set_am_recv_handler(st->worker, &hp);
    if (us != UCS_OK)
        return fail(st, MNNVL_ERR_BOOTSTRAP, "cannot open a UCX worker: %s",
                    ucs_status_string(us));
    return MNNVL_SUCCESS;
}

/* Rank 0: accepts connections and HELLOs until every rank joined, then says FORMED. */
static mnnvl_status_t hub_form(ucx_state_t *st, uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    mnnvl_status_t s = sockaddr_of(st, st->root, 1, &ss, &len);
    if (s != MNNVL_SUCCESS)
        return s;
    ucp_listener_params_t lp = {.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
                                              UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
                                .sockaddr = {.addr = (struct sockaddr *)&ss, .addrlen = len},
                                .conn_handler = {.cb = on_conn_request, .arg = st}};
    ucs_status_t us;
    /* The previous communicator's listener on this port may still be closing. */
    while ((us = ucp_listener_create(st->worker, &lp, &st->listener)) != UCS_OK) {
        if (now_ms() >= deadline)
            return fail(st, MNNVL_ERR_BOOTSTRAP, "cannot listen on root %s: %s", st->root,
                        ucs_status_string(us));
        struct timespec pause = {0, RETRY_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    int joined = 1;
    while (joined < st->bs.size) {
        while (st->nconn_reqs > 0) {
            peer_t *p = add_peer(st, -1);
            ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST,
                                  .conn_request = st->conn_reqs[--st->nconn_reqs]};
            if (!p)
                return fail(st, MNNVL_ERR_NO_MEMORY, "out of memory");
            create_ep(st, p, &ep);
        }
        msg_t *abort_msg = NULL;
        msg_t *m = take(st, T_HELLO, st->comm_id, -1, &abort_msg);
        if (!m) {
            for (msg_t *x = st->head; x; x = x->next) {
                if (x->h.type == T_HELLO) { /* another communicator: turn it away */
                    m = take(st, T_HELLO, x->h.seq, x->h.rank, &abort_msg);
                    break;
                }
            }
            if (m) {
                m->h.rank = -1;
            } else {
                s = step(st, deadline, "joining");
                if (s != MNNVL_SUCCESS)
                    return fail(st, s, "joining as rank 0 on root %s: %d of %d ranks arrived "
                                       "within timeout_ms %d",
                                st->root, joined, st->bs.size, st->timeout_ms);
                continue;
            }
        }
        peer_t *p = NULL;
        for (int i = 0; i < st->npeers; i++)
            if (st->peers[i]->ep == m->reply_ep)
                p = st->peers[i];
        int r = m->h.rank;
        int ok = p && r > 0 && r < st->bs.size && m->h.size == st->bs.size &&
                 !st->by_rank[r];
        if (p && ok) {
            p->rank = r;
            st->by_rank[r] = p;
            joined++;
        } else if (p) {
            send_t rej = {0};
            post(st, p, &rej, T_REJECT, m->h.seq, 0, NULL, 0, 0);
            sends_wait(st, &rej, 1, now_ms() + CLOSE_GRACE_MS, "turning a stranger away");
            p->bye = 1;
        }
        free(m);
    }
    send_t *sends = calloc((size_t)st->bs.size, sizeof(*sends));
    if (!sends)
        return fail(st, MNNVL_ERR_NO_MEMORY, "out of memory");
    for (int r = 1; r < st->bs.size; r++)
        post(st, st->by_rank[r], &sends[r - 1], T_FORMED, st->comm_id, 0, NULL, 0, 0);
    s = sends_wait(st, sends, st->bs.size - 1, deadline, "joining");
    free(sends);
    return s;
}

/* Other ranks: connect and say HELLO until rank 0 of this communicator answers FORMED. */
static mnnvl_status_t member_join(ucx_state_t *st, uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    mnnvl_status_t s = sockaddr_of(st, st->root, 0, &ss, &len);
    if (s != MNNVL_SUCCESS)
        return s;
    peer_t *p = add_peer(st, 0);
    if (!p)
        return fail(st, MNNVL_ERR_NO_MEMORY, "out of memory");
    for (;;) {
        p->failed = UCS_OK;
        p->bye = 0;
        ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_FLAGS |
                                            UCP_EP_PARAM_FIELD_SOCK_ADDR,
                              .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
                              .sockaddr = {.addr = (struct sockaddr *)&ss, .addrlen = len}};
        s = create_ep(st, p, &ep);
        send_t hello = {0};
        if (s == MNNVL_SUCCESS)
            post(st, p, &hello, T_HELLO, st->comm_id, 0, NULL, 0, 1);
        int formed = 0;
        while (s == MNNVL_SUCCESS && !formed && p->failed == UCS_OK) {
            msg_t *abort_msg = NULL;
            msg_t *m = take(st, T_FORMED, st->comm_id, 0, &abort_msg);
            msg_t *rej = m ? NULL : take(st, T_REJECT, st->comm_id, 0, &abort_msg);
            formed = m != NULL;
            free(m);
            if (rej) {
                free(rej);
                break;
            }
            if (!formed)
                s = step(st, deadline, "joining");
        }
        sends_free(st, &hello, 1);
        if (formed)
            return MNNVL_SUCCESS;
        p->failed = p->failed == UCS_OK ? UCS_ERR_REJECTED : p->failed;
        close_ep(st, p);
        if (s != MNNVL_SUCCESS)
            return fail(st, s, "joining: rank 0 did not form the communicator at root %s within "
                               "timeout_ms %d",
                        st->root, st->timeout_ms);
        struct timespec pause = {0, RETRY_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void fill_interface(ucx_state_t *st);

static ucx_state_t *state_new(const ucx_state_t *like, int rank, int size, int timeout_ms)
{
    ucx_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->by_rank = calloc((size_t)size, sizeof(*st->by_rank));
    if (!st->by_rank) {
        free(st);
        return NULL;
    }
    atomic_init(&st->aborted, 0);
    st->bs.rank = rank;
    st->bs.size = size;
    st->timeout_ms = timeout_ms;
    st->efd = -1;
    st->set_error = like->set_error;
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Split: the members of a child reach its rank 0 through worker addresses                  */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t ucx_split(mnnvl_bootstrap_t *bs, int color, int key,
                                mnnvl_bootstrap_t **child)
{
    ucx_state_t *st = bs->state;
    *child = NULL;
    int size = bs->size;
    int32_t mine[2] = {color, key};
    int32_t *all = malloc(sizeof(mine) * (size_t)size);
    uint64_t *lens = malloc(sizeof(uint64_t) * (size_t)size);
    if (!all || !lens) {
        free(all);
        free(lens);
        return fail(st, MNNVL_ERR_NO_MEMORY, "split: out of memory");
    }
    mnnvl_status_t s = ucx_allgather(bs, mine, all, sizeof(mine));
    int child_rank = 0, child_size = 0, child_root = -1;
    for (int p = 0; s == MNNVL_SUCCESS && p < size; p++) {
        if (all[2 * p] != color || color < 0)
            continue;
        child_size++;
        if (all[2 * p + 1] < key || (all[2 * p + 1] == key && p < bs->rank))
            child_rank++;
    }
    ucx_state_t *cs = NULL;
    ucp_address_t *addr = NULL;
    size_t addr_len = 0;
    if (s == MNNVL_SUCCESS && color >= 0) {
        cs = state_new(st, child_rank, child_size, st->timeout_ms);
        s = cs ? open_worker(cs) : fail(st, MNNVL_ERR_NO_MEMORY, "split: out of memory");
        if (s == MNNVL_SUCCESS && ucp_worker_get_address(cs->worker, &addr, &addr_len) != UCS_OK)
            s = fail(st, MNNVL_ERR_BOOTSTRAP, "split: no UCX worker address");
    }
    uint64_t my_len = addr_len, max_len = 0;
    if (s == MNNVL_SUCCESS)
        s = ucx_allgather(bs, &my_len, lens, sizeof(my_len));
    for (int p = 0; s == MNNVL_SUCCESS && p < size; p++)
        max_len = lens[p] > max_len ? lens[p] : max_len;
    uint8_t *slot = s == MNNVL_SUCCESS ? calloc(1, max_len + 1) : NULL;
    uint8_t *addrs = s == MNNVL_SUCCESS ? malloc((max_len + 1) * (size_t)size) : NULL;
    if (s == MNNVL_SUCCESS && (!slot || !addrs))
        s = fail(st, MNNVL_ERR_NO_MEMORY, "split: out of memory");
    if (s == MNNVL_SUCCESS && addr_len)
        memcpy(slot, addr, addr_len);
    if (s == MNNVL_SUCCESS)
        s = ucx_allgather(bs, slot, addrs, max_len + 1);
    /* Child rank 0 connects to every member, every member to child rank 0. */
    for (int p = 0; s == MNNVL_SUCCESS && cs && p < size; p++) {
        if (all[2 * p] != color || p == bs->rank)
            continue;
        int r = 0;
        for (int q = 0; q < size; q++)
            if (all[2 * q] == color &&
                (all[2 * q + 1] < all[2 * p + 1] || (all[2 * q + 1] == all[2 * p + 1] && q < p)))
                r++;
        if (child_rank != 0 && r != 0)
            continue;
        peer_t *peer = add_peer(cs, r);
        ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS,
                              .address = (ucp_address_t *)(addrs + (size_t)p * (max_len + 1))};
        s = peer ? create_ep(cs, peer, &ep) : fail(st, MNNVL_ERR_NO_MEMORY, "out of memory");
        if (s == MNNVL_SUCCESS && child_rank == 0)
            cs->by_rank[r] = peer;
        child_root = r == 0 ? p : child_root;
    }
    (void)child_root;
    if (addr)
        ucp_worker_release_address(cs->worker, addr);
    free(all);
    free(lens);
    free(slot);
    free(addrs);
    if (s != MNNVL_SUCCESS || !cs) {
        if (cs)
            state_free(cs);
        return s;
    }
    snprintf(cs->root, sizeof(cs->root), "%.200s (split %u)", st->root, st->splits++);
    fill_interface(cs);
    *child = &cs->bs;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Create                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void fill_interface(ucx_state_t *st)
{
    mnnvl_bootstrap_t *bs = &st->bs;
    bs->abi_version = MNNVL_BOOTSTRAP_ABI_VERSION;
    bs->name = "ucx";
    bs->allgather = ucx_allgather;
    bs->broadcast = ucx_broadcast;
    bs->barrier = ucx_barrier;
    bs->split = ucx_split;
    bs->abort = ucx_abort;
    bs->destroy = ucx_destroy;
    bs->state = st;
}

EXPORT mnnvl_status_t mnnvl_bootstrap_plugin_create(const mnnvl_bootstrap_args_t *args,
                                                    mnnvl_bootstrap_t **out)
{
    if (!args || !out || args->abi_version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return MNNVL_ERR_INVALID_ARGUMENT;
    *out = NULL;
    ucx_state_t like = {.set_error = args->set_error};
    like.bs.rank = args->rank;
    if (args->size < 1 || args->rank < 0 || args->rank >= args->size || args->timeout_ms <= 0)
        return fail(&like, MNNVL_ERR_INVALID_ARGUMENT, "rank %d of size %d, timeout_ms %d",
                    args->rank, args->size, args->timeout_ms);
    const char *root = args->config_get(args->config, "root");
    if (!root || !root[0])
        return fail(&like, MNNVL_ERR_INVALID_ARGUMENT,
                    "no root address: set the config key root=host:port (MNNVL_ROOT) to where "
                    "rank 0 listens");
    ucx_state_t *st = state_new(&like, args->rank, args->size, args->timeout_ms);
    if (!st)
        return fail(&like, MNNVL_ERR_NO_MEMORY, "out of memory");
    snprintf(st->root, sizeof(st->root), "%s", root);
    st->comm_id = hash_name(args->comm_name, args->size);
    uint64_t deadline = now_ms() + (uint64_t)args->timeout_ms;
    mnnvl_status_t s = open_worker(st);
    if (s == MNNVL_SUCCESS && args->size > 1)
        s = args->rank == 0 ? hub_form(st, deadline) : member_join(st, deadline);
    if (s != MNNVL_SUCCESS) {
        state_free(st);
        return s;
    }
    fill_interface(st);
    *out = &st->bs;
    return MNNVL_SUCCESS;
}
