/* The tcp bootstrap's root: one thread, one poll() over every connection, non-blocking I/O.
 *
 * Nothing in the thread blocks except poll itself, so one slow or dead rank cannot hold up
 * the others. Consequences of a connection's death (telling its group) are applied in one
 * place, reap(), at the end of each loop iteration, so that no handler re-enters another.
 *
 * Work per message is O(1) apart from the unavoidable fan-out (a collective's result goes
 * to every member; the result buffer is shared by reference, not copied per member) and the
 * list of missing ranks in a STATUS (cached per group, rebuilt only after the group changed,
 * with memchr), and each loop iteration is O(connections) to build the poll set.
 *
 * No connection can hold the root or grow it without bound, authenticated or not: each loop
 * turn serves at most TURN_MESSAGES messages and TURN_BYTES bytes of each connection (so a
 * burst of one is served fairly beside the others); its output queue holds at most
 * OUT_MAX_MSGS messages, OUT_MAX_RESULTS of them results, and one STATUS; its input grows
 * with the bytes that actually arrived, up to what a message of its state may hold; a
 * message must arrive whole within the timeout its rank announced; and a member of a group
 * that does not form is told who never joined and dropped after that timeout. A peer over
 * a bound is dropped with a log line naming it.
 *
 * One outcome when rank 0 dies right after a collective (root_mode=rank0): the root lives
 * in rank 0's process, so if rank 0 learned a collective's outcome before the others were
 * sent theirs, a SIGKILL just after it would leave them with PEER_LOST for a collective
 * rank 0 saw succeed. The host's own connections (mnnvl_tcp_root_connect_local, a socket
 * pair) are therefore written only once the group's other members have been written every
 * outcome queued for them (group.outcomes_queued): what the others were sent is in their
 * sockets before rank 0 can act on its own. The price: a member that stops reading holds
 * rank 0's call back until it reads, is dropped, or rank 0's own timeout_ms runs out.
 *
 * Why one file of about 1500 lines: the connection state machine, its bounds, the groups
 * and their collectives share private structures and the no-re-entry rule above; split
 * apart they would need a private header exposing all of it, for no gain in what a reader
 * must hold.
 */
#include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "deadline.h"
#include "error.h"
#include "log.h"
#include "sock.h"
#include "tcp_wire.h"

#define ROOT_POLL_MS 1000
/* A connection must authenticate and say HELLO within this, or it is closed. */
#define JOIN_GRACE_MS 30000
/* A connection being closed after a last message gets this long to take it. */
#define CLOSE_GRACE_MS 5000
/* On stop, queued messages get this long to be delivered before connections close. */
#define STOP_LINGER_MS 2000
/* The longest a root asked to outlive its members waits for them after its last stop
 * (mnnvl_tcp_root_outlive_members): ranks of one job destroy within moments of each other;
 * one that is stopped or stuck must not hold rank 0's exit for its whole timeout_ms. */
#define OUTLIVE_MAX_MS 10000
/* After running out of file descriptors, accepting pauses this long. */
#define ACCEPT_PAUSE_MS 100
#define IN_BUFFER_MIN 256
/* Fairness: what one connection gets served per loop turn. */
#define TURN_MESSAGES 64
#define TURN_BYTES ((size_t)256 << 10)
/* Output a connection may have queued: a rank waits for each answer before it asks again,
 * so a legitimate queue holds a result, a STATUS and an error or two. */
#define OUT_MAX_MSGS 64
#define OUT_MAX_RESULTS 4
/* Beyond a rank's own timeout: how long the root waits for the rest of a message, and for
 * a group to form, before it drops the connection (the rank gives up first). */
#define MEMBER_GRACE_MS 2000
/* An input buffer grown past this for a large message is freed once it is empty. */
#define IN_BUFFER_KEEP (1u << 20)

/* A payload shared by the messages of a fan-out. */
struct blob {
    int refs;
    size_t len;
    uint8_t data[];
};

struct out_msg {
    struct out_msg *next;
    struct blob *blob; /* sent after head; NULL for none */
    size_t sent;       /* bytes of head and blob written so far */
    int is_status;     /* a STATUS: while queued, further QUERYs are dropped */
    size_t tag_len;    /* MNNVL_WIRE_MAC_BYTES once the connection is authenticated, else 0 */
    uint8_t tag[MNNVL_WIRE_MAC_BYTES]; /* sent after the blob */
    int is_outcome; /* a collective's result or error, counted in the group until sent */
    size_t head_len;
    uint8_t head[]; /* the frame header and any small payload */
};

enum conn_state {
    CONN_CHALLENGE, /* waiting for the rank's CHALLENGE */
    CONN_PROOF,     /* waiting for its PROOF */
    CONN_HELLO,     /* authenticated, waiting for HELLO */
    CONN_MEMBER,    /* in a group (forming or formed) */
    CONN_CLOSING,   /* delivering a last message; input is discarded */
    CONN_DEAD       /* closed by reap() at the end of this iteration */
};

struct group;

struct mnnvl_tcp_root;

struct conn {
    struct mnnvl_tcp_root *root;
    int fd;
    enum conn_state state;
    uint64_t since_ms; /* when the current state began */
    char peer[MNNVL_SOCK_ADDR_MAX];
    char why[160]; /* why it died, for the group's PEER_LOST sentence */
    uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES];
    uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES];
    int authed;      /* proved the key: every frame from now on carries a MAC */
    int plain_input; /* mnnvl_tcp_root_feed only: input frames carry no MAC */
    mnnvl_auth_session_t sess;
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
    struct out_msg *out_head;
    struct out_msg *out_tail;
    size_t out_count;     /* messages queued */
    int out_results;      /* of them, carrying a shared result */
    int status_queued;    /* a STATUS waits in the queue */
    int backlog;          /* complete frames wait in `in` (the turn's budget ran out) */
    uint64_t frame_since; /* when the frame now arriving began (in_len > 0) */
    struct group *group;
    int rank;
    int host;           /* a connection of the root's own process (mnnvl_tcp_root_connect_local) */
    int out_outcomes;   /* of the queued messages, outcomes counted in group->outcomes_queued */
    int timeout_ms;     /* announced in HELLO */
    uint64_t joined_ms; /* when it said HELLO */
};

enum member_state { MEMBER_ABSENT = 0, MEMBER_ACTIVE, MEMBER_LEFT, MEMBER_LOST };

struct group {
    struct group *next; /* in the root's list of forming groups */
    uint64_t id;
    char label[MNNVL_WIRE_MAX_LABEL + 1];
    int size;
    int attached; /* connections whose ->group is this one */
    int formed;
    struct conn **members; /* by rank */
    uint8_t *state;        /* enum member_state by rank */
    int lost_rank;         /* first rank lost without BYE, -1: none */
    char lost_msg[MNNVL_WIRE_MAX_TEXT];
    int left_rank; /* first rank that left with BYE, -1: none */
    /* The collective in progress. */
    int arrived;
    uint8_t *has; /* by rank: contributed to it */
    int first_rank;
    uint8_t op;
    uint32_t bcast_root;
    uint64_t bytes;
    struct blob *result;
    mnnvl_status_t coll_status; /* MISMATCH or NO_MEMORY once known */
    int outcomes_queued;        /* outcomes not yet written to the members other than the host */
    char coll_msg[MNNVL_WIRE_MAX_TEXT];
    /* Who is missing, for STATUS and timeouts: rebuilt when `changes` moved on. */
    int ever_joined; /* ranks that said HELLO to this forming group, gone since or not */
    uint64_t changes;
    uint64_t missing_at;
    char missing[MNNVL_WIRE_MAX_TEXT];
    int first_missing;
};

struct mnnvl_tcp_root {
    atomic_int refs;
    atomic_int stop;
    pthread_t thread;
    int listen_fd;
    int wake_fd;
    char address[MNNVL_SOCK_ADDR_MAX];
    mnnvl_auth_key_t key;
    struct conn **conns;
    size_t nconns;
    size_t conns_cap;
    struct pollfd *pfds;
    size_t pfds_cap;
    struct group *forming;
    uint64_t linger_deadline;   /* 0 until stopping */
    atomic_int outlive_members; /* mnnvl_tcp_root_outlive_members */
    int refused;                /* connections refused for a wrong job key */
    char last_refused[MNNVL_SOCK_ADDR_MAX];
    uint64_t accept_paused_until;
    /* Socket ends of mnnvl_tcp_root_connect_local, for the root's thread to adopt. */
    pthread_mutex_t local_lock;
    int *local_fds;
    size_t nlocal;
    size_t local_cap;
};

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void blob_unref(struct blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static void conn_kill(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conn_kill(struct conn *c, const char *fmt, ...)
{
    if (c->state == CONN_DEAD)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->state = CONN_DEAD;
}

/* "1.2.3.4:5 (rank 3 of comm 'x')" for log lines. */
static const char *conn_name(const struct conn *c, char *buf, size_t len)
{
    if (c->group)
        snprintf(buf, len, "%s (rank %d of comm '%s')", c->peer, c->rank, c->group->label);
    else
        snprintf(buf, len, "%s", c->peer);
    return buf;
}

/* Drops a connection over one of its bounds, with a log line naming it. */
static void conn_drop(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conn_drop(struct conn *c, const char *fmt, ...)
{
    if (c->state == CONN_DEAD)
        return;
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    char name[MNNVL_SOCK_ADDR_MAX + MNNVL_WIRE_MAX_LABEL + 64];
    MNNVL_WARN("tcp root %s: dropped the connection from %s: %s", c->root->address,
               conn_name(c, name, sizeof(name)), why);
    conn_kill(c, "the root dropped it: %s", why);
}

/* Queues a frame of `type`: `len` bytes of payload, then the shared blob (may be NULL).
 * Returns the message, or NULL when the connection is dead or was dropped for not reading
 * (its queue is over OUT_MAX_MSGS messages or OUT_MAX_RESULTS results). */
static struct out_msg *conn_queue(struct conn *c, uint16_t type, const void *payload, size_t len,
                                  struct blob *blob)
{
    if (c->state == CONN_DEAD)
        return NULL;
    if (c->out_count >= OUT_MAX_MSGS || (blob && c->out_results >= OUT_MAX_RESULTS)) {
        conn_drop(c,
                  "it does not read what the root sends (%zu messages, %d results queued; at "
                  "most %d and %d)",
                  c->out_count, c->out_results, OUT_MAX_MSGS, OUT_MAX_RESULTS);
        return NULL;
    }
    struct out_msg *m = malloc(sizeof(*m) + MNNVL_WIRE_HEADER_BYTES + len);
    if (!m) {
        conn_kill(c, "the root ran out of memory");
        return NULL;
    }
    m->next = NULL;
    m->blob = blob;
    m->is_status = 0;
    m->is_outcome = 0;
    if (blob) {
        blob->refs++;
        c->out_results++;
    }
    c->out_count++;
    m->sent = 0;
    m->head_len = MNNVL_WIRE_HEADER_BYTES + len;
    mnnvl_wire_header(m->head, type, len + (blob ? blob->len : 0));
    if (len)
        memcpy(m->head + MNNVL_WIRE_HEADER_BYTES, payload, len);
    m->tag_len = 0;
    if (c->authed) {
        struct iovec iov[2] = {{m->head, m->head_len},
                               {blob ? blob->data : NULL, blob ? blob->len : 0}};
        mnnvl_auth_seal(&c->sess, iov, 2, m->tag);
        m->tag_len = MNNVL_WIRE_MAC_BYTES;
    }
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    return m;
}

static struct out_msg *conn_send_error(struct conn *c, mnnvl_status_t status, int rank,
                                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct out_msg *conn_send_error(struct conn *c, mnnvl_status_t status, int rank,
                                       const char *fmt, ...)
{
    uint8_t msg[MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)msg + MNNVL_WIRE_ERROR_FIXED, MNNVL_WIRE_MAX_TEXT, fmt, ap);
    va_end(ap);
    size_t text = n < 0                              ? 0
                  : (size_t)n >= MNNVL_WIRE_MAX_TEXT ? MNNVL_WIRE_MAX_TEXT - 1
                                                     : (size_t)n;
    mnnvl_wire_put32(msg, (uint32_t)status);
    mnnvl_wire_put32(msg + 4, (uint32_t)rank);
    return conn_queue(c, MNNVL_WIRE_ERROR, msg, MNNVL_WIRE_ERROR_FIXED + text, NULL);
}

/* Writes what the socket takes now; a CLOSING connection dies once all is written. */
static void conn_flush(struct conn *c)
{
    while (c->out_head && c->state != CONN_DEAD) {
        struct out_msg *m = c->out_head;
        size_t blob_len = m->blob ? m->blob->len : 0;
        size_t body = m->head_len + blob_len;
        struct iovec iov[3];
        int n = 0;
        if (m->sent < m->head_len)
            iov[n++] = (struct iovec){m->head + m->sent, m->head_len - m->sent};
        size_t blob_off = m->sent > m->head_len ? m->sent - m->head_len : 0;
        if (blob_off < blob_len)
            iov[n++] = (struct iovec){m->blob->data + blob_off, blob_len - blob_off};
        size_t tag_off = m->sent > body ? m->sent - body : 0;
        if (tag_off < m->tag_len)
            iov[n++] = (struct iovec){m->tag + tag_off, m->tag_len - tag_off};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            conn_kill(c, "sending to it failed (%s)", strerror(errno));
            return;
        }
        m->sent += (size_t)w;
        if (m->sent < body + m->tag_len)
            continue;
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_count--;
        c->out_results -= m->blob != NULL;
        c->status_queued &= !m->is_status;
        if (m->is_outcome) {
            c->out_outcomes--;
            c->group->outcomes_queued--;
        }
        blob_unref(m->blob);
        free(m);
    }
    if (!c->out_head && c->state == CONN_CLOSING)
        c->state = CONN_DEAD;
}

static void conn_close_after_flush(struct conn *c)
{
    if (c->state != CONN_DEAD) {
        c->state = CONN_CLOSING;
        c->since_ms = mnnvl_now_ms();
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Groups                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void group_unlink_forming(struct mnnvl_tcp_root *r, struct group *g)
{
    for (struct group **p = &r->forming; *p; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            return;
        }
    }
}

static struct group *group_find_forming(struct mnnvl_tcp_root *r, uint64_t id)
{
    for (struct group *g = r->forming; g; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

static void group_free(struct group *g)
{
    blob_unref(g->result);
    free(g->members);
    free(g->state);
    free(g->has);
    free(g);
}

static struct group *group_new(struct mnnvl_tcp_root *r, uint64_t id, int size,
                               const uint8_t *label, size_t label_len)
{
    struct group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->members = calloc((size_t)size, sizeof(*g->members));
    g->state = calloc((size_t)size, 1);
    g->has = calloc((size_t)size, 1);
    if (!g->members || !g->state || !g->has) {
        group_free(g);
        return NULL;
    }
    g->id = id;
    g->size = size;
    g->missing_at = UINT64_MAX;
    g->lost_rank = -1;
    g->left_rank = -1;
    /* The label only ends up in sentences; keep it printable. */
    for (size_t i = 0; i < label_len; i++)
        g->label[i] = label[i] >= 0x20 && label[i] < 0x7f ? (char)label[i] : '?';
    g->next = r->forming;
    r->forming = g;
    return g;
}

/* Takes `c` out of its group; the group is freed with its last connection. */
static void group_detach(struct mnnvl_tcp_root *r, struct conn *c)
{
    struct group *g = c->group;
    if (!g)
        return;
    if (g->members[c->rank] == c)
        g->members[c->rank] = NULL; /* state stays: it did join (and gave up) */
    g->changes++;
    /* A member that is gone holds the host back no longer. */
    for (struct out_msg *m = c->out_head; m; m = m->next)
        m->is_outcome = 0;
    g->outcomes_queued -= c->out_outcomes;
    c->out_outcomes = 0;
    c->group = NULL;
    if (--g->attached > 0)
        return;
    if (!g->formed)
        group_unlink_forming(r, g);
    group_free(g);
}

/* Appends to buf (of len, holding *at bytes); returns 0 when it did not fit. */
static int append(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - *at) {
        buf[*at] = '\0';
        return 0;
    }
    *at += (size_t)n;
    return 1;
}

/* Who is missing: the ranks whose byte in `here` is 0 (the bytes are 0 or 1) as "rank 2" or
 * "ranks 1-3, 7", cut with "and N more" to fit MNNVL_WIRE_MAX_TEXT. memchr strides over
 * long runs, so even 2^20 ranks cost little; the caller caches the text. */
static void format_missing(const uint8_t *here, int size, int missing, char *buf, size_t len,
                           int *first)
{
    char list[MNNVL_WIRE_MAX_TEXT - 48];
    size_t at = 0;
    int listed = 0;
    *first = -1;
    list[0] = '\0';
    for (int i = 0; i < size;) {
        const uint8_t *gap = memchr(here + i, 0, (size_t)(size - i));
        if (!gap)
            break;
        int a = (int)(gap - here);
        const uint8_t *next = memchr(here + a, 1, (size_t)(size - a));
        int b = next ? (int)(next - here) : size; /* ranks a..b-1 are missing */
        if (*first < 0)
            *first = a;
        int ok = b - a == 1
                     ? append(list, sizeof(list), &at, "%s%d", listed ? ", " : "", a)
                     : append(list, sizeof(list), &at, "%s%d-%d", listed ? ", " : "", a, b - 1);
        if (!ok)
            break;
        listed += b - a;
        i = b;
    }
    if (missing <= 0)
        snprintf(buf, len, "no rank");
    else if (listed < missing)
        snprintf(buf, len, "ranks %s and %d more", list, missing - listed);
    else
        snprintf(buf, len, "%s %s", missing == 1 ? "rank" : "ranks", list);
}

/* The missing ranks of g now: those that did not join (forming) or did not contribute to
 * the collective in progress. */
static const char *group_missing(struct group *g)
{
    if (g->missing_at != g->changes) {
        int missing = g->formed ? g->size - g->arrived : g->size - g->ever_joined;
        format_missing(g->formed ? g->has : g->state, g->size, missing, g->missing,
                       sizeof(g->missing), &g->first_missing);
        g->missing_at = g->changes;
    }
    return g->missing;
}

static void coll_reset(struct group *g)
{
    g->changes++;
    memset(g->has, 0, (size_t)g->size);
    g->arrived = 0;
    blob_unref(g->result);
    g->result = NULL;
    g->coll_status = MNNVL_SUCCESS;
}

/* Fails the collective in progress for the ranks that already contributed. */
static void coll_fail_arrived(struct group *g, int rank, const char *msg)
{
    for (int i = 0; i < g->size; i++)
        if (g->has[i] && g->members[i])
            conn_send_error(g->members[i], MNNVL_ERR_PEER_LOST, rank, "%s", msg);
    coll_reset(g);
}

/* A formed group's member died or aborted: every other active member learns PEER_LOST
 * (those in a collective at once, the others at their next call), and so does every later
 * collective of the group. */
static void member_lost(struct mnnvl_tcp_root *r, struct conn *c, const char *why)
{
    struct group *g = c->group;
    char msg[MNNVL_WIRE_MAX_TEXT];
    snprintf(msg, sizeof(msg), "rank %d of comm '%s' %s", c->rank, g->label, why);
    g->state[c->rank] = MEMBER_LOST;
    int first = g->lost_rank < 0;
    if (first) {
        g->lost_rank = c->rank;
        snprintf(g->lost_msg, sizeof(g->lost_msg), "%s", msg);
    }
    MNNVL_INFO("tcp root %s: %s", r->address, msg);
    /* Every loss, not only the first: the first fails the members' collectives, and each
     * names a rank that the members' liveness watchers (poll_lost) report. */
    for (int i = 0; i < g->size; i++) {
        struct conn *m = g->members[i];
        if (m && m != c && g->state[i] == MEMBER_ACTIVE)
            conn_send_error(m, MNNVL_ERR_PEER_LOST, c->rank, "%s", msg);
    }
    if (first)
        coll_reset(g);
    group_detach(r, c);
}

static void group_form(struct mnnvl_tcp_root *r, struct group *g)
{
    uint8_t size[4];
    mnnvl_wire_put32(size, (uint32_t)g->size);
    group_unlink_forming(r, g);
    g->formed = 1;
    for (int i = 0; i < g->size; i++)
        conn_queue(g->members[i], MNNVL_WIRE_FORMED, size, sizeof(size), NULL);
    MNNVL_DEBUG("tcp root %s: comm '%s' formed with %d ranks", r->address, g->label, g->size);
}

/* Refuses a forming group whose ranks disagree on its size: all of its ranks fail now
 * rather than wait for a group that cannot form. */
static void group_refuse_forming(struct mnnvl_tcp_root *r, struct group *g, const char *msg)
{
    int size = g->size;
    int left = g->attached;
    for (int i = 0; i < size && left > 0; i++) {
        struct conn *m = g->members[i];
        if (!m)
            continue;
        left--;
        conn_send_error(m, MNNVL_ERR_MISMATCH, -1, "%s", msg);
        group_detach(r, m); /* frees g with the last member */
        conn_close_after_flush(m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Messages                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void on_challenge(struct mnnvl_tcp_root *r, struct conn *c, const uint8_t *p, size_t len)
{
    if (len != MNNVL_WIRE_NONCE_BYTES) {
        conn_kill(c, "it sent a malformed challenge");
        return;
    }
    (void)r;
    memcpy(c->rank_nonce, p, MNNVL_WIRE_NONCE_BYTES);
    /* Only a fresh nonce: before the peer proved the key, nothing it could test a guess
     * of the key against. */
    mnnvl_auth_random(c->root_nonce, MNNVL_WIRE_NONCE_BYTES);
    conn_queue(c, MNNVL_WIRE_CHALLENGE, c->root_nonce, MNNVL_WIRE_NONCE_BYTES, NULL);
    c->state = CONN_PROOF;
}

static void on_proof(struct mnnvl_tcp_root *r, struct conn *c, const uint8_t *p, size_t len)
{
    uint8_t expected[MNNVL_WIRE_PROOF_BYTES];
    mnnvl_auth_proof(&r->key, MNNVL_AUTH_RANK, c->rank_nonce, c->root_nonce, expected);
    if (len != MNNVL_WIRE_PROOF_BYTES || !mnnvl_auth_equal(p, expected, sizeof(expected))) {
        MNNVL_WARN("tcp root %s: refused the connection from %s (AUTH): it did not prove the "
                   "job key; that process was started with a different job_key",
                   r->address, c->peer);
        r->refused++;
        snprintf(r->last_refused, sizeof(r->last_refused), "%s", c->peer);
        conn_send_error(c, MNNVL_ERR_AUTH, -1,
                        "the root at %s refused the connection: this rank's job_key differs "
                        "from the root's",
                        r->address);
        conn_close_after_flush(c);
        return;
    }
    uint8_t proof[MNNVL_WIRE_PROOF_BYTES];
    mnnvl_auth_proof(&r->key, MNNVL_AUTH_ROOT, c->rank_nonce, c->root_nonce, proof);
    conn_queue(c, MNNVL_WIRE_PROOF, proof, sizeof(proof), NULL);
    mnnvl_auth_session(&r->key, MNNVL_AUTH_ROOT, c->rank_nonce, c->root_nonce, &c->sess);
    c->authed = 1;
    c->state = CONN_HELLO;
}

static void on_hello(struct mnnvl_tcp_root *r, struct conn *c, const uint8_t *p, size_t len)
{
    if (len < MNNVL_WIRE_HELLO_FIXED) {
        conn_kill(c, "it sent a malformed HELLO");
        return;
    }
    uint64_t id = mnnvl_wire_get64(p);
    uint32_t rank = mnnvl_wire_get32(p + 8);
    uint32_t size = mnnvl_wire_get32(p + 12);
    uint32_t timeout_ms = mnnvl_wire_get32(p + 16);
    const uint8_t *label = p + MNNVL_WIRE_HELLO_FIXED;
    size_t label_len = len - MNNVL_WIRE_HELLO_FIXED;
    if (size == 0 || size > MNNVL_WIRE_MAX_RANKS || rank >= size) {
        conn_send_error(c, MNNVL_ERR_INVALID_ARGUMENT, -1,
                        "the root refuses rank %u of size %u (at most %d ranks)", rank, size,
                        MNNVL_WIRE_MAX_RANKS);
        conn_close_after_flush(c);
        return;
    }
    struct group *g = group_find_forming(r, id);
    if (g && g->size != (int)size) {
        char msg[MNNVL_WIRE_MAX_TEXT];
        snprintf(msg, sizeof(msg),
                 "ranks of comm '%s' disagree on its size: rank %u joined with size %u but "
                 "earlier ranks with size %d",
                 g->label, rank, size, g->size);
        group_refuse_forming(r, g, msg);
        conn_send_error(c, MNNVL_ERR_MISMATCH, -1, "%s", msg);
        conn_close_after_flush(c);
        return;
    }
    if (!g)
        g = group_new(r, id, (int)size, label, label_len);
    if (!g) {
        conn_send_error(c, MNNVL_ERR_NO_MEMORY, -1, "the root ran out of memory for %u ranks",
                        size);
        conn_close_after_flush(c);
        return;
    }
    struct conn *old = g->members[rank];
    if (old) {
        /* Most likely a stale connection of a rank that reconnected; the newest wins. */
        conn_send_error(old, MNNVL_ERR_INVALID_USAGE, (int)rank,
                        "rank %u of comm '%s' joined again from %s; this connection from %s was "
                        "replaced",
                        rank, g->label, c->peer, old->peer);
        g->attached++; /* keeps g alive across the detach */
        group_detach(r, old);
        g->attached--;
        conn_close_after_flush(old);
    }
    g->members[rank] = c;
    g->ever_joined += g->state[rank] == MEMBER_ABSENT;
    g->state[rank] = MEMBER_ACTIVE;
    g->attached++;
    g->changes++;
    c->group = g;
    c->rank = (int)rank;
    c->state = CONN_MEMBER;
    c->timeout_ms = timeout_ms == 0                          ? 1
                    : timeout_ms > MNNVL_WIRE_MAX_TIMEOUT_MS ? MNNVL_WIRE_MAX_TIMEOUT_MS
                                                             : (int)timeout_ms;
    c->joined_ms = mnnvl_now_ms();
    if (g->attached == g->size)
        group_form(r, g);
}

static void coll_finish(struct group *g)
{
    for (int i = 0; i < g->size; i++) {
        struct conn *m = g->members[i];
        if (!m)
            continue;
        struct out_msg *o;
        if (g->coll_status != MNNVL_SUCCESS)
            o = conn_send_error(m, g->coll_status, -1, "%s", g->coll_msg);
        else if (g->op == MNNVL_WIRE_OP_BROADCAST && (uint32_t)i == g->bcast_root)
            o = conn_queue(m, MNNVL_WIRE_RESULT, NULL, 0, NULL);
        else
            o = conn_queue(m, MNNVL_WIRE_RESULT, NULL, 0, g->result);
        if (o && !m->host) {
            o->is_outcome = 1;
            m->out_outcomes++;
            g->outcomes_queued++;
        }
    }
    coll_reset(g);
}

/* A host connection waits while the others of its group have outcomes to be written. */
static int held_back(const struct conn *c)
{
    return c->host && c->group && c->group->outcomes_queued > 0;
}

static const char *op_name(uint8_t op)
{
    return op == MNNVL_WIRE_OP_BROADCAST ? "broadcast" : "allgather";
}

/* The first contribution fixes the collective; later ones must agree with it. */
static void coll_check(struct group *g, int rank, uint8_t op, uint32_t root, uint64_t bytes)
{
    if (g->arrived == 0) {
        g->first_rank = rank;
        g->op = op;
        g->bcast_root = root;
        g->bytes = bytes;
        size_t total = op == MNNVL_WIRE_OP_ALLGATHER ? (size_t)bytes * (size_t)g->size : bytes;
        if (total == 0)
            return;
        g->result = malloc(sizeof(*g->result) + total);
        if (g->result) {
            g->result->refs = 1;
            g->result->len = total;
            return;
        }
        g->coll_status = MNNVL_ERR_NO_MEMORY;
        snprintf(g->coll_msg, sizeof(g->coll_msg),
                 "the root ran out of memory for a %s of %zu bytes", op_name(op), total);
        return;
    }
    if (g->coll_status != MNNVL_SUCCESS)
        return;
    if (op != g->op)
        snprintf(g->coll_msg, sizeof(g->coll_msg), "rank %d called %s but rank %d called %s", rank,
                 op_name(op), g->first_rank, op_name(g->op));
    else if (bytes != g->bytes)
        snprintf(g->coll_msg, sizeof(g->coll_msg),
                 "%s: rank %d passed %llu bytes but rank %d passed %llu", op_name(op), rank,
                 (unsigned long long)bytes, g->first_rank, (unsigned long long)g->bytes);
    else if (op == MNNVL_WIRE_OP_BROADCAST && root != g->bcast_root)
        snprintf(g->coll_msg, sizeof(g->coll_msg),
                 "broadcast: rank %d named root %u but rank %d named root %u", rank, root,
                 g->first_rank, g->bcast_root);
    else
        return;
    g->coll_status = MNNVL_ERR_MISMATCH;
}

static void on_coll(struct conn *c, const uint8_t *p, size_t len)
{
    struct group *g = c->group;
    if (!g->formed || len < MNNVL_WIRE_COLL_FIXED || g->has[c->rank]) {
        conn_kill(c, "it sent a collective out of turn");
        return;
    }
    if (g->lost_rank >= 0) {
        conn_send_error(c, MNNVL_ERR_PEER_LOST, g->lost_rank, "%s", g->lost_msg);
        return;
    }
    if (g->left_rank >= 0) {
        conn_send_error(c, MNNVL_ERR_PEER_LOST, g->left_rank,
                        "rank %d left comm '%s' (it destroyed its communicator), so no "
                        "collective on it can complete",
                        g->left_rank, g->label);
        return;
    }
    uint8_t op = p[0];
    uint32_t root = mnnvl_wire_get32(p + 4);
    uint64_t bytes = mnnvl_wire_get64(p + 8);
    size_t data_len = len - MNNVL_WIRE_COLL_FIXED;
    int valid = op == MNNVL_WIRE_OP_ALLGATHER
                    ? bytes <= MNNVL_WIRE_MAX_RESULT / (uint64_t)g->size && data_len == bytes
                    : op == MNNVL_WIRE_OP_BROADCAST && root < (uint32_t)g->size &&
                          bytes <= MNNVL_WIRE_MAX_RESULT &&
                          data_len == ((uint32_t)c->rank == root ? bytes : 0);
    if (!valid) {
        conn_kill(c, "it sent a malformed collective (op %u, %llu bytes, %zu data bytes)", op,
                  (unsigned long long)bytes, data_len);
        return;
    }
    coll_check(g, c->rank, op, root, bytes);
    if (g->coll_status == MNNVL_SUCCESS && data_len > 0) {
        size_t at = op == MNNVL_WIRE_OP_ALLGATHER ? (size_t)c->rank * (size_t)bytes : 0;
        memcpy(g->result->data + at, p + MNNVL_WIRE_COLL_FIXED, data_len);
    }
    g->has[c->rank] = 1;
    g->changes++;
    if (++g->arrived == g->size)
        coll_finish(g);
}

/* For a group still forming: that the root refused connections with a wrong job key
 * (the likely reason a rank never joined), or "". */
static void refusal_note(const struct mnnvl_tcp_root *r, const struct group *g, char *buf,
                         size_t len)
{
    buf[0] = '\0';
    if (r->refused > 0 && !g->formed)
        snprintf(buf, len,
                 "the root refused %d connection%s whose job_key differs from its own, the last "
                 "from %s",
                 r->refused, r->refused == 1 ? "" : "s", r->last_refused);
}

/* O(1) but for a rebuild of the cached missing list after the group changed; a QUERY while
 * this connection's previous STATUS is still queued is dropped (a rank asks once per wait). */
static void on_query(struct conn *c)
{
    struct group *g = c->group;
    if (c->status_queued)
        return;
    const char *missing = group_missing(g);
    char note[MNNVL_WIRE_MAX_TEXT] = "";
    refusal_note(c->root, g, note, sizeof(note));
    char both[MNNVL_WIRE_MAX_TEXT];
    snprintf(both, sizeof(both), "%s%s%s", missing, note[0] ? "\n" : "", note);
    missing = both;
    size_t text = strnlen(missing, MNNVL_WIRE_MAX_TEXT);
    uint8_t msg[MNNVL_WIRE_STATUS_BYTES + MNNVL_WIRE_MAX_TEXT] = {0};
    msg[0] = g->formed ? MNNVL_WIRE_PHASE_COLLECTIVE : MNNVL_WIRE_PHASE_FORMING;
    mnnvl_wire_put32(msg + 4, (uint32_t)(g->formed ? g->arrived : g->attached));
    mnnvl_wire_put32(msg + 8, (uint32_t)g->size);
    mnnvl_wire_put32(msg + 12, (uint32_t)g->first_missing);
    memcpy(msg + MNNVL_WIRE_STATUS_BYTES, missing, text);
    struct out_msg *m = conn_queue(c, MNNVL_WIRE_STATUS, msg, MNNVL_WIRE_STATUS_BYTES + text, NULL);
    if (m) {
        m->is_status = 1;
        c->status_queued = 1;
    }
}

static void on_bye(struct mnnvl_tcp_root *r, struct conn *c)
{
    struct group *g = c->group;
    if (g->formed) {
        g->state[c->rank] = MEMBER_LEFT;
        if (g->left_rank < 0)
            g->left_rank = c->rank;
        if (g->arrived > 0) {
            char msg[MNNVL_WIRE_MAX_TEXT];
            snprintf(msg, sizeof(msg),
                     "rank %d left comm '%s' (it destroyed its communicator) during a %s", c->rank,
                     g->label, op_name(g->op));
            coll_fail_arrived(g, c->rank, msg);
        }
    }
    group_detach(r, c);
    conn_kill(c, "it left");
}

static void on_abort(struct mnnvl_tcp_root *r, struct conn *c, const uint8_t *p, size_t len)
{
    char why[MNNVL_WIRE_MAX_TEXT + 64] = "aborted its communicator";
    if (len > 0)
        snprintf(why, sizeof(why), "aborted its communicator (%.*s)",
                 (int)(len < MNNVL_WIRE_MAX_TEXT ? len : MNNVL_WIRE_MAX_TEXT), (const char *)p);
    if (c->group->formed)
        member_lost(r, c, why);
    else
        group_detach(r, c);
    conn_kill(c, "it aborted");
}

static void on_member_frame(struct mnnvl_tcp_root *r, struct conn *c, uint16_t type,
                            const uint8_t *p, size_t len)
{
    switch (type) {
    case MNNVL_WIRE_COLL: on_coll(c, p, len); break;
    case MNNVL_WIRE_QUERY: on_query(c); break;
    case MNNVL_WIRE_BYE: on_bye(r, c); break;
    case MNNVL_WIRE_ABORT: on_abort(r, c, p, len); break;
    default: conn_kill(c, "it sent message type %u out of turn", type);
    }
}

static void on_frame(struct mnnvl_tcp_root *r, struct conn *c, uint16_t type, const uint8_t *p,
                     size_t len)
{
    static const uint16_t expected[] = {
        [CONN_CHALLENGE] = MNNVL_WIRE_CHALLENGE,
        [CONN_PROOF] = MNNVL_WIRE_PROOF,
        [CONN_HELLO] = MNNVL_WIRE_HELLO,
    };
    if (c->state == CONN_MEMBER) {
        on_member_frame(r, c, type, p, len);
        return;
    }
    if (c->state > CONN_HELLO)
        return; /* CLOSING discards input */
    if (type != expected[c->state]) {
        conn_kill(c, "it sent message type %u while authenticating", type);
        return;
    }
    if (c->state == CONN_CHALLENGE)
        on_challenge(r, c, p, len);
    else if (c->state == CONN_PROOF)
        on_proof(r, c, p, len);
    else
        on_hello(r, c, p, len);
}

/* ---------------------------------------------------------------------------------------- */
/* Input                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* The largest payload a message may announce in the connection's state: before HELLO what
 * authentication needs; in a group that has not formed, an ABORT's reason (COLL is out of
 * turn there); in a formed group, the largest contribution the protocol allows (a
 * broadcast root's MNNVL_WIRE_MAX_RESULT). The buffer only grows as bytes arrive, so a
 * header alone reserves nothing. */
static uint64_t max_payload(const struct conn *c)
{
    if (c->state == CONN_MEMBER)
        return c->group && c->group->formed ? MNNVL_WIRE_COLL_FIXED + MNNVL_WIRE_MAX_RESULT
                                            : MNNVL_WIRE_MAX_TEXT;
    if (c->state == CONN_HELLO)
        return MNNVL_WIRE_HELLO_FIXED + MNNVL_WIRE_MAX_LABEL;
    return MNNVL_WIRE_MAX_AUTH_PAYLOAD;
}

/* Grows the input buffer to hold at least `want` bytes, doubling but never past `limit`
 * (the frame being received). */
static int reserve_input(struct conn *c, size_t want, size_t limit)
{
    if (c->in_cap >= want)
        return 0;
    size_t cap = c->in_cap ? c->in_cap * 2 : IN_BUFFER_MIN;
    if (cap < want)
        cap = want;
    if (cap > limit && limit >= want)
        cap = limit;
    uint8_t *in = realloc(c->in, cap);
    if (!in)
        return -1;
    c->in = in;
    c->in_cap = cap;
    return 0;
}

/* The MAC bytes after each input frame's payload. */
static size_t input_tag_len(const struct conn *c)
{
    return c->authed && !c->plain_input ? MNNVL_WIRE_MAC_BYTES : 0;
}

/* A frame failed its MAC: altered, dropped, replayed or reordered on the way (or forged).
 * The connection is out of step for good: its group loses it, it is told AUTH. */
static void on_bad_mac(struct mnnvl_tcp_root *r, struct conn *c)
{
    char name[MNNVL_SOCK_ADDR_MAX + MNNVL_WIRE_MAX_LABEL + 64];
    MNNVL_WARN("tcp root %s: dropped the connection from %s (AUTH): a message from it failed "
               "authentication (altered, dropped, replayed or reordered on the way)",
               r->address, conn_name(c, name, sizeof(name)));
    const char *why = "sent a message that failed authentication at the root (altered, "
                      "dropped, replayed or reordered on the way)";
    if (c->group && c->group->formed)
        member_lost(r, c, why);
    else
        group_detach(r, c);
    conn_send_error(c, MNNVL_ERR_AUTH, -1,
                    "a message from this rank failed authentication at the root %s: it was "
                    "altered, dropped, replayed or reordered on the way",
                    r->address);
    conn_close_after_flush(c);
}

/* The frame at the start of the input buffer: 1 and its size when its header is there,
 * 0 when the header is incomplete, -1 when it is invalid (the connection was killed). */
static int frame_at(struct conn *c, size_t at, size_t *frame)
{
    if (c->in_len - at < MNNVL_WIRE_HEADER_BYTES)
        return 0;
    uint16_t type;
    uint64_t length;
    if (mnnvl_wire_parse_header(c->in + at, &type, &length) != 0) {
        conn_kill(c, "it does not speak mnnvl tcp protocol version %d", MNNVL_WIRE_VERSION);
        return -1;
    }
    if (length > max_payload(c)) {
        conn_drop(c, "it announced a message of %llu bytes, more than the %llu its state allows",
                  (unsigned long long)length, (unsigned long long)max_payload(c));
        return -1;
    }
    *frame = MNNVL_WIRE_HEADER_BYTES + (size_t)length + input_tag_len(c);
    return 1;
}

/* Handles complete frames in the input buffer, at most *budget of them. */
static void process_input(struct mnnvl_tcp_root *r, struct conn *c, int *budget)
{
    size_t at = 0;
    size_t frame = 0;
    while (c->state != CONN_DEAD && *budget > 0 && frame_at(c, at, &frame) == 1 &&
           c->in_len - at >= frame) {
        uint16_t type = 0;
        uint64_t length = 0;
        mnnvl_wire_parse_header(c->in + at, &type, &length);
        at += frame;
        (*budget)--;
        if (input_tag_len(c) && c->state != CONN_CLOSING) { /* CLOSING discards input */
            struct iovec iov = {c->in + at - frame, frame - MNNVL_WIRE_MAC_BYTES};
            if (!mnnvl_auth_open(&c->sess, &iov, 1, c->in + at - MNNVL_WIRE_MAC_BYTES)) {
                on_bad_mac(r, c);
                break;
            }
        }
        on_frame(r, c, type, c->in + at - frame + MNNVL_WIRE_HEADER_BYTES, (size_t)length);
    }
    if (c->state == CONN_DEAD)
        return;
    if (at > 0) {
        c->in_len -= at;
        memmove(c->in, c->in + at, c->in_len);
        c->frame_since = c->in_len ? mnnvl_now_ms() : 0;
    }
    c->backlog = frame_at(c, 0, &frame) == 1 && c->in_len >= frame;
    if (c->in_len == 0 && c->in_cap > IN_BUFFER_KEEP) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

/* The size the input buffer needs for the frame now being received. */
static size_t input_need(struct conn *c)
{
    size_t frame = 0;
    return frame_at(c, 0, &frame) == 1 ? frame : IN_BUFFER_MIN;
}

/* Serves one connection for one loop turn: the frames already buffered, then what the
 * socket has, within TURN_MESSAGES messages and TURN_BYTES bytes. */
static void conn_serve(struct mnnvl_tcp_root *r, struct conn *c)
{
    int budget = TURN_MESSAGES;
    size_t took = 0;
    process_input(r, c, &budget);
    while (c->state != CONN_DEAD && budget > 0 && took < TURN_BYTES) {
        size_t need = input_need(c);
        if (c->state == CONN_DEAD)
            return;
        size_t want = need > c->in_len ? need : c->in_len + IN_BUFFER_MIN;
        if (want > c->in_len + TURN_BYTES)
            want = c->in_len + TURN_BYTES; /* grow with what arrives, not with what is announced */
        if (reserve_input(c, want, need > c->in_len ? need : want) != 0) {
            conn_kill(c, "the root ran out of memory for its message");
            return;
        }
        size_t room = c->in_cap - c->in_len;
        if (room > TURN_BYTES - took)
            room = TURN_BYTES - took;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
        if (n > 0) {
            if (c->in_len == 0)
                c->frame_since = mnnvl_now_ms();
            c->in_len += (size_t)n;
            took += (size_t)n;
            process_input(r, c, &budget);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n == 0)
            conn_kill(c, "closed its connection to the root without leaving (the process "
                         "died, or exited without destroying its communicator)");
        else
            conn_kill(c, "lost its connection to the root (%s)", strerror(errno));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The loop                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
    while (c->out_head) {
        struct out_msg *m = c->out_head;
        c->out_head = m->next;
        blob_unref(m->blob);
        free(m);
    }
    /* shutdown reaches the peer even when a forked child still holds a copy of the fd. */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    free(c->in);
    free(c);
}

static int conns_reserve(struct mnnvl_tcp_root *r)
{
    if (r->nconns < r->conns_cap)
        return 0;
    size_t cap = r->conns_cap * 2 + 64;
    struct conn **conns = reallocarray(r->conns, cap, sizeof(*conns));
    if (!conns)
        return -1;
    r->conns = conns;
    r->conns_cap = cap;
    return 0;
}

/* A new connection on fd, waiting for its CHALLENGE; NULL (fd closed) when out of memory. */
static struct conn *conn_add(struct mnnvl_tcp_root *r, int fd, int host)
{
    struct conn *c = conns_reserve(r) == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        MNNVL_WARN("tcp root %s: out of memory; dropping a connection", r->address);
        close(fd);
        return NULL;
    }
    c->root = r;
    c->fd = fd;
    c->host = host;
    c->state = CONN_CHALLENGE;
    c->since_ms = mnnvl_now_ms();
    if (host)
        snprintf(c->peer, sizeof(c->peer), "this process");
    else
        mnnvl_sock_peer_name(fd, c->peer, sizeof(c->peer));
    r->conns[r->nconns++] = c;
    return c;
}

static void accept_all(struct mnnvl_tcp_root *r)
{
    for (;;) {
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                MNNVL_WARN("tcp root %s: out of file descriptors with %zu connections; raise "
                           "the open files limit (ulimit -n)",
                           r->address, r->nconns);
                r->accept_paused_until = mnnvl_deadline_after(ACCEPT_PAUSE_MS);
            }
            return;
        }
        mnnvl_sock_nodelay(fd);
        if (!conn_add(r, fd, 0))
            return;
    }
}

/* Adopts the socket ends that mnnvl_tcp_root_connect_local handed over. */
static void adopt_local(struct mnnvl_tcp_root *r)
{
    pthread_mutex_lock(&r->local_lock);
    for (size_t i = 0; i < r->nlocal; i++)
        conn_add(r, r->local_fds[i], 1);
    r->nlocal = 0;
    pthread_mutex_unlock(&r->local_lock);
}

/* Tells a member of a group that did not form who never joined, and lets it go. */
static void forming_fail(struct conn *c, mnnvl_status_t status, const char *why)
{
    struct group *g = c->group;
    char msg[MNNVL_WIRE_MAX_TEXT];
    char note[MNNVL_WIRE_MAX_TEXT];
    refusal_note(c->root, g, note, sizeof(note));
    snprintf(msg, sizeof(msg),
             "comm '%s' did not form at the root %s: %s; %d of %d ranks were connected, "
             "%s never joined%s%s",
             g->label, c->root->address, why, g->attached, g->size, group_missing(g),
             note[0] ? "; " : "", note);
    MNNVL_INFO("tcp root %s: rank %d: %s", c->root->address, c->rank, msg);
    conn_send_error(c, status, -1, "%s", msg);
    group_detach(c->root, c);
    conn_close_after_flush(c);
}

/* Closes connections that took too long to join, to form, to send a message or to take
 * their last message. */
static void sweep(struct mnnvl_tcp_root *r)
{
    uint64_t now = mnnvl_now_ms();
    for (size_t i = 0; i < r->nconns; i++) {
        struct conn *c = r->conns[i];
        uint64_t member_limit = (uint64_t)c->timeout_ms + MEMBER_GRACE_MS;
        if (c->state <= CONN_HELLO && now - c->since_ms > JOIN_GRACE_MS) {
            conn_kill(c, "it did not authenticate and join within %d ms", JOIN_GRACE_MS);
        } else if (c->state == CONN_CLOSING && now - c->since_ms > CLOSE_GRACE_MS) {
            c->state = CONN_DEAD;
        } else if (c->state == CONN_MEMBER && c->in_len > 0 && !c->backlog &&
                   now - c->frame_since > member_limit) {
            conn_drop(c, "a message of it took over %llu ms to arrive (its timeout_ms %d)",
                      (unsigned long long)member_limit, c->timeout_ms);
        } else if (c->state == CONN_MEMBER && !c->group->formed &&
                   now - c->joined_ms > member_limit) {
            char why[96];
            snprintf(why, sizeof(why), "the group was still forming after timeout_ms %d",
                     c->timeout_ms);
            forming_fail(c, MNNVL_ERR_TIMEOUT, why);
        }
    }
}

/* On stop: the members of groups still forming learn who never came, rather than find
 * the root gone. PEER_LOST, which a joining rank retries (in root_mode=rank0 it may have
 * reached the root of the previous communicator on the same port), remembering this. */
static void stop_forming(struct mnnvl_tcp_root *r)
{
    for (size_t i = 0; i < r->nconns; i++) {
        struct conn *c = r->conns[i];
        if (c->state == CONN_MEMBER && !c->group->formed)
            forming_fail(c, MNNVL_ERR_PEER_LOST,
                         "the root stopped (the process hosting it gave "
                         "up or destroyed its communicator)");
    }
}

/* Applies the consequences of every dead connection, then frees them. Telling a group may
 * kill more connections (out of memory), hence the outer loop. */
static void reap(struct mnnvl_tcp_root *r)
{
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < r->nconns; i++) {
            struct conn *c = r->conns[i];
            if (c->state != CONN_DEAD || !c->group)
                continue;
            again = 1;
            if (c->group->formed)
                member_lost(r, c, c->why);
            else
                group_detach(r, c);
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        struct conn *c = r->conns[i];
        if (c->state == CONN_DEAD) {
            MNNVL_DEBUG("tcp root %s: closed the connection from %s: %s", r->address, c->peer,
                        c->why);
            conn_free(c);
        } else {
            r->conns[kept++] = c;
        }
    }
    r->nconns = kept;
}

static int poll_all(struct mnnvl_tcp_root *r, size_t *polled)
{
    if (r->pfds_cap < r->nconns + 2) {
        size_t cap = r->nconns * 2 + 64;
        struct pollfd *p = reallocarray(r->pfds, cap, sizeof(*p));
        if (!p)
            return -1;
        r->pfds = p;
        r->pfds_cap = cap;
    }
    int accepting = r->listen_fd >= 0 && mnnvl_deadline_left(r->accept_paused_until) == 0;
    r->pfds[0] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
    r->pfds[1] = (struct pollfd){.fd = accepting ? r->listen_fd : -1, .events = POLLIN};
    int backlog = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        struct conn *c = r->conns[i];
        short ev = (short)(POLLIN | (c->out_head && !held_back(c) ? POLLOUT : 0));
        r->pfds[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
        backlog |= c->backlog;
    }
    *polled = r->nconns;
    int timeout = r->linger_deadline ? mnnvl_deadline_left(r->linger_deadline) : ROOT_POLL_MS;
    if (backlog)
        timeout = 0; /* frames wait in a buffer: serve them without waiting for the socket */
    if (r->listen_fd >= 0 && !accepting)
        timeout = ACCEPT_PAUSE_MS;
    return poll(r->pfds, r->nconns + 2, timeout);
}

static int has_output(const struct mnnvl_tcp_root *r)
{
    for (size_t i = 0; i < r->nconns; i++)
        if (r->conns[i]->out_head)
            return 1;
    return 0;
}

/* How long from now the connected members of formed groups may still be waited for (each
 * its timeout_ms, at most OUTLIVE_MAX_MS), as a deadline; 0 when none is connected. */
static uint64_t members_deadline(const struct mnnvl_tcp_root *r)
{
    uint64_t until = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        const struct conn *c = r->conns[i];
        if (c->state != CONN_MEMBER || !c->group || !c->group->formed ||
            c->group->state[c->rank] != MEMBER_ACTIVE)
            continue;
        int wait_ms = c->timeout_ms < OUTLIVE_MAX_MS ? c->timeout_ms : OUTLIVE_MAX_MS;
        uint64_t d = mnnvl_now_ms() + (uint64_t)wait_ms;
        if (d > until)
            until = d;
    }
    return until;
}

static void loop_once(struct mnnvl_tcp_root *r)
{
    size_t polled = 0;
    if (poll_all(r, &polled) < 0) {
        if (errno != EINTR) {
            MNNVL_WARN("tcp root %s: poll failed: %s", r->address, strerror(errno));
            poll(NULL, 0, 10); /* no busy loop on a persistent failure */
        }
        return;
    }
    if (r->pfds[0].revents) {
        uint64_t v;
        (void)!read(r->wake_fd, &v, sizeof(v));
    }
    for (size_t i = 0; i < polled; i++) {
        short ev = r->pfds[i + 2].revents;
        if ((ev & (POLLIN | POLLHUP | POLLERR)) || r->conns[i]->backlog)
            conn_serve(r, r->conns[i]);
    }
    if (r->pfds[1].revents)
        accept_all(r);
    adopt_local(r);
    /* The others first, so that a host connection they held back goes out in this turn. */
    for (int host = 0; host < 2; host++)
        for (size_t i = 0; i < r->nconns; i++)
            if (r->conns[i]->host == host && r->conns[i]->out_head && !held_back(r->conns[i]))
                conn_flush(r->conns[i]);
    sweep(r);
    reap(r);
}

static void *root_main(void *arg)
{
    struct mnnvl_tcp_root *r = arg;
    uint64_t members_until = 0;
    for (;;) {
        if (atomic_load(&r->stop) && !r->linger_deadline) {
            close(r->listen_fd);
            r->listen_fd = -1;
            r->linger_deadline = mnnvl_deadline_after(STOP_LINGER_MS);
            stop_forming(r);
        }
        if (r->linger_deadline && (!has_output(r) || !mnnvl_deadline_left(r->linger_deadline))) {
            /* Then, when asked, until the members are gone: each bounded by its timeout_ms,
             * counted from when the stop began (the first time here). */
            uint64_t members = atomic_load(&r->outlive_members) ? members_deadline(r) : 0;
            if (!members)
                break;
            if (!members_until)
                members_until = members;
            if (!mnnvl_deadline_left(members_until))
                break;
        }
        loop_once(r);
    }
    for (size_t i = 0; i < r->nconns; i++) {
        group_detach(r, r->conns[i]);
        conn_free(r->conns[i]);
    }
    r->nconns = 0;
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Start and stop                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* One connection per rank: a root for a few thousand ranks needs more descriptors than the
 * usual soft limit of 1024. Raising the soft limit to the hard one is what NCCL's root does
 * too; it only widens what the process may open. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void root_free(struct mnnvl_tcp_root *r)
{
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    for (size_t i = 0; i < r->nlocal; i++)
        close(r->local_fds[i]);
    free(r->local_fds);
    pthread_mutex_destroy(&r->local_lock);
    free(r->conns);
    free(r->pfds);
    free(r);
}

/* Starts the thread with every signal blocked: signals belong to the application's threads
 * (mnnvl-store waits for SIGINT in its main thread). */
static int start_thread(struct mnnvl_tcp_root *r)
{
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, root_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

mnnvl_status_t mnnvl_tcp_root_start(const char *listen_address, const char *job_key,
                                    mnnvl_tcp_root_t **root)
{
    *root = NULL;
    struct mnnvl_tcp_root *r = calloc(1, sizeof(*r));
    if (!r)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "tcp root: out of memory");
    r->listen_fd = -1;
    r->wake_fd = -1;
    pthread_mutex_init(&r->local_lock, NULL);
    atomic_init(&r->refs, 1);
    atomic_init(&r->stop, 0);
    atomic_init(&r->outlive_members, 0);
    mnnvl_status_t st = mnnvl_auth_derive_key(job_key, &r->key);
    if (st != MNNVL_SUCCESS) {
        root_free(r);
        return mnnvl_error_wrap(st, "tcp root");
    }
    st = mnnvl_sock_listen(listen_address, &r->listen_fd, r->address, sizeof(r->address));
    if (st != MNNVL_SUCCESS) {
        root_free(r);
        return mnnvl_error_wrap(st, "tcp root");
    }
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0) {
        int err = errno;
        root_free(r);
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "tcp root: eventfd failed: %s", strerror(err));
    }
    raise_fd_limit();
    int rc = start_thread(r);
    if (rc != 0) {
        root_free(r);
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "tcp root: cannot start its thread: %s",
                           strerror(rc));
    }
    MNNVL_INFO("tcp root listening on %s", r->address);
    *root = r;
    return MNNVL_SUCCESS;
}

const char *mnnvl_tcp_root_address(const mnnvl_tcp_root_t *root)
{
    return root ? root->address : NULL;
}

void mnnvl_tcp_root_retain(mnnvl_tcp_root_t *root)
{
    atomic_fetch_add(&root->refs, 1);
}

mnnvl_status_t mnnvl_tcp_root_connect_local(mnnvl_tcp_root_t *root, int *fd)
{
    *fd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "tcp root %s: socketpair failed: %s", root->address,
                           strerror(errno));
    int flags = fcntl(sv[0], F_GETFL);
    if (flags < 0 || fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return mnnvl_error(MNNVL_ERR_BOOTSTRAP, "tcp root %s: fcntl failed: %s", root->address,
                           strerror(err));
    }
    pthread_mutex_lock(&root->local_lock);
    int room = root->nlocal < root->local_cap;
    if (!room) {
        size_t cap = root->local_cap * 2 + 4;
        int *fds = reallocarray(root->local_fds, cap, sizeof(*fds));
        if (fds) {
            root->local_fds = fds;
            root->local_cap = cap;
            room = 1;
        }
    }
    if (room)
        root->local_fds[root->nlocal++] = sv[0];
    pthread_mutex_unlock(&root->local_lock);
    if (!room) {
        close(sv[0]);
        close(sv[1]);
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "tcp root %s: out of memory", root->address);
    }
    uint64_t one = 1;
    (void)!write(root->wake_fd, &one, sizeof(one));
    *fd = sv[1];
    return MNNVL_SUCCESS;
}

void mnnvl_tcp_root_outlive_members(mnnvl_tcp_root_t *root)
{
    atomic_store(&root->outlive_members, 1);
}

void mnnvl_tcp_root_stop(mnnvl_tcp_root_t *root)
{
    if (!root || atomic_fetch_sub(&root->refs, 1) != 1)
        return;
    atomic_store(&root->stop, 1);
    uint64_t one = 1;
    (void)!write(root->wake_fd, &one, sizeof(one));
    pthread_join(root->thread, NULL);
    MNNVL_DEBUG("tcp root %s stopped", root->address);
    root_free(root);
}

/* ---------------------------------------------------------------------------------------- */
/* Fuzzing entry                                                                            */
/* ---------------------------------------------------------------------------------------- */

void mnnvl_tcp_root_feed(const uint8_t *data, size_t len)
{
    struct mnnvl_tcp_root r = {.listen_fd = -1, .wake_fd = -1};
    snprintf(r.address, sizeof(r.address), "fuzz");
    if (mnnvl_auth_derive_key("", &r.key) != MNNVL_SUCCESS)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->root = &r;
    c->fd = -1;
    c->state = CONN_HELLO;
    /* As after a handshake: what the root sends is sealed under a session (of zero nonces),
     * but the fed frames carry no MAC, so that a fuzzer reaches the message handling
     * rather than spend itself on tags it cannot forge. */
    mnnvl_auth_session(&r.key, MNNVL_AUTH_ROOT, c->rank_nonce, c->root_nonce, &c->sess);
    c->authed = 1;
    c->plain_input = 1;
    c->since_ms = mnnvl_now_ms();
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    c->in = malloc(len ? len : 1);
    if (!c->in) {
        free(c);
        return;
    }
    if (len)
        memcpy(c->in, data, len);
    c->in_len = c->in_cap = len;
    /* Turns as the loop would run them, while frames wait beyond one turn's budget. */
    for (int turn = 0; turn < 1 + (int)(len / MNNVL_WIRE_HEADER_BYTES); turn++) {
        int budget = TURN_MESSAGES;
        process_input(&r, c, &budget);
        if (c->state == CONN_DEAD || !c->backlog)
            break;
    }
    if (c->group && c->group->formed)
        member_lost(&r, c, "the fuzzed connection ended");
    else
        group_detach(&r, c);
    conn_free(c);
}
