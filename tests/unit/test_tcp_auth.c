/* The tcp bootstrap's job-key proof and frame authentication, tried as an attacker would
 * on loopback: a wrong key refused at once on both sides, a raw probe of the root that must
 * learn nothing key-derived, and a relay between a rank and the root that flips, drops,
 * replays or reorders frames. Ranks run as threads that share nothing but sockets.
 *
 * Built from the bootstrap sources (like test_tcp_root), to reach auth.h directly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/sock.h"
#include "bootstrap/tcp.h"
#include "bootstrap/tcp_wire.h"
#include "deadline.h"
#include "log.h"
#include "rank_threads.h"
#include "tcp_fixture.h"

TestSuite(tcp_auth, .timeout = 60);

#define RIGHT_KEY "right horse battery staple 0123456789"
#define WRONG_KEY "wrong horse battery staple 0123456789"
#define RELAY_KEY "k3y of the relay test 0123456789abcdef"

typedef struct rank_run {
    mt_tcp_rank_t who; /* who.root: the address it connects to (the root or the relay) */
    int ops;           /* allgathers after create */
    mnnvl_status_t create;
    mnnvl_status_t op[2];
    int op_data_ok[2];
    uint64_t create_ms;
    char why[1024];
} rank_run_t;

/* A rank to run: `ops` allgathers after create (0: create only). */
static rank_run_t rank_of(const char *root, const char *key, int rank, int size, int timeout_ms,
                          int ops)
{
    return (rank_run_t){.who = {root, key, "auth", rank, size, timeout_ms}, .ops = ops};
}

/* Creates a tcp bootstrap and runs up to two allgathers of 8 bytes whose content depends
 * on rank and round, recording each status and whether the data came back intact. */
static void *run_rank(void *arg)
{
    rank_run_t *r = arg;
    mnnvl_bootstrap_t *bs = NULL;
    uint64_t start = mnnvl_now_ms();
    r->create = mt_tcp_create(&r->who, &bs);
    r->create_ms = mnnvl_now_ms() - start;
    snprintf(r->why, sizeof(r->why), "%s", r->create ? mnnvl_last_error() : "");
    for (int i = 0; i < r->ops && r->create == MNNVL_SUCCESS; i++) {
        uint8_t mine[8];
        uint8_t all[8 * 4];
        memset(mine, 0x10 * (i + 1) + r->who.rank, sizeof(mine));
        r->op[i] = bs->ops->allgather(bs, mine, all, sizeof(mine));
        r->op_data_ok[i] = 1;
        for (int p = 0; p < r->who.size; p++)
            for (int b = 0; b < 8; b++)
                r->op_data_ok[i] &= all[8 * p + b] == (uint8_t)(0x10 * (i + 1) + p);
        if (r->op[i] != MNNVL_SUCCESS && !r->why[0])
            snprintf(r->why, sizeof(r->why), "%s", mnnvl_last_error());
    }
    if (bs)
        bs->ops->destroy(bs);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Wrong key, right key                                                                     */
/* ---------------------------------------------------------------------------------------- */

static atomic_int refusals;
static atomic_ullong first_refusal_ms;
static atomic_int key_in_log;

static void log_sink(mnnvl_log_level_t level, const char *line, void *user)
{
    (void)user;
    if (strstr(line, WRONG_KEY) || strstr(line, RIGHT_KEY))
        atomic_store(&key_in_log, 1);
    if (level <= MNNVL_LOG_WARN && strstr(line, "refused") && strstr(line, "AUTH") &&
        strstr(line, "127.0.0.1:")) {
        unsigned long long zero = 0;
        atomic_compare_exchange_strong(&first_refusal_ms, &zero, mnnvl_now_ms());
        atomic_fetch_add(&refusals, 1);
    }
}

Test(tcp_auth, wrong_key_is_refused_at_once_on_both_sides)
{
    mnnvl_set_log_callback(log_sink, NULL);
    mnnvl_tcp_root_t *root = mt_tcp_root(RIGHT_KEY);
    uint64_t start = mnnvl_now_ms();
    rank_run_t r = rank_of(mnnvl_tcp_root_address(root), WRONG_KEY, 1, 2, 10000, 0);
    run_rank(&r);
    mnnvl_tcp_root_stop(root);
    mnnvl_set_log_callback(NULL, NULL);
    cr_expect_eq(r.create, MNNVL_ERR_AUTH, "a wrong key gave %s: %s", mnnvl_status_string(r.create),
                 r.why);
    cr_expect(strstr(r.why, "job_key differs"), "the sentence does not say why: %s", r.why);
    cr_expect_lt(r.create_ms, 2000, "the refusal took %llu ms of a 10000 ms timeout",
                 (unsigned long long)r.create_ms);
    cr_expect(!strstr(r.why, "horse"), "the key appears in the error: %s", r.why);
    cr_expect_geq(atomic_load(&refusals), 1, "the root logged no AUTH refusal naming the peer");
    cr_expect_lt(atomic_load(&first_refusal_ms) - start, 2000, "the root's refusal came late");
    cr_expect(!atomic_load(&key_in_log), "the key appears in a log line");
}

/* The rank that waits for the refused one learns why it never came. */
Test(tcp_auth, waiting_rank_learns_that_the_root_refused_a_wrong_key)
{
    mnnvl_set_log_level(MNNVL_LOG_NONE);
    mnnvl_tcp_root_t *root = mt_tcp_root(RIGHT_KEY);
    const char *address = mnnvl_tcp_root_address(root);
    rank_run_t intruder = rank_of(address, WRONG_KEY, 1, 2, 5000, 0);
    run_rank(&intruder);
    rank_run_t waiting = rank_of(address, RIGHT_KEY, 0, 2, 800, 0);
    run_rank(&waiting);
    mnnvl_tcp_root_stop(root);
    mnnvl_set_log_level(MNNVL_LOG_WARN);
    cr_expect_eq(intruder.create, MNNVL_ERR_AUTH, "%s", intruder.why);
    cr_expect_eq(waiting.create, MNNVL_ERR_TIMEOUT, "%s", waiting.why);
    cr_expect(strstr(waiting.why, "rank 1 never joined") &&
                  strstr(waiting.why, "refused 1 connection whose job_key differs") &&
                  strstr(waiting.why, "127.0.0.1:"),
              "the waiting rank is not told of the refusal: %s", waiting.why);
    cr_expect(!strstr(waiting.why, "horse"), "the key appears in the error: %s", waiting.why);
    cr_log_info("the waiting rank: %s", waiting.why);
}

Test(tcp_auth, right_key_works)
{
    mnnvl_tcp_root_t *root = mt_tcp_root(RIGHT_KEY);
    const char *address = mnnvl_tcp_root_address(root);
    rank_run_t r[3];
    for (int i = 0; i < 3; i++)
        r[i] = rank_of(address, RIGHT_KEY, i, 3, 10000, 2);
    mt_run_threads(3, run_rank, r, sizeof(r[0]));
    mnnvl_tcp_root_stop(root);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(r[i].create, MNNVL_SUCCESS, "rank %d: %s", i, r[i].why);
        for (int op = 0; op < 2; op++)
            cr_expect(r[i].op[op] == MNNVL_SUCCESS && r[i].op_data_ok[op],
                      "rank %d allgather %d: %s", i, op, r[i].why);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* What an unauthenticated peer learns                                                      */
/* ---------------------------------------------------------------------------------------- */

typedef struct capture {
    uint8_t bytes[4096];
    size_t len;
} capture_t;

/* Connects with a raw socket, sends a CHALLENGE with `nonce` and a garbage PROOF, and
 * records everything the root sends until it closes. */
static void probe(const char *address, const uint8_t nonce[MNNVL_WIRE_NONCE_BYTES], capture_t *cap)
{
    int fd = -1;
    uint64_t deadline = mnnvl_deadline_after(5000);
    cr_assert_eq(mnnvl_sock_connect(address, deadline, NULL, &fd), MNNVL_SUCCESS);
    uint8_t msg[2 * MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_NONCE_BYTES + MNNVL_WIRE_PROOF_BYTES];
    mnnvl_wire_header(msg, MNNVL_WIRE_CHALLENGE, MNNVL_WIRE_NONCE_BYTES);
    memcpy(msg + MNNVL_WIRE_HEADER_BYTES, nonce, MNNVL_WIRE_NONCE_BYTES);
    uint8_t *proof = msg + MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_NONCE_BYTES;
    mnnvl_wire_header(proof, MNNVL_WIRE_PROOF, MNNVL_WIRE_PROOF_BYTES);
    memset(proof + MNNVL_WIRE_HEADER_BYTES, 0x5a, MNNVL_WIRE_PROOF_BYTES);
    cr_assert_eq(mnnvl_sock_send_all(fd, msg, sizeof(msg), deadline, NULL), MNNVL_SUCCESS);
    cap->len = 0;
    for (;;) {
        cr_assert_eq(mnnvl_sock_wait_readable(fd, deadline, NULL), MNNVL_SUCCESS,
                     "the root neither answered nor closed");
        ssize_t n = recv(fd, cap->bytes + cap->len, sizeof(cap->bytes) - cap->len, 0);
        if (n <= 0)
            break;
        cap->len += (size_t)n;
        cr_assert_lt(cap->len, sizeof(cap->bytes), "the root sent too much");
    }
    close(fd);
}

/* The frames of a capture: types and lengths, into out (at most 8); returns the count. */
static int frames_of(const capture_t *cap, uint16_t *types, uint64_t *lens, size_t *offsets)
{
    size_t at = 0;
    int n = 0;
    while (at + MNNVL_WIRE_HEADER_BYTES <= cap->len && n < 8) {
        cr_assert_eq(mnnvl_wire_parse_header(cap->bytes + at, &types[n], &lens[n]), 0);
        offsets[n] = at + MNNVL_WIRE_HEADER_BYTES;
        at += MNNVL_WIRE_HEADER_BYTES + lens[n];
        n++;
    }
    cr_assert_eq(at, cap->len, "the capture ends in the middle of a frame");
    return n;
}

/* 1 when `needle` (or its first 8 bytes) occurs anywhere in the capture. */
static int contains(const capture_t *cap, const uint8_t *needle, size_t len)
{
    return memmem(cap->bytes, cap->len, needle, len) != NULL ||
           memmem(cap->bytes, cap->len, needle, 8) != NULL;
}

Test(tcp_auth, unauthenticated_probe_learns_nothing_key_derived)
{
    static const char *keys[2] = {"key one of the probe test, 0123456789",
                                  "a different key two of the probe test"};
    uint8_t nonce[MNNVL_WIRE_NONCE_BYTES];
    memset(nonce, 0x33, sizeof(nonce));
    capture_t cap[2];
    uint16_t types[2][8];
    uint64_t lens[2][8];
    size_t offs[2][8];
    int n[2];
    char address[2][MNNVL_SOCK_ADDR_MAX];
    for (int k = 0; k < 2; k++) {
        mnnvl_set_log_level(MNNVL_LOG_NONE);
        mnnvl_tcp_root_t *root = mt_tcp_root(keys[k]);
        snprintf(address[k], sizeof(address[k]), "%s", mnnvl_tcp_root_address(root));
        probe(address[k], nonce, &cap[k]);
        mnnvl_tcp_root_stop(root);
        mnnvl_set_log_level(MNNVL_LOG_WARN);
        n[k] = frames_of(&cap[k], types[k], lens[k], offs[k]);

        /* Only the root's nonce, then the refusal. */
        cr_assert_eq(n[k], 2, "the root sent %d frames to an unauthenticated peer", n[k]);
        cr_expect_eq(types[k][0], MNNVL_WIRE_CHALLENGE);
        cr_expect_eq(lens[k][0], MNNVL_WIRE_NONCE_BYTES, "the challenge carries more than a nonce");
        cr_expect_eq(types[k][1], MNNVL_WIRE_ERROR);
        cr_expect_eq((int32_t)mnnvl_wire_get32(cap[k].bytes + offs[k][1]), MNNVL_ERR_AUTH);

        /* Nothing computed from the key: not the key, its derivation, either proof for
         * these nonces, nor the session key. */
        const uint8_t *root_nonce = cap[k].bytes + offs[k][0];
        mnnvl_auth_key_t key;
        uint8_t proof[MNNVL_WIRE_PROOF_BYTES];
        mnnvl_auth_session_t sess;
        cr_assert_eq(mnnvl_auth_derive_key(keys[k], &key), MNNVL_SUCCESS);
        cr_expect(!memmem(cap[k].bytes, cap[k].len, keys[k], strlen(keys[k])), "the key was sent");
        cr_expect(!contains(&cap[k], key.k, sizeof(key.k)), "the derived key was sent");
        mnnvl_auth_proof(&key, MNNVL_AUTH_ROOT, nonce, root_nonce, proof);
        cr_expect(!contains(&cap[k], proof, sizeof(proof)), "the root's proof was sent");
        mnnvl_auth_proof(&key, MNNVL_AUTH_RANK, nonce, root_nonce, proof);
        cr_expect(!contains(&cap[k], proof, sizeof(proof)), "a rank proof was sent");
        mnnvl_auth_session(&key, MNNVL_AUTH_ROOT, nonce, root_nonce, &sess);
        cr_expect(!contains(&cap[k], sess.k, sizeof(sess.k)), "the session key was sent");
    }
    /* The same structure whatever the key: the error text differs only in the address. */
    for (int f = 0; f < 2; f++) {
        cr_expect_eq(types[0][f], types[1][f]);
        if (f == 0)
            continue;
        char text[2][MNNVL_WIRE_MAX_TEXT + 1];
        for (int k = 0; k < 2; k++) {
            snprintf(text[k], sizeof(text[k]), "%.*s", (int)(lens[k][f] - MNNVL_WIRE_ERROR_FIXED),
                     (const char *)cap[k].bytes + offs[k][f] + MNNVL_WIRE_ERROR_FIXED);
            char *a = strstr(text[k], address[k]);
            cr_assert(a, "the refusal does not name the root: %s", text[k]);
            memmove(a, a + strlen(address[k]), strlen(a + strlen(address[k])) + 1);
        }
        cr_expect_str_eq(text[0], text[1], "the refusal depends on the key");
    }
    cr_expect(
        memcmp(cap[0].bytes + offs[0][0], cap[1].bytes + offs[1][0], MNNVL_WIRE_NONCE_BYTES) != 0,
        "two roots sent the same nonce");
}

/* ---------------------------------------------------------------------------------------- */
/* A tampering relay                                                                        */
/* ---------------------------------------------------------------------------------------- */

enum relay_mode { RELAY_FLIP, RELAY_DROP, RELAY_REPLAY, RELAY_REORDER, RELAY_FLIP_DOWN };

/* Where RELAY_FLIP_DOWN flips a byte of what the root sends rank 1: past its CHALLENGE and
 * PROOF (16 + 32 bytes each) and FORMED (16 + 4 + 16), a data byte of the first RESULT. */
#define DOWN_FLIP_AT                                                                           \
    (2 * (MNNVL_WIRE_HEADER_BYTES + 32) + MNNVL_WIRE_HEADER_BYTES + 4 + MNNVL_WIRE_MAC_BYTES + \
     MNNVL_WIRE_HEADER_BYTES + 3)

typedef struct relay {
    int listen_fd;
    int client_fd;
    int upstream_fd;
    char address[MNNVL_SOCK_ADDR_MAX];
    const char *target;
    enum relay_mode mode;
    pthread_t up;
    pthread_t down;
    int down_started;
    atomic_int tampered;
} relay_t;

/* Root to rank: bytes copied unchanged, but for RELAY_FLIP_DOWN. */
static void *relay_down(void *arg)
{
    relay_t *r = arg;
    uint8_t buf[65536];
    size_t total = 0;
    for (;;) {
        /* mnnvl_sock_connect's descriptor is non-blocking: wait before each read. */
        if (mnnvl_sock_wait_readable(r->upstream_fd, mnnvl_deadline_after(20000), NULL) !=
            MNNVL_SUCCESS)
            break;
        ssize_t n = recv(r->upstream_fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n > 0 && r->mode == RELAY_FLIP_DOWN && total <= DOWN_FLIP_AT &&
            DOWN_FLIP_AT < total + (size_t)n) {
            buf[DOWN_FLIP_AT - total] ^= 0x01;
            atomic_store(&r->tampered, 1);
        }
        if (n > 0)
            total += (size_t)n;
        if (n <= 0 || mnnvl_sock_send_all(r->client_fd, buf, (size_t)n, mnnvl_deadline_after(20000),
                                          NULL) != MNNVL_SUCCESS)
            break;
    }
    shutdown(r->client_fd, SHUT_RDWR);
    return NULL;
}

/* Reads one frame from the rank: the two handshake frames plain, the rest with a MAC. */
static int relay_read(relay_t *r, int index, uint8_t *buf, size_t cap, size_t *len, uint16_t *type)
{
    uint64_t deadline = mnnvl_deadline_after(20000);
    uint64_t length;
    if (mnnvl_sock_recv_all(r->client_fd, buf, MNNVL_WIRE_HEADER_BYTES, deadline, NULL) !=
            MNNVL_SUCCESS ||
        mnnvl_wire_parse_header(buf, type, &length) != 0)
        return -1;
    size_t rest = (size_t)length + (index >= 2 ? MNNVL_WIRE_MAC_BYTES : 0);
    if (MNNVL_WIRE_HEADER_BYTES + rest > cap ||
        mnnvl_sock_recv_all(r->client_fd, buf + MNNVL_WIRE_HEADER_BYTES, rest, deadline, NULL) !=
            MNNVL_SUCCESS)
        return -1;
    *len = MNNVL_WIRE_HEADER_BYTES + rest;
    return 0;
}

static int relay_send(relay_t *r, const uint8_t *buf, size_t len)
{
    return mnnvl_sock_send_all(r->upstream_fd, buf, len, mnnvl_deadline_after(20000), NULL) ==
                   MNNVL_SUCCESS
               ? 0
               : -1;
}

/* Rank to root: frame by frame, the first COLL tampered with as `mode` says. */
static void *relay_up(void *arg)
{
    relay_t *r = arg;
    struct pollfd p = {r->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 20000) != 1)
        return NULL;
    r->client_fd = accept(r->listen_fd, NULL, NULL);
    if (r->client_fd < 0 || mnnvl_sock_connect(r->target, mnnvl_deadline_after(5000), NULL,
                                               &r->upstream_fd) != MNNVL_SUCCESS)
        return NULL;
    r->down_started = pthread_create(&r->down, NULL, relay_down, r) == 0;
    static uint8_t frame[2][4096];
    size_t len[2] = {0, 0};
    uint16_t type;
    int held = 0;
    for (int i = 0;; i++) {
        if (relay_read(r, i, frame[0], sizeof(frame[0]), &len[0], &type) != 0)
            break;
        if (type == MNNVL_WIRE_COLL && r->mode != RELAY_FLIP_DOWN && !atomic_load(&r->tampered)) {
            atomic_store(&r->tampered, 1);
            if (r->mode == RELAY_FLIP) {
                frame[0][len[0] - MNNVL_WIRE_MAC_BYTES - 1] ^= 0x01; /* a data byte */
            } else if (r->mode == RELAY_DROP) {
                continue;
            } else if (r->mode == RELAY_REPLAY) {
                if (relay_send(r, frame[0], len[0]) != 0)
                    break;
            } else {
                memcpy(frame[1], frame[0], len[0]);
                len[1] = len[0];
                held = 1;
                continue; /* sent after the next frame */
            }
        }
        if (relay_send(r, frame[0], len[0]) != 0)
            break;
        if (held && relay_send(r, frame[1], len[1]) != 0)
            break;
        held = 0;
    }
    if (r->upstream_fd >= 0)
        shutdown(r->upstream_fd, SHUT_RDWR);
    return NULL;
}

static void relay_start(relay_t *r, const char *target, enum relay_mode mode)
{
    memset(r, 0, sizeof(*r));
    r->client_fd = -1;
    r->upstream_fd = -1;
    r->target = target;
    r->mode = mode;
    cr_assert_eq(mnnvl_sock_listen("127.0.0.1:0", &r->listen_fd, r->address, sizeof(r->address)),
                 MNNVL_SUCCESS);
    pthread_create(&r->up, NULL, relay_up, r);
}

static void relay_stop(relay_t *r)
{
    if (r->client_fd >= 0)
        shutdown(r->client_fd, SHUT_RDWR);
    if (r->upstream_fd >= 0)
        shutdown(r->upstream_fd, SHUT_RDWR);
    pthread_join(r->up, NULL);
    if (r->down_started)
        pthread_join(r->down, NULL);
    close(r->listen_fd);
    if (r->client_fd >= 0)
        close(r->client_fd);
    if (r->upstream_fd >= 0)
        close(r->upstream_fd);
}

/* Rank 0 talks to the root directly, rank 1 through the relay; each runs two allgathers.
 * After a drop (or a frame held back for reordering) rank 1's wait times out first (1500
 * ms against rank 0's 6000) and its QUERY, out of sequence, is what the root catches.
 * No allgather may return SUCCESS with altered data, every rank must fail by the second,
 * and the relayed rank must fail with AUTH. */
static void run_tampered(enum relay_mode mode, const char *name)
{
    mnnvl_set_log_level(MNNVL_LOG_NONE);
    mnnvl_tcp_root_t *root = mt_tcp_root(RELAY_KEY);
    relay_t relay;
    relay_start(&relay, mnnvl_tcp_root_address(root), mode);
    rank_run_t r[2] = {rank_of(mnnvl_tcp_root_address(root), RELAY_KEY, 0, 2, 6000, 2),
                       rank_of(relay.address, RELAY_KEY, 1, 2, 1500, 2)};
    mt_run_threads(2, run_rank, r, sizeof(r[0]));
    relay_stop(&relay);
    mnnvl_tcp_root_stop(root);
    mnnvl_set_log_level(MNNVL_LOG_WARN);
    cr_assert(atomic_load(&relay.tampered), "%s: the relay saw no collective", name);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(r[i].create, MNNVL_SUCCESS, "%s: rank %d create: %s", name, i, r[i].why);
        for (int op = 0; op < 2; op++)
            cr_expect(r[i].op[op] != MNNVL_SUCCESS || r[i].op_data_ok[op],
                      "%s: rank %d allgather %d returned SUCCESS with altered data", name, i, op);
        int failed = r[i].op[0] != MNNVL_SUCCESS || r[i].op[1] != MNNVL_SUCCESS;
        cr_expect(failed, "%s: rank %d never noticed", name, i);
        mnnvl_status_t s = r[i].op[0] != MNNVL_SUCCESS ? r[i].op[0] : r[i].op[1];
        cr_expect(s == MNNVL_ERR_AUTH || s == MNNVL_ERR_PEER_LOST || s == MNNVL_ERR_TIMEOUT,
                  "%s: rank %d failed with %s: %s", name, i, mnnvl_status_string(s), r[i].why);
        cr_expect(r[i].why[0], "%s: rank %d failed without a sentence", name, i);
        cr_log_info("%s: rank %d: %s: %s", name, i, mnnvl_status_string(s), r[i].why);
        if (i == 1)
            cr_expect_eq(s, MNNVL_ERR_AUTH, "%s: the relayed rank got %s: %s", name,
                         mnnvl_status_string(s), r[i].why);
    }
}

/* One test per tampering: the relay's mode and the name its messages say. */
#define TAMPER_TEST(test, mode, name) \
    Test(tcp_auth, test)              \
    {                                 \
        run_tampered(mode, name);     \
    }

TAMPER_TEST(relay_flipping_a_coll_byte_fails_with_auth, RELAY_FLIP, "flip")
TAMPER_TEST(relay_dropping_a_frame_fails_with_auth, RELAY_DROP, "drop")
TAMPER_TEST(relay_replaying_a_frame_fails_with_auth, RELAY_REPLAY, "replay")
TAMPER_TEST(relay_reordering_two_frames_fails_with_auth, RELAY_REORDER, "reorder")
TAMPER_TEST(relay_flipping_a_result_byte_fails_the_rank_with_auth, RELAY_FLIP_DOWN, "flip down")
