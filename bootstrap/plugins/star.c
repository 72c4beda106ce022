/* The star protocol of the ucx and ofi plugins; see star.h. About 1350 lines: one state
 * machine (forming with its job-key handshake, which a child's meeting runs too, frame
 * authentication, collectives, failures, children, liveness) whose parts share the same
 * static send and wait helpers; splitting it would make those helpers an internal
 * interface. */
#include "star.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h" /* base/ */

/* How long abort() from another thread may take to hand its ABORTs over. */
#define ABORT_GRACE_MS 200
/* A joining member says HELLO (or PROOF) again this often until rank 0 answers: rxm reports
 * a first send into a connection whose peer endpoint was not ready yet as sent, and drops
 * it (seen under load); rank 0 answers a repeated one with the same CHALLENGE. A child's
 * member repeats its HELLO for another reason too: a message for a child that its process
 * has not built yet is dropped there. */
#define RESEND_MS 250

/* ---------------------------------------------------------------------------------------- */
/* Communicators, messages                                                                  */
/* ---------------------------------------------------------------------------------------- */

mnnvl_status_t star_init(star_t *st, const star_ops_t *ops, pthread_mutex_t *lock, int rank,
                         int size, int timeout_ms, void (*set_error)(mnnvl_status_t, const char *))
{
    st->ops = ops;
    st->lock = lock;
    st->bs.rank = rank;
    st->bs.size = size;
    st->timeout_ms = timeout_ms;
    st->set_error = set_error;
    st->abort_origin = -1;
    st->abort_seq = 0;
    st->decided = 0;
    atomic_init(&st->aborted, 0);
    st->token = star_new_token();
    st->peers = calloc((size_t)size, sizeof(*st->peers));
    if (!st->peers)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "out of memory for %d peers", size);
    return MNNVL_SUCCESS;
}

void star_release(star_t *st)
{
    while (st->head) {
        star_msg_t *m = st->head;
        st->head = m->next;
        free(m);
    }
    free(st->peers);
    st->peers = NULL;
    free(st->table);
    st->table = NULL;
    free(st->news);
    st->news = NULL;
}

mnnvl_status_t star_begin(star_t *like, const star_ops_t *ops, const mnnvl_bootstrap_args_t *args,
                          mnnvl_bootstrap_t **out)
{
    if (!args || !out || args->abi_version != MNNVL_BOOTSTRAP_ABI_VERSION)
        return MNNVL_ERR_INVALID_ARGUMENT;
    *out = NULL;
    memset(like, 0, sizeof(*like));
    like->ops = ops;
    like->set_error = args->set_error;
    like->bs.rank = args->rank;
    if (args->size < 1 || args->rank < 0 || args->rank >= args->size ||
        !mnnvl_bootstrap_timeout_valid(args->timeout_ms))
        return star_fail(like, MNNVL_ERR_INVALID_ARGUMENT, "rank %d of size %d, timeout_ms %d",
                         args->rank, args->size, args->timeout_ms);
    const char *root = args->config_get(args->config, "root");
    if (!root || !root[0])
        return star_fail(like, MNNVL_ERR_INVALID_ARGUMENT,
                         "no root address: set the config key root=host:port (MNNVL_ROOT) to where "
                         "rank 0 listens");
    if (strlen(root) >= sizeof(like->root))
        return star_fail(like, MNNVL_ERR_INVALID_ARGUMENT, "root '%.40s...' is longer than %zu",
                         root, sizeof(like->root) - 1);
    snprintf(like->root, sizeof(like->root), "%s", root);
    if (mnnvl_auth_derive_key(args->job_key, &like->key) != MNNVL_SUCCESS)
        return star_fail(like, MNNVL_ERR_BOOTSTRAP, "libsodium failed to initialize (sodium_init)");
    return MNNVL_SUCCESS;
}

void star_take_like(star_t *st, const star_t *like)
{
    snprintf(st->root, sizeof(st->root), "%s", like->root);
    st->key = like->key;
}

int star_register(star_t *st, star_registry_t *r, int locked)
{
    if (!locked)
        pthread_mutex_lock(st->lock);
    int rc = star_registry_add(r, st);
    if (!locked)
        pthread_mutex_unlock(st->lock);
    return rc;
}

mnnvl_status_t star_finish(star_t *st, mnnvl_status_t s, star_lobby_t *lobby,
                           const mnnvl_bootstrap_args_t *args, uint64_t deadline,
                           mnnvl_bootstrap_t **out)
{
    if (s == MNNVL_SUCCESS)
        s = star_form(st, lobby, args->comm_name, deadline);
    if (s != MNNVL_SUCCESS) {
        st->ops->free(st);
        return s;
    }
    star_fill_interface(st);
    *out = &st->bs;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Frame authentication                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* The handshake's messages (and PING, which carries nothing and is dropped on arrival)
 * travel without a MAC; everything else carries one. */
static int is_sealed(uint32_t type)
{
    return type != STAR_HELLO && type != STAR_CHALLENGE && type != STAR_PROOF &&
           type != STAR_REJECT && type != STAR_PING;
}

/* What a frame's MAC covers: its header without the transport's field and the tag, then
 * its payload. */
static int frame_iov(const star_hdr_t *h, star_hdr_t *copy, const void *data, size_t len,
                     struct iovec iov[2])
{
    *copy = *h;
    copy->aux = 0;
    memset(copy->mac, 0, sizeof(copy->mac));
    iov[0] = (struct iovec){.iov_base = copy, .iov_len = sizeof(*copy)};
    iov[1] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
    return len ? 2 : 1;
}

/* Seals s under the session of its link (authenticated types), then hands it to the
 * transport. A link without a session sends nothing sealed: rank 0 only answers members
 * that proved, and a member only talks to rank 0 once it proved. */
static void start(star_t *st, star_send_t *s)
{
    if (is_sealed(s->h.type)) {
        star_peer_t *p = &st->peers[s->to];
        star_hdr_t copy;
        struct iovec iov[2];
        s->h.fseq = p->sess.send_seq;
        memset(s->h.mac, 0, sizeof(s->h.mac));
        int n =
            frame_iov(&s->h, &copy, s->buf ? s->buf->data : NULL, s->buf ? s->buf->len : 0, iov);
        mnnvl_auth_seal_seq(&p->sess, iov, n, s->h.mac);
    }
    st->ops->send_start(st, s);
}

/* 1 when m is an authentic frame of a peer with a session; records why when it is not. */
static int authentic(star_t *st, const star_msg_t *m)
{
    int from = m->h.rank;
    if (from < 0 || from >= st->bs.size || from == st->bs.rank || !st->peers[from].authed ||
        (st->bs.rank != 0 && from != 0))
        return 0; /* no session with it (a stale frame, or a stranger): nothing to trust */
    star_hdr_t copy;
    struct iovec iov[2];
    int n = frame_iov(&m->h, &copy, m->data, m->len, iov);
    if (mnnvl_auth_open_seq(&st->peers[from].sess, m->h.fseq, iov, n, m->h.mac))
        return 1;
    if (!st->forged[0])
        snprintf(st->forged, sizeof(st->forged),
                 "a message (type %u, %zu bytes) that says it came from rank %d failed "
                 "authentication: it was altered, replayed or forged on the way (only a process "
                 "with the job key can make one that passes)",
                 m->h.type, m->len, from);
    return 0;
}

/* 1 when a handshake message may be what this rank waits for now. */
static int handshake_expected(const star_t *st, const star_msg_t *m)
{
    if (st->formed)
        return 0;
    if (st->bs.rank == 0) /* a child's HELLOs come here; a top-level one's, to its lobby */
        return m->h.type == STAR_PROOF || (m->h.type == STAR_HELLO && st->is_child);
    return (m->h.type == STAR_CHALLENGE || m->h.type == STAR_REJECT) && m->h.rank == 0;
}

/* Liveness news about `rank` (poll_lost reports it once). */
static void mark_dead(star_t *st, int rank)
{
    if (rank >= 0 && rank < st->bs.size && rank != st->bs.rank)
        st->peers[rank].dead = 1;
}

void star_deliver(star_t *st, star_msg_t *m)
{
    int from = m->h.rank;
    int known = from >= 0 && from < st->bs.size;
    if (is_sealed(m->h.type) ? !authentic(st, m) : !handshake_expected(st, m)) {
        free(m);
        return;
    }
    if (m->h.type == STAR_BYE || m->h.type == STAR_ABORT || m->h.type == STAR_LOST) {
        if (m->h.type == STAR_BYE && known)
            st->peers[from].bye = 1;
        if (m->h.type == STAR_ABORT && st->abort_origin < 0) {
            st->abort_origin = m->h.origin;
            st->abort_status = m->h.status;
            st->abort_seq = m->h.seq;
        }
        /* A rank that aborted counts as lost, as in the tcp root; LOST comes from rank 0
         * only (authentic() takes nothing else on a member). */
        if (m->h.type == STAR_ABORT || (m->h.type == STAR_LOST && st->bs.rank != 0))
            mark_dead(st, m->h.origin);
        free(m);
        return;
    }
    m->next = NULL;
    if (st->tail)
        st->tail->next = m;
    else
        st->head = m;
    st->tail = m;
}

/* The first queued message of type a or b with this seq from `rank`. */
static star_msg_t *take(star_t *st, uint32_t a, uint32_t b, uint64_t seq, int rank)
{
    star_msg_t *prev = NULL;
    for (star_msg_t *m = st->head; m; prev = m, m = m->next) {
        if ((m->h.type != a && m->h.type != b) || m->h.seq != seq || m->h.rank != rank)
            continue;
        if (prev)
            prev->next = m->next;
        else
            st->head = m->next;
        if (st->tail == m)
            st->tail = prev;
        return m;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Sending and waiting                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void fill(star_t *st, star_send_t *s, int to, uint32_t type, uint64_t seq, int32_t status,
                 star_buf_t *buf)
{
    memset(s, 0, sizeof(*s));
    s->to = to;
    s->buf = star_buf_ref(buf);
    s->h = (star_hdr_t){.type = type,
                        .rank = st->bs.rank,
                        .dst = st->peers[to].token,
                        .src = st->token,
                        .seq = seq,
                        .bytes = buf ? buf->len : 0,
                        .status = status,
                        .size = st->bs.size,
                        .origin = st->bs.rank};
}

static void end(star_t *st, star_send_t *s)
{
    if (s->op)
        st->ops->send_end(st, s);
    s->op = NULL;
    star_buf_unref(s->buf);
    s->buf = NULL;
}

/* NULL while nothing is known to be wrong with the link to `rank`. */
static const char *link_lost(star_t *st, int rank)
{
    const char *why = st->ops->link_broken(st, rank);
    return why ? why : st->peers[rank].lost[0] ? st->peers[rank].lost : NULL;
}

/* Keeps a PING in flight to `rank` for transports that learn of a dead peer only by
 * sending to it; a failed PING marks the link lost. Returns when the next one is due. */
static uint64_t ping(star_t *st, int rank)
{
    star_peer_t *p = &st->peers[rank];
    if (!st->ops->ping_ms || p->bye)
        return UINT64_MAX;
    if (p->ping.op) {
        int r = st->ops->send_test(st, &p->ping);
        if (r < 0 && !p->lost[0])
            snprintf(p->lost, sizeof(p->lost), "%s", p->ping.why);
        if (r != 0)
            end(st, &p->ping);
    }
    uint64_t now = star_now_ms();
    if (!p->ping.op && now >= p->ping_at) {
        fill(st, &p->ping, rank, STAR_PING, 0, 0, NULL);
        start(st, &p->ping);
        p->ping_at = now + (uint64_t)st->ops->ping_ms;
    }
    return p->ping_at;
}

/* Sends a batch and waits until every message is out. PEER_LOST when one fails. */
static mnnvl_status_t send_all(star_t *st, star_send_t *s, int n, uint64_t deadline,
                               const char *what)
{
    for (int i = 0; i < n; i++)
        start(st, &s[i]);
    mnnvl_status_t r = MNNVL_SUCCESS;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n && r == MNNVL_SUCCESS; i++) {
            int t = s[i].op ? st->ops->send_test(st, &s[i]) : 1;
            pending += t == 0;
            if (t < 0) {
                snprintf(st->peers[s[i].to].lost, sizeof(st->peers[0].lost), "%s", s[i].why);
                r = star_fail(st, MNNVL_ERR_PEER_LOST, "%s: sending to rank %d failed: %s", what,
                              s[i].to, s[i].why);
            }
        }
        if (r != MNNVL_SUCCESS || !pending)
            break;
        if (atomic_load(&st->aborted)) {
            r = star_fail(st, MNNVL_ERR_ABORTED, "%s was interrupted: the communicator was aborted",
                          what);
            break;
        }
        if (star_now_ms() >= deadline) {
            r = star_fail(st, MNNVL_ERR_TIMEOUT, "%s: sending timed out (timeout_ms %d)", what,
                          st->timeout_ms);
            break;
        }
        st->ops->wait(st, deadline);
    }
    for (int i = 0; i < n; i++)
        end(st, &s[i]);
    return r;
}

/* Sends one message to each rank in `to` (n of them) and waits. */
static mnnvl_status_t send_to(star_t *st, const int *to, int n, uint32_t type, uint64_t seq,
                              int32_t status, star_buf_t *buf, uint64_t deadline, const char *what)
{
    star_send_t *s = calloc((size_t)n, sizeof(*s));
    if (!s && n)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory", what);
    for (int i = 0; i < n; i++)
        fill(st, &s[i], to[i], type, seq, status, buf);
    mnnvl_status_t r = send_all(st, s, n, deadline, what);
    free(s);
    return r;
}

/* Sends a batch on the way out (ABORT, BYE) without ever releasing the lock: abort() runs
 * on another thread than the owner, who may destroy the communicator as soon as the lock
 * is free. Waits at most grace_ms for the sends to be handed over, polling; what is still
 * in flight then finishes in the transport. Best effort, and quiet: a peer that cannot be
 * told finds out by its own means (link, timeout). */
static void send_leaving(star_t *st, const int *to, int n, uint32_t type, uint64_t seq,
                         int32_t status, int origin, int grace_ms)
{
    star_send_t *s = calloc((size_t)n, sizeof(*s));
    if (!s)
        return;
    st->quiet++;
    for (int i = 0; i < n; i++) {
        fill(st, &s[i], to[i], type, seq, status, NULL);
        s[i].h.origin = origin;
        start(st, &s[i]);
    }
    uint64_t deadline = star_now_ms() + (uint64_t)grace_ms;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += s[i].op && st->ops->send_test(st, &s[i]) == 0;
        if (!pending || star_now_ms() >= deadline)
            break;
        st->ops->poll(st);
        sched_yield();
    }
    for (int i = 0; i < n; i++)
        end(st, &s[i]);
    st->quiet--;
    free(s);
}

/* Tells the peers that this communicator failed (once): rank 0 tells every member but the
 * one where the failure started, a member tells rank 0, which passes it on. The ABORT fails
 * the first collective this rank has not decided: the earlier ones stand. */
static void tell_abort(star_t *st, int32_t status, int origin, int grace_ms)
{
    if (st->told_abort || st->bs.size == 1)
        return;
    st->told_abort = 1;
    int *to = calloc((size_t)st->bs.size, sizeof(*to));
    int n = 0;
    for (int r = st->bs.rank == 0 ? 1 : 0; to && r < st->bs.size; r++) {
        star_peer_t *p = &st->peers[r];
        if (p->joined && r != origin && !p->bye && !link_lost(st, r))
            to[n++] = r;
        if (st->bs.rank != 0)
            break;
    }
    if (n)
        send_leaving(st, to, n, STAR_ABORT, st->decided, status, origin, grace_ms);
    free(to);
}

/* Waits for a message of type a or b from `rank`; PEER_LOST on an ABORT, a BYE of that
 * rank or a lost link (rank 0 then tells every member). */
static mnnvl_status_t await(star_t *st, uint32_t a, uint32_t b, uint64_t seq, int rank,
                            uint64_t deadline, const char *what, star_msg_t **out)
{
    for (;;) {
        if (st->forged[0]) {
            if (st->bs.rank == 0)
                tell_abort(st, MNNVL_ERR_AUTH, st->bs.rank, STAR_CLOSE_GRACE_MS);
            return star_fail(st, MNNVL_ERR_AUTH, "%s failed: %s", what, st->forged);
        }
        /* An ABORT fails the call even when its message is already here: the peer that
         * aborted may have sent its part first. Except on a member for a collective that
         * rank 0 had decided before it failed: that RESULT is here or on its way. */
        int decided_before_abort = st->bs.rank != 0 && st->abort_seq > seq;
        if (st->abort_origin >= 0 && !decided_before_abort) {
            if (st->bs.rank == 0)
                tell_abort(st, st->abort_status, st->abort_origin, STAR_CLOSE_GRACE_MS);
            const char *how = st->abort_status == MNNVL_ERR_PEER_LOST ? "died or left"
                              : st->abort_status == MNNVL_ERR_TIMEOUT ? "timed out"
                                                                      : "aborted";
            int relayed = st->bs.rank != 0 && st->abort_origin != 0;
            return star_fail(st, MNNVL_ERR_PEER_LOST, "%s failed: rank %d %s (%s%s)", what,
                             st->abort_origin, how, star_status_name(st->abort_status),
                             relayed ? ", passed on by rank 0" : "");
        }
        star_msg_t *m = take(st, a, b, seq, rank);
        if (m) {
            *out = m;
            return MNNVL_SUCCESS;
        }
        if (st->peers[rank].bye)
            return star_fail(st, MNNVL_ERR_PEER_LOST,
                             "%s failed: rank %d left (destroyed its communicator)", what, rank);
        for (int r = 0; r < st->bs.size; r++) {
            const char *why = r != st->bs.rank && st->peers[r].joined && !st->peers[r].bye
                                  ? link_lost(st, r)
                                  : NULL;
            if (!why)
                continue;
            char because[200];
            snprintf(because, sizeof(because), "%s", why);
            if (st->bs.rank == 0)
                tell_abort(st, MNNVL_ERR_PEER_LOST, r, STAR_CLOSE_GRACE_MS);
            return star_fail(st, MNNVL_ERR_PEER_LOST,
                             "%s failed: the link to rank %d broke (%s): it died or left", what, r,
                             because);
        }
        if (atomic_load(&st->aborted))
            return star_fail(st, MNNVL_ERR_ABORTED,
                             "%s was interrupted: the communicator was aborted", what);
        if (star_now_ms() >= deadline)
            return star_fail(st, MNNVL_ERR_TIMEOUT,
                             "%s timed out waiting for rank %d (timeout_ms %d)", what, rank,
                             st->timeout_ms);
        uint64_t next_ping = ping(st, rank);
        st->ops->wait(st, next_ping < deadline ? next_ping : deadline);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Collectives                                                                              */
/* ---------------------------------------------------------------------------------------- */

static mnnvl_status_t check_usable(star_t *st, const char *what)
{
    if (atomic_load(&st->aborted))
        return star_fail(st, MNNVL_ERR_ABORTED, "%s: the communicator was aborted", what);
    if (st->broken)
        return star_fail(st, MNNVL_ERR_PEER_LOST,
                         "%s: an earlier failure left the communicator unusable: %s", what,
                         st->broken_msg);
    return MNNVL_SUCCESS;
}

/* After a failed call: a timed-out or aborted rank tells the others, so that they fail now
 * instead of at their own deadline; MISMATCH leaves the communicator usable. */
static mnnvl_status_t after(star_t *st, mnnvl_status_t s, const char *what)
{
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH || s == MNNVL_ERR_INVALID_ARGUMENT ||
        st->broken)
        return s;
    st->broken = 1;
    snprintf(st->broken_msg, sizeof(st->broken_msg), "%s failed with %s", what,
             star_status_name(s));
    if (s == MNNVL_ERR_TIMEOUT || s == MNNVL_ERR_ABORTED || s == MNNVL_ERR_AUTH)
        tell_abort(st, s, st->bs.rank, STAR_CLOSE_GRACE_MS);
    return s;
}

/* Rank 0: gathers the parts of every member (root < 0) or of `root`, then sends every
 * member the result, or an ERROR when the byte counts disagree. */
static mnnvl_status_t hub_round(star_t *st, int root, const void *mine, size_t bytes, void *out,
                                uint64_t deadline, const char *what)
{
    int size = st->bs.size;
    int mismatch = -1;
    uint64_t mismatch_bytes = 0;
    if (root < 0 && bytes && out != mine)
        memcpy(out, mine, bytes);
    for (int r = 1; r < size; r++) {
        if (root >= 0 && r != root)
            continue;
        star_msg_t *m = NULL;
        mnnvl_status_t s = await(st, STAR_CONTRIB, STAR_CONTRIB, st->seq, r, deadline, what, &m);
        if (s != MNNVL_SUCCESS)
            return s;
        if (m->len != bytes && mismatch < 0) {
            mismatch = r;
            mismatch_bytes = m->len;
        } else if (m->len == bytes && bytes) {
            memcpy((uint8_t *)out + (root < 0 ? (size_t)r * bytes : 0), m->data, bytes);
        }
        free(m);
    }
    char text[200] = "";
    if (mismatch >= 0)
        snprintf(text, sizeof(text), "%s: rank %d passed %llu bytes but rank 0 passed %zu", what,
                 mismatch, (unsigned long long)mismatch_bytes, bytes);
    size_t out_len = root < 0 ? bytes * (size_t)size : bytes;
    const void *result = root == 0 ? mine : out;
    star_buf_t *buf =
        mismatch >= 0 ? star_buf_copy(text, strlen(text) + 1) : star_buf_copy(result, out_len);
    int *to = malloc(sizeof(*to) * (size_t)size);
    if ((!buf && (mismatch >= 0 || out_len)) || !to) {
        star_buf_unref(buf);
        free(to);
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", what, out_len);
    }
    for (int r = 1; r < size; r++)
        to[r - 1] = r;
    /* The collective is decided here, now: its outcome stands for every rank. A member that
     * cannot take its answer has died, left or stalled; its link (or its own timeout and
     * ABORT) fails the next collective, not this one, which the other members may already
     * have completed. Providers whose send completion waits for the peer (sockets) fail such
     * a send even after the peer got it. */
    st->decided = st->seq + 1;
    mnnvl_status_t s = send_to(st, to, size - 1, mismatch >= 0 ? STAR_ERROR : STAR_RESULT, st->seq,
                               mismatch >= 0 ? MNNVL_ERR_MISMATCH : 0, buf, deadline, what);
    if (s == MNNVL_ERR_PEER_LOST || s == MNNVL_ERR_TIMEOUT || s == MNNVL_ERR_ABORTED)
        s = MNNVL_SUCCESS;
    star_buf_unref(buf);
    free(to);
    if (s == MNNVL_SUCCESS && mismatch >= 0)
        s = star_fail(st, MNNVL_ERR_MISMATCH, "%s", text);
    return s;
}

/* A member: sends its part (when it has one) and waits for the answer. */
static mnnvl_status_t member_round(star_t *st, int send_part, const void *mine, size_t bytes,
                                   void *out, size_t out_len, uint64_t deadline, const char *what)
{
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (send_part) {
        star_buf_t *buf = star_buf_copy(mine, bytes);
        if (bytes && !buf)
            return star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", what,
                             bytes);
        int zero = 0;
        s = send_to(st, &zero, 1, STAR_CONTRIB, st->seq, 0, buf, deadline, what);
        star_buf_unref(buf);
    }
    star_msg_t *m = NULL;
    if (s == MNNVL_SUCCESS)
        s = await(st, STAR_RESULT, STAR_ERROR, st->seq, 0, deadline, what, &m);
    if (s == MNNVL_SUCCESS)
        st->decided = st->seq + 1; /* rank 0's answer is this collective's outcome */
    if (s == MNNVL_SUCCESS && m->h.type == STAR_ERROR)
        s = star_fail(st, (mnnvl_status_t)m->h.status, "%.*s", (int)m->len, (char *)m->data);
    else if (s == MNNVL_SUCCESS && m->len != out_len)
        s = star_fail(st, MNNVL_ERR_MISMATCH, "%s: rank 0 sent %zu bytes, expected %zu", what,
                      m->len, out_len);
    else if (s == MNNVL_SUCCESS && out_len)
        memcpy(out, m->data, out_len);
    free(m);
    return s;
}

/* One collective with the lock held: root < 0 for allgather/barrier, else broadcast. */
static mnnvl_status_t round_locked(star_t *st, int root, const void *mine, size_t bytes, void *out,
                                   const char *what)
{
    mnnvl_status_t s = check_usable(st, what);
    if (s != MNNVL_SUCCESS)
        return s;
    uint64_t deadline = star_now_ms() + (uint64_t)st->timeout_ms;
    if (st->bs.size == 1) {
        if (root < 0 && bytes && out != mine)
            memcpy(out, mine, bytes);
    } else if (st->bs.rank == 0) {
        s = hub_round(st, root, mine, bytes, out, deadline, what);
    } else if (root < 0) {
        s = member_round(st, 1, mine, bytes, out, bytes * (size_t)st->bs.size, deadline, what);
    } else {
        s = member_round(st, st->bs.rank == root, mine, bytes, out, bytes, deadline, what);
    }
    st->seq++;
    return after(st, s, what);
}

static mnnvl_status_t round_(star_t *st, int root, const void *mine, size_t bytes, void *out,
                             const char *what)
{
    pthread_mutex_lock(st->lock);
    mnnvl_status_t s = round_locked(st, root, mine, bytes, out, what);
    pthread_mutex_unlock(st->lock);
    return s;
}

static mnnvl_status_t star_allgather(mnnvl_bootstrap_t *bs, const void *send, void *recv,
                                     size_t bytes)
{
    char what[64];
    snprintf(what, sizeof(what), "allgather of %zu bytes", bytes);
    return round_(bs->state, -1, send, bytes, recv, what);
}

static mnnvl_status_t star_broadcast(mnnvl_bootstrap_t *bs, void *buf, size_t bytes, int root)
{
    star_t *st = bs->state;
    char what[64];
    snprintf(what, sizeof(what), "broadcast of %zu bytes from rank %d", bytes, root);
    if (root < 0 || root >= bs->size)
        return star_fail(st, MNNVL_ERR_INVALID_ARGUMENT, "%s: the root is not in 0..%d", what,
                         bs->size - 1);
    return round_(st, root, buf, bytes, buf, what);
}

static mnnvl_status_t star_barrier(mnnvl_bootstrap_t *bs)
{
    return round_(bs->state, -1, NULL, 0, NULL, "barrier");
}

/* ---------------------------------------------------------------------------------------- */
/* Forming: the job-key handshake, for a top-level communicator and for a child alike       */
/* ---------------------------------------------------------------------------------------- */

uint64_t star_comm_id(const char *name, int size)
{
    uint64_t h = mnnvl_hash_str(MNNVL_HASH_SEED ^ (uint64_t)size, name);
    return h ? h : 1;
}

/* What a handshake forms. A top-level communicator: its rank 0 takes the HELLOs from the
 * root's lobby and links each sender from the address in it (adopt); a member links to the
 * root (connect_root) and says HELLO {its address, nonce}. A child: it comes from the
 * parent's table without any message over the parent, so a child of a parent whose ranks
 * died still forms; its rank 0 takes the HELLOs from its own queue and links each member
 * from the table entry that the member's list names for it; a member says HELLO {its list
 * of members, nonce}. Both then run the same CHALLENGE, PROOF, FORMED, with a fresh
 * session per link from the job key and both nonces, and REJECT for a wrong proof (AUTH)
 * or, in a child, another list of members (MISMATCH). */
typedef struct meet {
    star_lobby_t *lobby;                  /* top level */
    star_t *parent;                       /* a child: the parent whose table links it */
    const mnnvl_bootstrap_child_t *child; /* a child: this rank's list of its members */
    uint32_t counter;                     /* a child: its number among the parent's children */
    char *other;      /* child rank 0, by rank: the HELLO it challenged carried another list */
    const char *what; /* "joining", "forming the child" */
} meet_t;

static mnnvl_status_t link_member(star_t *st, star_t *cs, int r, int p, uint32_t counter);

/* Rank 0, a HELLO: links its sender as rank r and challenges it with a fresh nonce (a later
 * HELLO for a rank replaces an earlier one: that process gave up and came back). The
 * HELLO's payload ends with the sender's nonce. A HELLO sent again (same sender, same
 * nonce: the member got no CHALLENGE yet) gets the same CHALLENGE again, so that whichever
 * copy the member answers, its proof is over the nonces kept here; one from a member that
 * already proved is dropped. */
static void hub_challenge(star_t *st, meet_t *mt, star_msg_t *m, int *joined, uint64_t deadline)
{
    int r = m->h.rank;
    if (r <= 0 || r >= st->bs.size || m->h.size != st->bs.size || m->len < MNNVL_WIRE_NONCE_BYTES)
        return; /* the communicator id covers the size: only a hash collision or a stranger */
    star_peer_t *p = &st->peers[r];
    m->len -= MNNVL_WIRE_NONCE_BYTES;
    const uint8_t *rank_nonce = m->data + m->len;
    int in_parent = -1; /* a child: the member's rank in the parent, by its own list */
    int other_list = 0;
    if (mt->parent) {
        size_t list_bytes = sizeof(int) * (size_t)st->bs.size;
        int list_r = -1;
        if (m->len == list_bytes)
            memcpy(&list_r, m->data + sizeof(int) * (size_t)r, sizeof(int));
        if (list_r < 0 || list_r >= mt->parent->bs.size)
            return; /* not a member's HELLO: only a hash collision */
        in_parent = list_r;
        other_list = memcmp(m->data, mt->child->members, list_bytes) != 0;
    }
    int again = (p->joined || p->challenged) && m->h.src == p->token &&
                mnnvl_auth_equal(rank_nonce, p->rank_nonce, MNNVL_WIRE_NONCE_BYTES);
    if (again && p->joined)
        return;
    if (!again) {
        if (p->joined || p->challenged)
            st->ops->unlink(st, r);
        if (p->joined)
            (*joined)--;
        p->joined = p->challenged = p->authed = 0;
        memcpy(p->rank_nonce, rank_nonce, MNNVL_WIRE_NONCE_BYTES);
        st->quiet++;
        mnnvl_status_t s = mt->parent ? link_member(mt->parent, st, r, in_parent, mt->counter)
                                      : st->ops->adopt(st, m);
        st->quiet--;
        if (s != MNNVL_SUCCESS)
            return; /* a sender that cannot be reached is skipped */
        p->token = m->h.src;
        mnnvl_auth_random(p->root_nonce, sizeof(p->root_nonce));
        p->challenged = 1;
        if (mt->other) /* the latest HELLO counts: a stranger's earlier one is replaced */
            mt->other[r] = (char)other_list;
    }
    /* Bounded: a member whose CHALLENGE does not go out says HELLO again. */
    uint64_t until = star_now_ms() + STAR_CLOSE_GRACE_MS;
    star_buf_t *nonce = star_buf_copy(p->root_nonce, sizeof(p->root_nonce));
    p->lost[0] = '\0';
    st->quiet++;
    if (nonce)
        send_to(st, &r, 1, STAR_CHALLENGE, st->comm_id, 0, nonce,
                until < deadline ? until : deadline, "challenging");
    st->quiet--;
    p->lost[0] = '\0';
    star_buf_unref(nonce);
}

/* Rank 0, a challenged member's PROOF: a right one makes it a member with a session; a
 * wrong one is answered REJECT (AUTH) and fails this rank too, at once. */
static mnnvl_status_t hub_check_proof(star_t *st, const meet_t *mt, star_msg_t *m, int *joined)
{
    int r = m->h.rank;
    star_peer_t *p = &st->peers[r];
    if (m->h.src != p->token || p->joined)
        return MNNVL_SUCCESS; /* a stale one, or one sent again by a member that proved */
    uint8_t expected[MNNVL_WIRE_PROOF_BYTES];
    mnnvl_auth_proof(&st->key, MNNVL_AUTH_RANK, p->rank_nonce, p->root_nonce, expected);
    p->challenged = 0;
    if (m->len == sizeof(expected) && mnnvl_auth_equal(m->data, expected, sizeof(expected))) {
        mnnvl_auth_session(&st->key, MNNVL_AUTH_ROOT, p->rank_nonce, p->root_nonce, &p->sess);
        p->authed = p->joined = 1;
        (*joined)++;
        return MNNVL_SUCCESS;
    }
    send_leaving(st, &r, 1, STAR_REJECT, st->comm_id, MNNVL_ERR_AUTH, st->bs.rank,
                 STAR_CLOSE_GRACE_MS);
    st->ops->unlink(st, r);
    tell_abort(st, MNNVL_ERR_AUTH, r, STAR_CLOSE_GRACE_MS); /* the members that proved */
    return star_fail(st, MNNVL_ERR_AUTH,
                     "%s as rank 0 on root %s: the process that joined as rank %d proved a "
                     "different job key; every rank of a job must be given the same job_key "
                     "(MNNVL_JOB_KEY)",
                     mt->what, st->root, r);
}

/* The next HELLO for rank 0: from the lobby (top level) or from a child's own queue. */
static star_msg_t *next_hello(star_t *st, const meet_t *mt)
{
    if (mt->lobby)
        return star_lobby_take(mt->lobby, st->comm_id);
    star_msg_t *m = NULL;
    for (int r = 1; r < st->bs.size && !m; r++)
        m = take(st, STAR_HELLO, STAR_HELLO, st->comm_id, r);
    return m;
}

/* Rank 0: challenges each member that says HELLO, takes its proof, and once every rank
 * proved answers FORMED (or, in a child where a member has another list, REJECT). */
static mnnvl_status_t hub_form(star_t *st, meet_t *mt, uint64_t deadline)
{
    int joined = 1;
    while (joined < st->bs.size) {
        star_msg_t *m = next_hello(st, mt);
        if (m) {
            hub_challenge(st, mt, m, &joined, deadline);
            free(m);
            continue;
        }
        for (int r = 1; r < st->bs.size && !m; r++)
            if (st->peers[r].challenged || st->peers[r].joined)
                m = take(st, STAR_PROOF, STAR_PROOF, st->comm_id, r);
        if (m) {
            mnnvl_status_t s = hub_check_proof(st, mt, m, &joined);
            free(m);
            if (s != MNNVL_SUCCESS)
                return s;
            continue;
        }
        if (atomic_load(&st->aborted))
            return star_fail(st, MNNVL_ERR_ABORTED,
                             "%s was interrupted: the communicator was aborted", mt->what);
        if (star_now_ms() >= deadline)
            return star_fail(st, MNNVL_ERR_TIMEOUT,
                             "%s as rank 0 on root %s: %d of %d ranks arrived and proved the job "
                             "key within timeout_ms %d",
                             mt->what, st->root, joined, st->bs.size, st->timeout_ms);
        st->ops->wait(st, deadline);
    }
    int *to = malloc(sizeof(*to) * (size_t)st->bs.size);
    if (!to)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory", mt->what);
    for (int r = 1; r < st->bs.size; r++)
        to[r - 1] = r;
    int differs = -1;
    for (int r = 1; mt->other && r < st->bs.size && differs < 0; r++)
        differs = mt->other[r] ? r : -1;
    mnnvl_status_t s =
        send_to(st, to, st->bs.size - 1, differs < 0 ? STAR_FORMED : STAR_REJECT, st->comm_id,
                differs < 0 ? 0 : MNNVL_ERR_MISMATCH, NULL, deadline, mt->what);
    free(to);
    if (s == MNNVL_SUCCESS && differs >= 0)
        s = star_fail(st, MNNVL_ERR_MISMATCH, "%s: its rank %d has other members than this rank 0",
                      mt->what, differs);
    return s;
}

/* A member, rank 0's CHALLENGE: keeps its nonce and the session that follows from both
 * nonces (rank 0's proof is FORMED's MAC under it). */
static mnnvl_status_t member_challenged(star_t *st, star_msg_t *m, const uint8_t *nonce)
{
    star_peer_t *root = &st->peers[0];
    if (m->len != MNNVL_WIRE_NONCE_BYTES)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP,
                         "joining: rank 0 at root %s sent a challenge of %zu bytes, expected %d",
                         st->root, m->len, MNNVL_WIRE_NONCE_BYTES);
    root->token = m->h.src;
    memcpy(root->rank_nonce, nonce, MNNVL_WIRE_NONCE_BYTES);
    memcpy(root->root_nonce, m->data, MNNVL_WIRE_NONCE_BYTES);
    mnnvl_auth_session(&st->key, MNNVL_AUTH_RANK, root->rank_nonce, root->root_nonce, &root->sess);
    root->authed = 1;
    return MNNVL_SUCCESS;
}

/* A member: proves the job key over both nonces (again, while FORMED does not come: a
 * transport may lose a first message into a fresh connection). */
static mnnvl_status_t member_prove(star_t *st, uint64_t deadline)
{
    star_peer_t *root = &st->peers[0];
    uint8_t proof[MNNVL_WIRE_PROOF_BYTES];
    mnnvl_auth_proof(&st->key, MNNVL_AUTH_RANK, root->rank_nonce, root->root_nonce, proof);
    star_buf_t *buf = star_buf_copy(proof, sizeof(proof));
    if (!buf)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "joining: out of memory");
    int zero = 0;
    mnnvl_status_t s = send_to(st, &zero, 1, STAR_PROOF, st->comm_id, 0, buf, deadline, "joining");
    star_buf_unref(buf);
    return s;
}

/* A member's answer from rank 0: FORMED (it passed its MAC in star_deliver: rank 0 holds
 * the key) or REJECT. */
static mnnvl_status_t member_answered(star_t *st, const meet_t *mt, star_msg_t *m)
{
    star_peer_t *root = &st->peers[0];
    root->joined = m->h.type == STAR_FORMED && root->authed;
    root->token = m->h.src;
    if (m->h.type == STAR_REJECT && m->h.status == MNNVL_ERR_AUTH)
        return star_fail(st, MNNVL_ERR_AUTH,
                         "%s: rank 0 at root %s refused this rank's proof of the job key: this "
                         "rank's job_key differs from rank 0's",
                         mt->what, st->root);
    if (m->h.type == STAR_REJECT && m->h.status == MNNVL_ERR_MISMATCH && mt->parent)
        return star_fail(st, MNNVL_ERR_MISMATCH, "%s: its rank 0 has other members than this rank",
                         mt->what);
    if (!root->joined)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "%s: rank 0 at root %s turned this rank away",
                         mt->what, st->root);
    return MNNVL_SUCCESS;
}

/* A member: says HELLO, proves the key when challenged, until rank 0 answers FORMED. At the
 * top level it links to the root first, and a link that breaks before FORMED (nobody
 * listens there yet) is made again, with a fresh nonce; a child's member is linked to its
 * rank 0 from the parent's table already, and a broken link fails it. */
static mnnvl_status_t member_join(star_t *st, const meet_t *mt, uint64_t deadline)
{
    size_t list_bytes = mt->parent ? sizeof(int) * (size_t)st->bs.size : 0;
    size_t cap = (mt->parent ? list_bytes : STAR_ADDRESS_MAX) + MNNVL_WIRE_NONCE_BYTES;
    uint8_t *payload = malloc(cap);
    if (!payload)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory", mt->what);
    size_t len = STAR_ADDRESS_MAX;
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (mt->parent) {
        memcpy(payload, mt->child->members, list_bytes);
        len = list_bytes;
    } else {
        s = st->ops->address(st, payload, &len);
    }
    star_peer_t *root = &st->peers[0];
    while (s == MNNVL_SUCCESS && !root->joined) {
        uint8_t *nonce = payload + len;
        mnnvl_auth_random(nonce, MNNVL_WIRE_NONCE_BYTES);
        star_buf_t *hello = star_buf_copy(payload, len + MNNVL_WIRE_NONCE_BYTES);
        if (!hello) {
            s = star_fail(st, MNNVL_ERR_NO_MEMORY, "%s: out of memory", mt->what);
            break;
        }
        if (!mt->parent) {
            s = st->ops->connect_root(st, deadline);
            if (s != MNNVL_SUCCESS) {
                star_buf_unref(hello);
                break;
            }
            root->token = 0; /* the lobby */
        }
        root->lost[0] = '\0';
        root->authed = 0;
        star_send_t hs;
        fill(st, &hs, 0, STAR_HELLO, st->comm_id, 0, hello);
        start(st, &hs);
        int sent = 0;
        uint64_t resend_at = star_now_ms() + RESEND_MS;
        while (s == MNNVL_SUCCESS) {
            if (!sent) {
                int t = st->ops->send_test(st, &hs);
                if (t < 0)
                    snprintf(root->lost, sizeof(root->lost), "%s", hs.why);
                sent = t > 0;
            }
            star_msg_t *m =
                root->authed ? NULL : take(st, STAR_CHALLENGE, STAR_CHALLENGE, st->comm_id, 0);
            if (m) {
                s = member_challenged(st, m, nonce);
                free(m);
                if (s == MNNVL_SUCCESS)
                    s = member_prove(st, deadline);
                resend_at = star_now_ms() + RESEND_MS;
                continue;
            }
            if (st->forged[0]) {
                s = star_fail(st, MNNVL_ERR_AUTH, "%s at root %s: %s", mt->what, st->root,
                              st->forged);
                break;
            }
            if (st->abort_origin >= 0) {
                s = star_fail(st, MNNVL_ERR_PEER_LOST,
                              "%s at root %s failed: rank 0 gave up forming (%s, because of "
                              "rank %d)",
                              mt->what, st->root, star_status_name(st->abort_status),
                              st->abort_origin);
                break;
            }
            m = take(st, STAR_FORMED, STAR_REJECT, st->comm_id, 0);
            if (m) {
                s = member_answered(st, mt, m);
                free(m);
                break;
            }
            const char *lost = link_lost(st, 0);
            if (lost && mt->parent)
                s = star_fail(st, MNNVL_ERR_PEER_LOST, "%s: %s", mt->what, lost);
            if (lost)
                break;
            if (star_now_ms() >= resend_at && star_now_ms() < deadline) {
                /* Nothing yet: the HELLO or the PROOF may have been lost (see RESEND_MS). */
                resend_at = star_now_ms() + RESEND_MS;
                if (root->authed) {
                    s = member_prove(st, deadline);
                } else if (sent) {
                    end(st, &hs);
                    fill(st, &hs, 0, STAR_HELLO, st->comm_id, 0, hello);
                    start(st, &hs);
                    sent = 0;
                }
                continue;
            }
            if (atomic_load(&st->aborted))
                s = star_fail(st, MNNVL_ERR_ABORTED,
                              "%s was interrupted: the communicator was aborted", mt->what);
            else if (star_now_ms() >= deadline)
                s = star_fail(st, MNNVL_ERR_TIMEOUT,
                              "%s: rank 0 did not form the communicator at root %s within "
                              "timeout_ms %d%s%s",
                              mt->what, st->root, st->timeout_ms, root->lost[0] ? ": " : "",
                              root->lost);
            else
                st->ops->wait(st, resend_at < deadline ? resend_at : deadline);
        }
        end(st, &hs);
        star_buf_unref(hello);
        if (s == MNNVL_SUCCESS && !root->joined) {
            root->authed = 0;
            st->ops->unlink(st, 0);
            pthread_mutex_unlock(st->lock);
            star_pause_ms(STAR_RETRY_PAUSE_MS);
            pthread_mutex_lock(st->lock);
        }
    }
    free(payload);
    return s;
}

static mnnvl_status_t learn_peers_locked(star_t *st);

mnnvl_status_t star_form(star_t *st, star_lobby_t *lobby, const char *comm_name, uint64_t deadline)
{
    st->comm_id = star_comm_id(comm_name, st->bs.size);
    st->peers[st->bs.rank].joined = 1;
    st->peers[st->bs.rank].token = st->token;
    meet_t top = {.lobby = lobby, .what = "joining"};
    pthread_mutex_lock(st->lock);
    mnnvl_status_t s = st->bs.size == 1   ? MNNVL_SUCCESS
                       : st->bs.rank == 0 ? hub_form(st, &top, deadline)
                                          : member_join(st, &top, deadline);
    st->formed = 1;
    if (s == MNNVL_SUCCESS)
        s = learn_peers_locked(st);
    pthread_mutex_unlock(st->lock);
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Split, abort, destroy                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Every rank's (token, address length, address) slot, learned once the communicator
 * formed, so that a child can be linked later without any message over the parent (whose
 * rank 0 may be dead by then). Two rounds: the longest address, then slots of that size. */
static mnnvl_status_t learn_peers_locked(star_t *st)
{
    int size = st->bs.size;
    uint8_t *addr = malloc(STAR_ADDRESS_MAX);
    uint64_t *lens = malloc(sizeof(uint64_t) * (size_t)size);
    uint8_t *slot = NULL;
    mnnvl_status_t s =
        addr && lens ? MNNVL_SUCCESS : star_fail(st, MNNVL_ERR_NO_MEMORY, "joining: out of memory");
    /* A communicator of one rank may have no transport endpoint (ofi): nobody links to it. */
    size_t addr_len = size > 1 ? STAR_ADDRESS_MAX : 0;
    if (s == MNNVL_SUCCESS && size > 1)
        s = st->ops->address(st, addr, &addr_len);
    uint64_t my_len = addr_len, max_len = 0;
    if (s == MNNVL_SUCCESS)
        s = round_locked(st, -1, &my_len, sizeof(my_len), lens, "learning the peers' addresses");
    for (int p = 0; s == MNNVL_SUCCESS && p < size; p++)
        max_len = lens[p] > max_len ? lens[p] : max_len;
    if (s == MNNVL_SUCCESS && max_len > STAR_ADDRESS_MAX)
        s = star_fail(st, MNNVL_ERR_BOOTSTRAP,
                      "joining: a peer's address has %llu bytes, more than %d",
                      (unsigned long long)max_len, STAR_ADDRESS_MAX);
    size_t slot_len = 16 + (size_t)max_len;
    if (s == MNNVL_SUCCESS) {
        slot = calloc(1, slot_len);
        st->table = malloc(slot_len * (size_t)size);
        if (!slot || !st->table)
            s = star_fail(st, MNNVL_ERR_NO_MEMORY, "joining: out of memory");
    }
    if (s == MNNVL_SUCCESS) {
        memcpy(slot, &st->token, 8);
        memcpy(slot + 8, &my_len, 8);
        memcpy(slot + 16, addr, addr_len);
        s = round_locked(st, -1, slot, slot_len, st->table, "learning the peers' addresses");
    }
    st->table_slot = slot_len;
    free(addr);
    free(lens);
    free(slot);
    return s;
}

/* The token of parent rank p's child number `counter`: every member computes every other
 * member's from the table, so a child needs no exchange of tokens. The top bit keeps them
 * apart from star_new_token's counter; the rest mixes (parent token, number), which differ
 * for every child a process builds (a splitmix64 finalizer, so grandchildren differ too). */
static uint64_t child_token(const star_t *st, int p, uint32_t counter)
{
    uint64_t x;
    memcpy(&x, st->table + (size_t)p * st->table_slot, 8);
    x = (x ^ ((uint64_t)counter << 32 | counter)) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return (x ^ (x >> 31)) | (1ull << 63);
}

/* Links child rank r to parent rank p's process, from the parent's table. */
static mnnvl_status_t link_member(star_t *st, star_t *cs, int r, int p, uint32_t counter)
{
    const uint8_t *slot = st->table + (size_t)p * st->table_slot;
    uint64_t len;
    memcpy(&len, slot + 8, 8);
    /* The table came from rank 0's RESULT: a length past the slot would read beyond it. */
    if (len > st->table_slot - 16)
        return star_fail(cs, MNNVL_ERR_BOOTSTRAP,
                         "child: parent rank %d's address has %llu bytes, more than its slot's %zu",
                         p, (unsigned long long)len, st->table_slot - 16);
    mnnvl_status_t s = cs->ops->link_address(cs, r, slot + 16, len);
    cs->peers[r].token = child_token(st, p, counter);
    return s; /* joined once the handshake made a session (member_join, hub_check_proof) */
}

/* The child's own table, for its children: the members' slots of the parent's, with the
 * child's tokens. */
static mnnvl_status_t child_table(star_t *st, star_t *cs, const mnnvl_bootstrap_child_t *child,
                                  uint32_t counter)
{
    cs->table_slot = st->table_slot;
    cs->table = malloc(st->table_slot * (size_t)child->size);
    if (!cs->table)
        return star_fail(cs, MNNVL_ERR_NO_MEMORY, "child: out of memory");
    for (int r = 0; r < child->size; r++) {
        uint8_t *slot = cs->table + (size_t)r * cs->table_slot;
        memcpy(slot, st->table + (size_t)child->members[r] * st->table_slot, st->table_slot);
        uint64_t token = child_token(st, child->members[r], counter);
        memcpy(slot, &token, 8);
    }
    return MNNVL_SUCCESS;
}

/* Members link to the child's rank 0 from the table, rank 0 to each member once its HELLO
 * came; the child's tokens are derived, so only the child's own handshake travels (HELLO,
 * CHALLENGE, PROOF, FORMED: hub_form, member_join), between live members only. */
static mnnvl_status_t child_locked(star_t *st, const mnnvl_bootstrap_child_t *child,
                                   uint32_t counter, star_t **out)
{
    star_t *cs = st->ops->child_new(st, child->rank, child->size);
    if (!cs)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "child: cannot open the child communicator");
    cs->token = child_token(st, st->bs.rank, counter);
    snprintf(cs->root, sizeof(cs->root), "%.200s (child %u)", st->root, counter);
    cs->comm_id = st->comm_id ^ ((uint64_t)(counter + 1) << 32) ^ child->tag;
    cs->peers[cs->bs.rank].joined = 1;
    cs->peers[cs->bs.rank].token = cs->token;
    cs->key = st->key;
    cs->is_child = 1;
    uint64_t deadline = star_now_ms() + (uint64_t)st->timeout_ms;
    meet_t meet = {.parent = st,
                   .child = child,
                   .counter = counter,
                   .other = child->rank == 0 ? calloc((size_t)child->size, 1) : NULL,
                   .what = "forming the child"};
    mnnvl_status_t s = child->rank == 0 && !meet.other
                           ? star_fail(cs, MNNVL_ERR_NO_MEMORY, "child: out of memory")
                           : child_table(st, cs, child, counter);
    if (s == MNNVL_SUCCESS && child->size > 1 && child->rank == 0) {
        s = hub_form(cs, &meet, deadline);
    } else if (s == MNNVL_SUCCESS && child->size > 1) {
        s = link_member(st, cs, 0, child->members[0], counter);
        if (s == MNNVL_SUCCESS)
            s = member_join(cs, &meet, deadline);
    }
    cs->formed = 1;
    free(meet.other);
    if (s != MNNVL_SUCCESS) {
        pthread_mutex_unlock(st->lock);
        cs->ops->free(cs);
        pthread_mutex_lock(st->lock);
        return s;
    }
    star_fill_interface(cs);
    *out = cs;
    return MNNVL_SUCCESS;
}

/* Works on a broken or aborted parent too: only its table is read. */
static mnnvl_status_t star_child(mnnvl_bootstrap_t *bs, const mnnvl_bootstrap_child_t *child,
                                 mnnvl_bootstrap_t **out)
{
    star_t *st = bs->state, *cs = NULL;
    *out = NULL;
    pthread_mutex_lock(st->lock);
    uint32_t counter = st->splits++;
    mnnvl_status_t s =
        st->table ? child_locked(st, child, counter, &cs)
                  : star_fail(st, MNNVL_ERR_INTERNAL, "child: the peers' addresses are unknown");
    pthread_mutex_unlock(st->lock);
    if (cs)
        *out = &cs->bs;
    return s;
}

/* Fails this rank's pending and later calls and tells the peers. Any thread. The lock is
 * free unless the owning thread is inside a call (or another communicator's call holds it
 * for a moment): then that call fails and tells them, else this thread does, holding the
 * lock throughout, so that a destroy on the owning thread waits for it. */
static void star_abort(mnnvl_bootstrap_t *bs)
{
    star_t *st = bs->state;
    atomic_store(&st->aborted, 1);
    st->ops->wake(st);
    if (pthread_mutex_trylock(st->lock) != 0)
        return;
    if (!st->broken)
        tell_abort(st, MNNVL_ERR_ABORTED, st->bs.rank, ABORT_GRACE_MS);
    pthread_mutex_unlock(st->lock);
}

static void star_destroy(mnnvl_bootstrap_t *bs)
{
    if (!bs)
        return;
    star_t *st = bs->state;
    pthread_mutex_lock(st->lock);
    if (st->bs.size > 1 && atomic_load(&st->aborted)) {
        tell_abort(st, MNNVL_ERR_ABORTED, st->bs.rank, STAR_CLOSE_GRACE_MS);
    } else if (st->bs.size > 1 && !st->told_abort) {
        /* BYE makes the departure graceful: a peer still waiting on us fails at once. Also
         * after another rank's failure (PEER_LOST), or the members still there would record
         * this live rank as dead; not after this rank told them it gave up. */
        int *to = malloc(sizeof(*to) * (size_t)st->bs.size);
        int n = 0;
        for (int r = 0; to && r < st->bs.size; r++)
            if (r != st->bs.rank && st->peers[r].joined && !link_lost(st, r) &&
                (st->bs.rank == 0 || r == 0))
                to[n++] = r;
        if (n)
            send_leaving(st, to, n, STAR_BYE, 0, 0, st->bs.rank, STAR_CLOSE_GRACE_MS);
        free(to);
    }
    for (int r = 0; r < st->bs.size; r++)
        end(st, &st->peers[r].ping);
    for (int i = 0; i < st->n_news; i++)
        end(st, &st->news[i]);
    st->n_news = 0;
    pthread_mutex_unlock(st->lock);
    st->ops->free(st);
}

/* ---------------------------------------------------------------------------------------- */
/* Liveness                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Rank 0: starts a LOST naming `lost` to every member that can still hear it. The sends
 * finish over later polls (news_progress): the watcher never waits for a member. */
static void news_start(star_t *st, int lost)
{
    for (int r = 1; r < st->bs.size; r++) {
        star_peer_t *p = &st->peers[r];
        if (r == lost || !p->joined || p->bye || p->dead || link_lost(st, r))
            continue;
        if (st->n_news == st->cap_news) {
            int cap = st->cap_news ? 2 * st->cap_news : 8;
            star_send_t *v = realloc(st->news, sizeof(*v) * (size_t)cap);
            if (!v)
                return; /* that member learns it from its next collective */
            st->news = v;
            st->cap_news = cap;
        }
        star_send_t *s = &st->news[st->n_news++];
        fill(st, s, r, STAR_LOST, 0, MNNVL_ERR_PEER_LOST, NULL);
        s->h.origin = lost;
        start(st, s);
    }
}

/* Rank 0: ends the LOST frames that went out; one that failed means that member is lost. */
static void news_progress(star_t *st)
{
    for (int i = 0; i < st->n_news;) {
        star_send_t *s = &st->news[i];
        int r = s->op ? st->ops->send_test(st, s) : -1;
        if (r == 0) {
            i++;
            continue;
        }
        if (r < 0 && !st->peers[s->to].lost[0])
            snprintf(st->peers[s->to].lost, sizeof(st->peers[0].lost), "%s", s->why);
        end(st, s);
        st->news[i] = st->news[--st->n_news];
    }
}

/* One look, under the lock: moves the transport (and wakes a waiting owner when that
 * delivered something, which its wait would otherwise find only at its next slice), checks
 * the links it watches (rank 0: every member; a member: rank 0), tells the members what rank
 * 0 found, and moves what is new into `ranks`. */
static mnnvl_status_t liveness_locked(star_t *st, int *ranks, int capacity, int *count)
{
    if (atomic_load(&st->aborted))
        return star_fail(st, MNNVL_ERR_ABORTED, "liveness: the communicator was aborted");
    if (st->liveness_ended)
        return star_fail(st, MNNVL_ERR_PEER_LOST,
                         "liveness: rank 0 is gone or left, so which ranks are alive is unknown "
                         "from now on");
    if (st->ops->poll(st) > 0)
        st->ops->wake(st);
    int hub = st->bs.rank == 0;
    if (hub)
        news_progress(st);
    for (int r = hub ? 1 : 0; r < (hub ? st->bs.size : 1); r++) {
        star_peer_t *p = &st->peers[r];
        if (!p->joined || p->bye || p->dead)
            continue;
        ping(st, r);
        if (link_lost(st, r))
            p->dead = 1;
    }
    for (int r = 0; r < st->bs.size; r++) {
        star_peer_t *p = &st->peers[r];
        if (hub && p->dead && !p->told) {
            p->told = 1;
            news_start(st, r);
        }
        if (p->dead && !p->reported && *count < capacity) {
            p->reported = 1;
            ranks[(*count)++] = r;
        }
    }
    /* Rank 0 gone (or left, or aborted) takes the news with it: the next call says so. */
    st->liveness_ended = !hub && (st->peers[0].bye || st->peers[0].reported);
    return MNNVL_SUCCESS;
}

/* See bootstrap.h. The lock is held for a poll, never across the pause. */
static mnnvl_status_t star_poll_lost(mnnvl_bootstrap_t *bs, int wait_ms, int *ranks, int capacity,
                                     int *count)
{
    star_t *st = bs->state;
    *count = 0;
    for (int pass = 0;; pass++) {
        pthread_mutex_lock(st->lock);
        mnnvl_status_t s = liveness_locked(st, ranks, capacity, count);
        pthread_mutex_unlock(st->lock);
        if (s != MNNVL_SUCCESS || *count > 0 || pass > 0 || wait_ms <= 0)
            return s;
        star_pause_ms(wait_ms);
    }
}

static const mnnvl_bootstrap_ops_t star_bootstrap_ops = {
    .size = sizeof(mnnvl_bootstrap_ops_t),
    .name = STAR_BACKEND_NAME,
    .allgather = star_allgather,
    .broadcast = star_broadcast,
    .barrier = star_barrier,
    .child = star_child,
    .abort = star_abort,
    .destroy = star_destroy,
    .poll_lost = star_poll_lost,
};

void star_fill_interface(star_t *st)
{
    st->bs.ops = &star_bootstrap_ops;
    st->bs.state = st;
}
