/* The star protocol shared by the ucx and ofi bootstrap plugins: every collective goes
 * through rank 0. Each plugin compiles its own copy of star.c (a plugin shares nothing with
 * libmnnvl but bootstrap.h), and supplies the transport: sending one message to a rank,
 * waiting for progress, and making links to peers.
 *
 * Messages: a header plus `bytes` of payload. Many communicators share one process-wide
 * transport (a UCX worker, a libfabric endpoint), so every header names the receiving
 * communicator by its token (`dst`, unique in the receiving process); a HELLO (dst 0) goes
 * to the lobby of the root address it was sent to, where the communicator being formed
 * there picks it up.
 *
 * Forming: members send HELLO {comm id, rank, size, their token, their address, a fresh
 * nonce} to the root address; rank 0 takes one HELLO per rank from its lobby and answers
 * CHALLENGE {its own fresh nonce, nothing else}; the member answers PROOF {its proof of the
 * job key over both nonces (bootstrap/auth.h)}; a right proof makes it a member with a
 * session key from the job key and both nonces, a wrong one is answered REJECT (AUTH) and
 * fails rank 0's create with AUTH too. Once every rank proved, rank 0 answers FORMED {its
 * token}, the first authenticated frame: it proves to the member that rank 0 holds the key.
 * Nothing rank 0 sends before a member's proof depends on the key.
 * Once formed, every rank learns every rank's token and address (two rounds), so that a
 * child (split, shrink) needs no root and no message over the parent (whose ranks may be
 * dead): its members link from that table, with tokens every member derives alike, and
 * meet with the child's rank 0 in the same handshake, HELLO {their list of members, a
 * fresh nonce}, CHALLENGE, PROOF, FORMED, so that every child link has a fresh session key
 * too; rank 0 answers REJECT (MISMATCH) when a member's list differs from its own.
 * Frames: every message but HELLO, CHALLENGE, PROOF, REJECT and PING carries its number on
 * its link (fseq) and a MAC under the link's session key over (direction, fseq, the header
 * without aux, the payload) (mnnvl_auth_seal_seq). star_deliver drops a frame from a peer
 * without a session, and fails the communicator with AUTH on one whose MAC is wrong or
 * whose number it accepted before (altered, forged or replayed). A forged REJECT can only
 * stop forming, like a dropped message.
 * Collectives: each rank sends its part to rank 0 (CONTRIB), rank 0 answers every rank with
 * the result (RESULT) or an ERROR (MISMATCH). Failures: a rank that times out or aborts
 * sends ABORT; rank 0 passes an ABORT or a lost link on to every member, so that pending and
 * later calls fail with PEER_LOST everywhere. Leaving: BYE.
 * Liveness (star_poll_lost, the library's watcher thread): between collectives nobody else
 * moves the transport, so the watcher does, a poll at a time under the lock; messages it
 * receives wait in their communicator's queue as ever. Rank 0 watches every member's link
 * (its transport's own report, or PINGs for transports that learn of a dead peer only by
 * sending to it) and takes an ABORT as its sender's end; for each member lost without a BYE
 * it sends LOST {origin: that rank} to every other member. A member reports what LOST and
 * ABORT name, and rank 0 itself when its link to rank 0 breaks without a BYE. LOST is news
 * only: the collectives fail as before (rank 0's ABORT).
 *
 * One outcome per collective: rank 0 decides each collective once it holds every part; from
 * then on its RESULTs stand, whatever happens to the members afterwards (a member that dies
 * right after taking its result fails the *next* collective of the others, never this one).
 * An ABORT therefore names the first collective it fails (seq): a member still waiting for
 * an earlier RESULT keeps waiting for it, since rank 0 sent it before the ABORT (and some
 * transports, ofi with a separate payload message, may deliver it after the ABORT).
 *
 * Locking: a communicator's calls run with its transport's process lock held (st->lock);
 * the transport's wait releases it while sleeping. abort() takes no lock. */
#ifndef MNNVL_PLUGIN_STAR_H
#define MNNVL_PLUGIN_STAR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bootstrap/auth.h"
#include "bootstrap/bootstrap.h"

#define STAR_CLOSE_GRACE_MS 1000 /* how long leaving waits for its BYE/ABORT to go out */
#define STAR_RETRY_PAUSE_MS 20   /* between attempts to reach a root that is not there yet */
#define STAR_ADDRESS_MAX 2048    /* the largest transport address (a UCX worker address) */

enum {
    STAR_HELLO = 1,
    STAR_FORMED,
    STAR_REJECT,
    STAR_CONTRIB,
    STAR_RESULT,
    STAR_ERROR,
    STAR_ABORT,
    STAR_BYE,
    STAR_PING, /* liveness probe; dropped by the receiving transport */
    STAR_CHALLENGE,
    STAR_PROOF,
    STAR_LOST, /* rank 0 to a member: rank `origin` was lost (liveness news) */
};

typedef struct star_hdr {
    uint32_t type;
    int32_t rank;   /* the sender's rank */
    uint64_t dst;   /* the receiving communicator's token; 0: a root's lobby */
    uint64_t src;   /* the sending communicator's token */
    uint64_t seq;   /* the collective's number; the communicator id in HELLO/FORMED; ABORT:
                     * the first collective it fails */
    uint64_t bytes; /* payload length */
    int32_t status; /* ERROR, ABORT: the failure's status */
    int32_t size;   /* the sender's communicator size */
    int32_t origin; /* ABORT: the rank where the failure started; LOST: the lost rank */
    uint32_t pad;
    uint64_t aux;  /* the transport's own (ofi: the tag of a separate payload message) */
    uint64_t fseq; /* the frame's number on its link (authenticated frames) */
    uint8_t mac[MNNVL_WIRE_MAC_BYTES]; /* see the top of the file; zero when unauthenticated */
} star_hdr_t;

typedef struct star_msg {
    struct star_msg *next;
    star_hdr_t h;
    void *from; /* the transport's link it came over, where it knows it (UCX: HELLO) */
    size_t len;
    uint8_t data[];
} star_msg_t;

/* A payload shared by the sends of one batch, reference-counted: a send that is still in
 * flight when its caller gives up keeps its copy alive (the caller's buffer may be gone). */
typedef struct star_buf {
    int refs;
    size_t len;
    uint8_t data[];
} star_buf_t;

/* A buffer holding a copy of len bytes (NULL for 0 bytes or no memory); ref and unref
 * count its users. */
star_buf_t *star_buf_copy(const void *data, size_t len);
star_buf_t *star_buf_ref(star_buf_t *b);
void star_buf_unref(star_buf_t *b);

/* One message on its way; the transport keeps its state in `op`. */
typedef struct star_send {
    star_hdr_t h;
    star_buf_t *buf; /* NULL for no payload */
    int to;          /* the receiving rank */
    void *op;
    char why[200]; /* why it failed */
} star_send_t;

/* Messages waiting for the communicator that a root address is forming. */
typedef struct star_lobby {
    star_msg_t *head;
} star_lobby_t;

typedef struct star star_t;

typedef struct star_ops {
    const char *name; /* "ucx", "ofi" */
    /* Starts sending s to rank s->to; s->h and s->buf are the transport's to copy or keep
     * (star_buf_ref) until the send completes, even past send_end. */
    void (*send_start)(star_t *st, star_send_t *s);
    /* 0 while s is in flight, 1 once it is sent, -1 when it failed (s->why says why).
     * Never blocks; may retry a start the transport had to postpone. */
    int (*send_test)(star_t *st, star_send_t *s);
    /* The caller is done with s: a send still in flight finishes on its own. */
    void (*send_end)(star_t *st, star_send_t *s);
    /* Progresses the transport (delivering messages with star_deliver) and sleeps until
     * something arrives, the process is woken, or `until` (star_now_ms() time); releases
     * st->lock while sleeping. */
    void (*wait)(star_t *st, uint64_t until);
    /* Progresses the transport once, without sleeping or releasing the lock; returns how
     * many events it handled (0: nothing happened). */
    int (*poll)(star_t *st);
    /* Wakes a wait of st from another thread (abort). */
    void (*wake)(star_t *st);
    /* NULL while the transport knows nothing wrong with the link to `rank`, else why. */
    const char *(*link_broken)(star_t *st, int rank);
    /* Rank 0: makes the HELLO's sender the link to rank hello->h.rank. */
    mnnvl_status_t (*adopt)(star_t *st, star_msg_t *hello);
    /* Members: makes the link to rank 0 at the root address. */
    mnnvl_status_t (*connect_root)(star_t *st, uint64_t deadline);
    /* Drops the link to `rank` (members retrying the root). */
    void (*unlink)(star_t *st, int rank);
    /* This communicator's address (what peers of a split child link to), in buf of *len. */
    mnnvl_status_t (*address)(star_t *st, void *buf, size_t *len);
    /* Makes the link to `rank` from its address. */
    mnnvl_status_t (*link_address)(star_t *st, int rank, const void *addr, size_t len);
    /* A child of `parent` on the same transport (registered, with a token), or NULL. */
    star_t *(*child_new)(star_t *parent, int rank, int size);
    /* Frees the transport's part and st; called with the lock NOT held. */
    void (*free)(star_t *st);
    /* Transports that learn of a dead peer only by sending to it ask for a PING to each
     * awaited peer this often (0: never). */
    int ping_ms;
} star_ops_t;

typedef struct star_peer {
    uint64_t token; /* its communicator's token: our messages' dst */
    int joined;
    int bye;          /* it destroyed its communicator */
    char lost[200];   /* a send to it failed: why */
    star_send_t ping; /* ping.op != NULL while a PING is in flight */
    uint64_t ping_at;
    /* Liveness: known lost (its link broke without a BYE, or an ABORT or LOST named it);
     * reported by poll_lost; rank 0 told the other members. */
    int dead;
    int reported;
    int told;
    /* The link's authentication: the session once the handshake (forming or a child's
     * meeting) made one; rank 0 keeps both nonces of a member it challenged until that
     * member proves. */
    mnnvl_auth_session_t sess;
    int authed;
    int challenged;
    uint8_t rank_nonce[MNNVL_WIRE_NONCE_BYTES];
    uint8_t root_nonce[MNNVL_WIRE_NONCE_BYTES];
} star_peer_t;

struct star {
    mnnvl_bootstrap_t bs;
    const star_ops_t *ops;
    pthread_mutex_t *lock;
    uint64_t token;
    uint64_t comm_id;
    int timeout_ms;
    uint64_t seq;
    atomic_int aborted; /* abort() was called */
    int told_abort;     /* ABORT went out */
    int broken;         /* a failure left it unusable */
    int quiet;          /* >0: failures are not recorded (leaving, telling the peers) */
    char broken_msg[400];
    int abort_origin; /* an ABORT arrived: from which rank it started (-1: none) */
    int abort_status;
    uint64_t abort_seq; /* the first collective that ABORT fails (its sender had decided the
                         * earlier ones: their results are on the way and still count) */
    uint64_t decided;   /* collectives before this one have an outcome at this rank */
    star_msg_t *head, *tail;
    star_peer_t *peers; /* by rank; members use peers[0] only */
    char root[300];     /* the root address, or "<parent root> (child N)" */
    uint32_t splits;    /* children built so far */
    uint8_t *table;     /* every rank's (u64 token, u64 length, address) slot, once formed */
    size_t table_slot;  /* bytes per slot */
    void (*set_error)(mnnvl_status_t status, const char *sentence);
    mnnvl_auth_key_t key; /* from job_key; never printed */
    int formed;           /* forming is over: handshake messages are dropped */
    int is_child;         /* a child: its rank 0 takes HELLOs from its queue, not a lobby */
    char forged[240];     /* a frame failed authentication: why (then every call fails AUTH) */
    star_send_t *news;    /* rank 0: LOST frames in flight (liveness) */
    int n_news, cap_news;
    int liveness_ended; /* a member: rank 0 is gone or left, and with it the news */
};

/* The communicators of one transport, for routing by token. */
typedef struct star_registry {
    star_t **v;
    int n, cap;
} star_registry_t;

uint64_t star_now_ms(void);
/* "TIMEOUT", "PEER_LOST", ... for the sentences (plugins cannot call libmnnvl). */
const char *star_status_name(int s);
void star_pause_ms(int ms);

/* Records the sentence "<name> bootstrap: rank R: ..." and returns s. */
mnnvl_status_t star_fail(star_t *st, mnnvl_status_t s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the core of a new communicator (the transport allocated st inside its own struct).
 * NO_MEMORY when the peer table cannot be allocated. */
mnnvl_status_t star_init(star_t *st, const star_ops_t *ops, pthread_mutex_t *lock, int rank,
                         int size, int timeout_ms, void (*set_error)(mnnvl_status_t, const char *));
/* Frees what star_init and the queue hold (not st). */
void star_release(star_t *st);

/* The start of every star plugin's create: checks the arguments (interface version, rank,
 * size, timeout), readies `like` to report errors before the communicator exists, reads
 * the config key root into like->root (INVALID_ARGUMENT naming the key when it is unset)
 * and derives like->key from args->job_key (copy it into the communicator). */
mnnvl_status_t star_begin(star_t *like, const star_ops_t *ops, const mnnvl_bootstrap_args_t *args,
                          mnnvl_bootstrap_t **out);

/* Gives the new communicator st what star_begin read into `like` (root, key). */
void star_take_like(star_t *st, const star_t *like);

/* Adds st to its transport's registry, under st->lock unless the caller holds it
 * (`locked`). 0 on success, -1 when out of memory. */
int star_register(star_t *st, star_registry_t *r, int locked);

/* Forms the communicator by `deadline` (star_now_ms() time): rank 0 from `lobby`, members
 * through connect_root. Size 1 forms at once. */
mnnvl_status_t star_form(star_t *st, star_lobby_t *lobby, const char *comm_name, uint64_t deadline);

/* The end of every star plugin's create, after the transport's own setup returned s: forms
 * st (star_form) and hands it out in *out, or frees it (ops->free) and returns the failure. */
mnnvl_status_t star_finish(star_t *st, mnnvl_status_t s, star_lobby_t *lobby,
                           const mnnvl_bootstrap_args_t *args, uint64_t deadline,
                           mnnvl_bootstrap_t **out);

/* The plugin's exported entry (bootstrap.h), for `create`. */
#define STAR_PLUGIN(plugin_name, create_fn)                      \
    __attribute__((visibility("default")))                       \
    const mnnvl_bootstrap_plugin_t mnnvl_bootstrap_plugin_v2 = { \
        .version = MNNVL_BOOTSTRAP_ABI_VERSION,                  \
        .size = sizeof(mnnvl_bootstrap_plugin_t),                \
        .name = (plugin_name),                                   \
        .create = (create_fn)}

/* The public id of the communicator `name` of `size` ranks that HELLO carries (a hash of the
 * name: nothing from the key). */
uint64_t star_comm_id(const char *name, int size);

/* Hands a received message to its communicator: checks its MAC (authenticated types) or
 * that its handshake type is expected now, else drops it. Takes m. Under the lock. */
void star_deliver(star_t *st, star_msg_t *m);

/* The lobby: add takes m; take returns the first HELLO for (comm_id, size) or NULL;
 * drop_from frees every message that came over `from`; clear frees all. */
void star_lobby_add(star_lobby_t *l, star_msg_t *m);
star_msg_t *star_lobby_take(star_lobby_t *l, uint64_t comm_id);
void star_lobby_drop_from(star_lobby_t *l, const void *from);
void star_lobby_clear(star_lobby_t *l);

/* A process-unique token, never 0. */
uint64_t star_new_token(void);
int star_registry_add(star_registry_t *r, star_t *st);
void star_registry_remove(star_registry_t *r, const star_t *st);
star_t *star_registry_find(const star_registry_t *r, uint64_t token);
void star_registry_free(star_registry_t *r);

/* The plugin's name in its operations table: each plugin compiles star.c with its own. */
#ifndef STAR_BACKEND_NAME
#error "compile star.c with -DSTAR_BACKEND_NAME=\"ucx\" (or ofi)"
#endif

/* Points bs at the star operations table. */
void star_fill_interface(star_t *st);

#endif
