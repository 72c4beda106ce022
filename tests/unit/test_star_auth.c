/* The star protocol's job-key proof and frame authentication (the ucx and ofi plugins'
 * bootstrap/plugins/star.c), tried as an attacker would: a raw probe of rank 0 that must
 * learn nothing key-derived, and a relay between rank 1 and rank 0 that flips, drops,
 * replays or reorders frames. The ranks are threads over an in-process transport whose
 * every message passes through the relay hook: a TCP relay like test_tcp_auth.c's cannot
 * sit in UCX's or libfabric's data path (their data connections do not go through the
 * root port). The real plugins' wrong and right keys are tested by test_backends
 * (ucx::wrong_key, ofi::wrong_key, and every conformance scenario runs with a key).
 *
 * Built from the plugin sources with MNNVL_PLUGIN, like the plugins. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap/auth.h"
#include "bootstrap/plugins/star.h"

TestSuite(star_auth, .timeout = 60);

#define KEY "the star test's job key 0123456789abcdef"
#define OTHER_KEY "another job key of the star test 0123456"
#define PROBE_TOKEN 0x7070707070707070ull

/* ---------------------------------------------------------------------------------------- */
/* The in-process transport                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* The relay: sees every message (and may change, drop, keep or add messages); returns the
 * message to deliver now, or NULL. */
typedef star_msg_t *(*relay_fn)(star_msg_t *m);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t moved = PTHREAD_COND_INITIALIZER;
static star_registry_t registry;
static star_lobby_t lobby;
static relay_fn relay;
/* What rank 0 sent to the probe (PROBE_TOKEN), in order. */
static star_msg_t *captured[8];
static int ncaptured;

static const star_ops_t fake_ops;

static void route(star_msg_t *m)
{
    if (m->h.dst == 0 && m->h.type == STAR_HELLO) {
        m->from = NULL;
        star_lobby_add(&lobby, m);
    } else if (m->h.dst == PROBE_TOKEN && ncaptured < 8) {
        captured[ncaptured++] = m;
    } else {
        star_t *to = star_registry_find(&registry, m->h.dst);
        if (to)
            star_deliver(to, m);
        else
            free(m);
    }
    pthread_cond_broadcast(&moved);
}

static star_msg_t *copy_of(const star_hdr_t *h, const star_buf_t *buf)
{
    size_t len = buf ? buf->len : 0;
    star_msg_t *m = calloc(1, sizeof(*m) + len);
    cr_assert(m);
    m->h = *h;
    m->len = len;
    if (len)
        memcpy(m->data, buf->data, len);
    return m;
}

static void fake_send_start(star_t *st, star_send_t *s)
{
    (void)st;
    s->op = (void *)1;
    star_msg_t *m = copy_of(&s->h, s->buf);
    if (relay)
        m = relay(m);
    if (m)
        route(m);
}

static int fake_send_test(star_t *st, star_send_t *s)
{
    (void)st;
    (void)s;
    return 1;
}

static void fake_send_end(star_t *st, star_send_t *s)
{
    (void)st;
    (void)s;
}

static void fake_wait(star_t *st, uint64_t until)
{
    (void)st;
    uint64_t now = star_now_ms();
    uint64_t ms = until > now ? until - now : 0;
    ms = ms > 20 ? 20 : ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&moved, &lock, &ts);
}

static int fake_poll(star_t *st)
{
    (void)st;
    return 0; /* sends land in the receiver's queue at once: nothing to move */
}

static void fake_wake(star_t *st)
{
    (void)st;
    pthread_cond_broadcast(&moved);
}

static const char *fake_link_broken(star_t *st, int rank)
{
    (void)st;
    (void)rank;
    return NULL;
}

static mnnvl_status_t fake_adopt(star_t *st, star_msg_t *hello)
{
    (void)st;
    (void)hello;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t fake_connect_root(star_t *st, uint64_t deadline)
{
    (void)st;
    (void)deadline;
    return MNNVL_SUCCESS;
}

static void fake_unlink(star_t *st, int rank)
{
    (void)st;
    (void)rank;
}

static mnnvl_status_t fake_address(star_t *st, void *buf, size_t *len)
{
    memcpy(buf, &st->token, sizeof(st->token));
    *len = sizeof(st->token);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t fake_link_address(star_t *st, int rank, const void *addr, size_t len)
{
    (void)st;
    (void)rank;
    (void)addr;
    (void)len;
    return MNNVL_SUCCESS;
}

/* With `lock` held: the registry is shared with the other rank's thread. */
static star_t *comm_new(int rank, int size, int timeout_ms,
                        void (*set_error)(mnnvl_status_t, const char *))
{
    star_t *st = calloc(1, sizeof(*st));
    cr_assert(st);
    cr_assert_eq(star_init(st, &fake_ops, &lock, rank, size, timeout_ms, set_error), MNNVL_SUCCESS);
    cr_assert_eq(star_registry_add(&registry, st), 0);
    return st;
}

static star_t *fake_child_new(star_t *parent, int rank, int size)
{
    return comm_new(rank, size, parent->timeout_ms, parent->set_error);
}

static void fake_free(star_t *st)
{
    pthread_mutex_lock(&lock);
    star_registry_remove(&registry, st);
    pthread_mutex_unlock(&lock);
    star_release(st);
    free(st);
}

static const star_ops_t fake_ops = {
    .name = "fake",
    .send_start = fake_send_start,
    .send_test = fake_send_test,
    .send_end = fake_send_end,
    .wait = fake_wait,
    .poll = fake_poll,
    .wake = fake_wake,
    .link_broken = fake_link_broken,
    .adopt = fake_adopt,
    .connect_root = fake_connect_root,
    .unlink = fake_unlink,
    .address = fake_address,
    .link_address = fake_link_address,
    .child_new = fake_child_new,
    .free = fake_free,
    .ping_ms = 0,
};

/* ---------------------------------------------------------------------------------------- */
/* Ranks                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static __thread char last_error[700];

static void record_error(mnnvl_status_t status, const char *sentence)
{
    (void)status;
    snprintf(last_error, sizeof(last_error), "%s", sentence);
}

static const char *cfg_get(const void *config, const char *key)
{
    (void)config;
    return strcmp(key, "root") == 0 ? "fake:1" : "";
}

typedef struct rank_run {
    const char *key;
    int rank;
    int size;
    int timeout_ms;
    int ops;   /* allgathers after create */
    int child; /* then builds a child of both ranks in reverse order and allgathers on it */
    mnnvl_status_t create;
    mnnvl_status_t child_create, child_op;
    int child_data_ok;
    mnnvl_status_t op[3];
    int op_data_ok[3];
    uint64_t create_ms;
    char why[700];
} rank_run_t;

/* Set once a rank starts building its child: from then on the relay drops every message to
 * a parent communicator (see child_relay). */
static atomic_int children_started;

/* A child of both ranks in reverse order (parent rank 1 is its rank 0), then one allgather
 * of 8 bytes on it. */
static void run_child(rank_run_t *r, star_t *st)
{
    int members[2] = {1, 0};
    mnnvl_bootstrap_child_t child = {.members = members, .size = 2, .rank = 1 - r->rank, .tag = 7};
    mnnvl_bootstrap_t *cbs = NULL;
    atomic_store(&children_started, 1);
    r->child_create = st->bs.ops->child(&st->bs, &child, &cbs);
    if (r->child_create != MNNVL_SUCCESS) {
        snprintf(r->why, sizeof(r->why), "%s", last_error);
        return;
    }
    uint64_t mine = 0x0101010101010101ull * (uint64_t)(child.rank + 1), all[2];
    r->child_op = cbs->ops->allgather(cbs, &mine, all, sizeof(mine));
    r->child_data_ok = all[0] == 0x0101010101010101ull && all[1] == 0x0202020202020202ull;
    if (r->child_op != MNNVL_SUCCESS)
        snprintf(r->why, sizeof(r->why), "%s", last_error);
    cbs->ops->destroy(cbs);
}

/* Creates a star communicator like the plugins do and runs `ops` allgathers of 8 bytes
 * whose content depends on rank and round (more than one message of the relay's kind). */
static void *run_rank(void *arg)
{
    rank_run_t *r = arg;
    mnnvl_bootstrap_args_t args = {.abi_version = MNNVL_BOOTSTRAP_ABI_VERSION,
                                   .rank = r->rank,
                                   .size = r->size,
                                   .timeout_ms = r->timeout_ms,
                                   .job_key = r->key,
                                   .comm_name = "star-auth",
                                   .config_get = cfg_get,
                                   .set_error = record_error};
    star_t like;
    mnnvl_bootstrap_t *out = NULL;
    uint64_t start = star_now_ms();
    r->create = star_begin(&like, &fake_ops, &args, &out);
    star_t *st = NULL;
    if (r->create == MNNVL_SUCCESS) {
        /* The registry is read by the other rank's sends, under the lock (child_new runs
         * with it held already, from star.c). */
        pthread_mutex_lock(&lock);
        st = comm_new(r->rank, r->size, r->timeout_ms, record_error);
        pthread_mutex_unlock(&lock);
        snprintf(st->root, sizeof(st->root), "%s", like.root);
        st->key = like.key;
        r->create = star_form(st, &lobby, "star-auth", start + (uint64_t)r->timeout_ms);
    }
    r->create_ms = star_now_ms() - start;
    snprintf(r->why, sizeof(r->why), "%s", last_error);
    if (r->create != MNNVL_SUCCESS) {
        if (st)
            fake_free(st);
        return NULL;
    }
    star_fill_interface(st);
    for (int i = 0; i < r->ops; i++) {
        uint64_t mine = 0x1111111111111111ull * (uint64_t)(r->rank + 1) + (uint64_t)i, all[2];
        r->op[i] = st->bs.ops->allgather(&st->bs, &mine, all, sizeof(mine));
        r->op_data_ok[i] = all[0] == 0x1111111111111111ull + (uint64_t)i &&
                           all[1] == 0x2222222222222222ull + (uint64_t)i;
        if (r->op[i] != MNNVL_SUCCESS) {
            snprintf(r->why, sizeof(r->why), "%s", last_error);
            break;
        }
    }
    if (r->child)
        run_child(r, st);
    st->bs.ops->destroy(&st->bs);
    return NULL;
}

static void run_pair(rank_run_t runs[2])
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, run_rank, &runs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    star_lobby_clear(&lobby);
    relay = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Wrong key, right key                                                                     */
/* ---------------------------------------------------------------------------------------- */

Test(star_auth, right_key_works)
{
    rank_run_t r[2] = {{.key = KEY, .rank = 0, .size = 2, .timeout_ms = 5000, .ops = 3},
                       {.key = KEY, .rank = 1, .size = 2, .timeout_ms = 5000, .ops = 3}};
    run_pair(r);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(r[i].create, MNNVL_SUCCESS, "rank %d: %s", i, r[i].why);
        for (int k = 0; k < 3; k++)
            cr_expect(r[i].op[k] == MNNVL_SUCCESS && r[i].op_data_ok[k],
                      "rank %d allgather %d: %d, data %s: %s", i, k, r[i].op[k],
                      r[i].op_data_ok[k] ? "intact" : "wrong", r[i].why);
    }
}

Test(star_auth, wrong_key_is_refused_at_once_on_both_sides)
{
    rank_run_t r[2] = {{.key = KEY, .rank = 0, .size = 2, .timeout_ms = 10000},
                       {.key = OTHER_KEY, .rank = 1, .size = 2, .timeout_ms = 10000}};
    run_pair(r);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(r[i].create, MNNVL_ERR_AUTH, "rank %d: %d: %s", i, r[i].create, r[i].why);
        cr_expect_lt(r[i].create_ms, 2000, "rank %d took %llu ms", i,
                     (unsigned long long)r[i].create_ms);
        cr_expect(strstr(r[i].why, "job key") || strstr(r[i].why, "job_key"),
                  "rank %d does not say why: %s", i, r[i].why);
        cr_expect(!strstr(r[i].why, "0123456"), "rank %d shows a key: %s", i, r[i].why);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* A raw probe of rank 0                                                                    */
/* ---------------------------------------------------------------------------------------- */

static int contains(const star_msg_t *m, const void *needle, size_t len)
{
    return memmem(&m->h, sizeof(m->h), needle, len) || memmem(m->data, m->len, needle, len);
}

static void *hub_thread(void *arg)
{
    run_rank(arg);
    return NULL;
}

/* Sends rank 0 what a stranger could: a HELLO with a nonce, then a made-up proof. */
static void probe_send(uint32_t type, const void *payload, size_t len)
{
    star_hdr_t h = {.type = type,
                    .rank = 1,
                    .src = PROBE_TOKEN,
                    .seq = star_comm_id("star-auth", 2),
                    .bytes = len,
                    .size = 2};
    pthread_mutex_lock(&lock);
    if (type != STAR_HELLO)
        h.dst = captured[0]->h.src; /* rank 0's token, from its CHALLENGE */
    star_msg_t *m = calloc(1, sizeof(*m) + len);
    cr_assert(m);
    m->h = h;
    m->len = len;
    memcpy(m->data, payload, len);
    route(m);
    pthread_mutex_unlock(&lock);
}

static int wait_captured(int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&lock);
        int have = ncaptured;
        pthread_mutex_unlock(&lock);
        if (have >= n)
            return 1;
        star_pause_ms(10);
    }
    return 0;
}

Test(star_auth, unauthenticated_probe_learns_nothing_key_derived)
{
    rank_run_t hub = {.key = KEY, .rank = 0, .size = 2, .timeout_ms = 10000};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, hub_thread, &hub), 0);
    uint8_t hello[8 + MNNVL_WIRE_NONCE_BYTES];
    uint64_t probe = PROBE_TOKEN;
    memcpy(hello, &probe, 8);
    mnnvl_auth_init();
    mnnvl_auth_random(hello + 8, MNNVL_WIRE_NONCE_BYTES);
    const uint8_t *nonce = hello + 8;
    star_pause_ms(50); /* rank 0 is forming */
    probe_send(STAR_HELLO, hello, sizeof(hello));
    cr_assert(wait_captured(1), "rank 0 did not answer the HELLO");

    /* The answer to a HELLO: a CHALLENGE of exactly one nonce, no MAC. */
    const star_msg_t *c = captured[0];
    cr_assert_eq(c->h.type, STAR_CHALLENGE);
    cr_assert_eq(c->len, MNNVL_WIRE_NONCE_BYTES, "the challenge carries more than a nonce");
    static const uint8_t zero[MNNVL_WIRE_MAC_BYTES];
    cr_expect(!memcmp(c->h.mac, zero, sizeof(zero)), "the challenge carries a MAC");

    /* A made-up proof: REJECT(AUTH), nothing else; rank 0 fails with AUTH at once. */
    uint8_t guess[MNNVL_WIRE_PROOF_BYTES];
    memset(guess, 0x5a, sizeof(guess));
    uint64_t sent = star_now_ms();
    probe_send(STAR_PROOF, guess, sizeof(guess));
    pthread_join(t, NULL);
    cr_expect_eq(hub.create, MNNVL_ERR_AUTH, "rank 0: %d: %s", hub.create, hub.why);
    cr_expect_lt(star_now_ms() - sent, 2000);
    cr_expect(strstr(hub.why, "different job key"), "rank 0 does not say why: %s", hub.why);
    cr_expect(!strstr(hub.why, "0123456"), "rank 0 shows the key: %s", hub.why);
    cr_assert_eq(ncaptured, 2, "rank 0 sent the probe %d messages", ncaptured);
    const star_msg_t *rej = captured[1];
    cr_expect(rej->h.type == STAR_REJECT && rej->h.status == MNNVL_ERR_AUTH && rej->len == 0,
              "the answer to a wrong proof: type %u, status %d, %zu bytes", rej->h.type,
              rej->h.status, rej->len);

    /* Nothing computed from the key: not the key, its derivation, either proof for these
     * nonces, nor the session key. */
    mnnvl_auth_key_t key;
    uint8_t proof[MNNVL_WIRE_PROOF_BYTES];
    mnnvl_auth_session_t sess;
    cr_assert_eq(mnnvl_auth_derive_key(KEY, &key), MNNVL_SUCCESS);
    for (int i = 0; i < ncaptured; i++) {
        const star_msg_t *m = captured[i];
        cr_expect(!contains(m, KEY, strlen(KEY)), "the key was sent");
        cr_expect(!contains(m, key.k, sizeof(key.k)), "the derived key was sent");
        mnnvl_auth_proof(&key, MNNVL_AUTH_ROOT, nonce, c->data, proof);
        cr_expect(!contains(m, proof, sizeof(proof)), "a root proof was sent");
        mnnvl_auth_proof(&key, MNNVL_AUTH_RANK, nonce, c->data, proof);
        cr_expect(!contains(m, proof, sizeof(proof)), "a rank proof was sent");
        mnnvl_auth_session(&key, MNNVL_AUTH_ROOT, nonce, c->data, &sess);
        cr_expect(!contains(m, sess.k, sizeof(sess.k)), "the session key was sent");
    }
    for (int i = 0; i < ncaptured; i++)
        free(captured[i]);
    ncaptured = 0;
    star_lobby_clear(&lobby);
}

/* ---------------------------------------------------------------------------------------- */
/* A tampering relay between rank 1 and rank 0                                              */
/* ---------------------------------------------------------------------------------------- */

enum relay_mode { FLIP_CONTRIB, FLIP_RESULT, FLIP_HEADER, DROP, REPLAY, REORDER };
static enum relay_mode mode;
static int seen;         /* messages of the relay's kind so far */
static star_msg_t *kept; /* REORDER: the frame held back */

/* Forming ends with the rounds that teach every rank its peers' addresses (for children):
 * collectives 0 and 1; the test's own allgathers come after them. */
#define FORMING_ROUNDS 2

/* Rank 1's allgather contributions (or, FLIP_RESULT, rank 0's results to rank 1). */
static int of_interest(const star_msg_t *m)
{
    if (m->h.seq < FORMING_ROUNDS)
        return 0;
    if (mode == FLIP_RESULT)
        return m->h.type == STAR_RESULT && m->h.rank == 0;
    return m->h.type == STAR_CONTRIB && m->h.rank == 1;
}

static star_msg_t *tamper(star_msg_t *m)
{
    if (kept && m->h.rank == 1) {
        /* REORDER: rank 1's next frame goes first, then the one held back. */
        route(m);
        m = kept;
        kept = NULL;
        return m;
    }
    if (!of_interest(m) || seen++ != 0)
        return m;
    switch (mode) {
    case FLIP_CONTRIB:
    case FLIP_RESULT: m->data[m->len - 1] ^= 0x01; return m;
    case FLIP_HEADER: m->h.seq ^= 1; return m;
    case DROP: free(m); return NULL;
    case REPLAY: {
        star_msg_t *again = malloc(sizeof(*m) + m->len);
        cr_assert(again);
        memcpy(again, m, sizeof(*m) + m->len);
        route(m);
        return again;
    }
    case REORDER: kept = m; return NULL;
    }
    return m;
}

/* Both ranks must end every call either with a failure or with intact data, and at least
 * one of them with a failure of one of `allowed`. */
static void run_tampered(enum relay_mode how, const char *name, const mnnvl_status_t *allowed,
                         int nallowed)
{
    mode = how;
    seen = 0;
    kept = NULL;
    relay = tamper;
    rank_run_t r[2] = {{.key = KEY, .rank = 0, .size = 2, .timeout_ms = 1500, .ops = 2},
                       {.key = KEY, .rank = 1, .size = 2, .timeout_ms = 1500, .ops = 2}};
    run_pair(r);
    free(kept);
    kept = NULL;
    int failed = 0;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(r[i].create, MNNVL_SUCCESS, "%s: rank %d create: %s", name, i, r[i].why);
        for (int k = 0; k < 2; k++) {
            cr_expect(r[i].op[k] != MNNVL_SUCCESS || r[i].op_data_ok[k],
                      "%s: rank %d allgather %d returned SUCCESS with altered data", name, i, k);
            if (r[i].op[k] == MNNVL_SUCCESS)
                continue;
            int ok = 0;
            for (int a = 0; a < nallowed; a++)
                ok |= r[i].op[k] == allowed[a];
            cr_expect(ok, "%s: rank %d allgather %d failed with %d: %s", name, i, k, r[i].op[k],
                      r[i].why);
            failed += ok;
            break;
        }
    }
    cr_expect(failed > 0, "%s: nobody noticed", name);
}

static const mnnvl_status_t auth_or_lost[] = {MNNVL_ERR_AUTH, MNNVL_ERR_PEER_LOST};
static const mnnvl_status_t any_clear[] = {MNNVL_ERR_AUTH, MNNVL_ERR_PEER_LOST, MNNVL_ERR_TIMEOUT};

Test(star_auth, relay_flipping_a_contribution_byte_fails_with_auth)
{
    run_tampered(FLIP_CONTRIB, "flip", auth_or_lost, 2);
}

Test(star_auth, relay_flipping_a_result_byte_fails_the_rank_with_auth)
{
    run_tampered(FLIP_RESULT, "flip result", auth_or_lost, 2);
}

Test(star_auth, relay_flipping_a_header_field_fails_with_auth)
{
    run_tampered(FLIP_HEADER, "flip header", auth_or_lost, 2);
}

Test(star_auth, relay_replaying_a_frame_fails_with_auth)
{
    run_tampered(REPLAY, "replay", auth_or_lost, 2);
}

/* A missing frame is not detected by its MAC: its receiver times out waiting for it (and
 * the other rank learns of that), never completing with data it did not get. */
Test(star_auth, relay_dropping_a_frame_fails_clearly)
{
    run_tampered(DROP, "drop", any_clear, 3);
}

Test(star_auth, relay_reordering_two_frames_fails_clearly)
{
    run_tampered(REORDER, "reorder", any_clear, 3);
}

/* ---------------------------------------------------------------------------------------- */
/* A child: its own handshake, without any message over the parent                          */
/* ---------------------------------------------------------------------------------------- */

/* Child tokens have the top bit set (star.c's child_token), parent tokens never. */
#define IS_CHILD_TOKEN(t) (((t) >> 63) != 0)

static int child_types;   /* bit per message type sent to a child communicator */
static int parent_after;  /* messages to a parent communicator once children started */
static int flip_child;    /* flip a byte of the first contribution to the child's rank 0 */
static int flipped_child; /* ... and it was flipped */

static star_msg_t *child_relay(star_msg_t *m)
{
    if (!IS_CHILD_TOKEN(m->h.dst)) {
        if (atomic_load(&children_started) && m->h.type != STAR_BYE) {
            parent_after++;
            free(m); /* a child that needed the parent would not form */
            return NULL;
        }
        return m;
    }
    child_types |= 1 << m->h.type;
    if (flip_child && !flipped_child && m->h.type == STAR_CONTRIB && m->len) {
        m->data[m->len - 1] ^= 0x01;
        flipped_child = 1;
    }
    return m;
}

static void run_children(rank_run_t r[2], int flip)
{
    atomic_store(&children_started, 0);
    child_types = parent_after = flipped_child = 0;
    flip_child = flip;
    relay = child_relay;
    run_pair(r);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(r[i].create, MNNVL_SUCCESS, "rank %d: %s", i, r[i].why);
    cr_expect_eq(parent_after, 0, "%d messages went over the parent while the child formed",
                 parent_after);
}

Test(star_auth, a_child_meets_with_its_own_handshake_and_needs_no_parent_message)
{
    rank_run_t r[2] = {{.key = KEY, .rank = 0, .size = 2, .timeout_ms = 5000, .child = 1},
                       {.key = KEY, .rank = 1, .size = 2, .timeout_ms = 5000, .child = 1}};
    run_children(r, 0);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(r[i].child_create, MNNVL_SUCCESS, "rank %d child: %s", i, r[i].why);
        cr_expect(r[i].child_op == MNNVL_SUCCESS && r[i].child_data_ok,
                  "rank %d child allgather: %d, data %s: %s", i, r[i].child_op,
                  r[i].child_data_ok ? "intact" : "wrong", r[i].why);
    }
    int handshake = 1 << STAR_HELLO | 1 << STAR_CHALLENGE | 1 << STAR_PROOF | 1 << STAR_FORMED;
    cr_expect_eq(child_types & handshake, handshake,
                 "the child formed without the job-key handshake (types seen: %#x)", child_types);
}

/* The child's links have sessions of their own: a flipped byte on one fails with AUTH. */
Test(star_auth, a_child_frame_altered_on_the_way_fails_with_auth)
{
    rank_run_t r[2] = {{.key = KEY, .rank = 0, .size = 2, .timeout_ms = 3000, .child = 1},
                       {.key = KEY, .rank = 1, .size = 2, .timeout_ms = 3000, .child = 1}};
    run_children(r, 1);
    cr_assert(flipped_child, "no contribution to the child's rank 0 was seen");
    int auth = 0;
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(r[i].child_create, MNNVL_SUCCESS, "rank %d child: %s", i, r[i].why);
        cr_expect(r[i].child_op != MNNVL_SUCCESS || r[i].child_data_ok,
                  "rank %d: the child's allgather returned SUCCESS with altered data", i);
        auth |= r[i].child_op == MNNVL_ERR_AUTH;
    }
    cr_expect(auth, "no rank failed with AUTH: %d (%s), %d (%s)", r[0].child_op, r[0].why,
              r[1].child_op, r[1].why);
}
