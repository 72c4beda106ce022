/* The tcp root against hostile members: clients written here that prove the job key and
 * then speak tcp_wire.h as no real rank would (bursts of QUERY, never reading, a huge COLL
 * header and nothing after it, a group that never forms). The root must stay responsive
 * for other jobs, keep every per-connection resource bounded and drop such a peer.
 *
 * Built from the bootstrap sources themselves (not libmnnvl.so, which hides them), so that
 * it reaches the root, the rank side and the handshake directly. */
#include <criterion/criterion.h>
#include <errno.h>
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
#include "rank_threads.h"
#include "tcp_fixture.h"

TestSuite(tcp_root, .timeout = 60);

/* The session of the test's hostile connection (one per test): what it sends is sealed
 * with it, as a rank would, so the root reaches the message handling. */
static mnnvl_auth_session_t hostile_sess;

/* Connects to the root and proves the (empty) job key; optionally shrinks the receive
 * buffer first so that not reading fills the root's queue quickly. */
static int hostile_connect(const char *address, int rcvbuf)
{
    int fd = -1;
    uint64_t deadline = mnnvl_deadline_after(5000);
    cr_assert_eq(mnnvl_sock_connect(address, deadline, NULL, &fd), MNNVL_SUCCESS, "%s",
                 mnnvl_last_error());
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    mnnvl_auth_key_t key;
    cr_assert_eq(mnnvl_auth_derive_key("", &key), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_auth_client(fd, &key, address, deadline, NULL, &hostile_sess), MNNVL_SUCCESS,
                 "%s", mnnvl_last_error());
    return fd;
}

/* Writes one sealed frame (header, payload, MAC) to out; returns its length. */
static size_t seal_frame(uint8_t *out, uint16_t type, const void *payload, size_t len)
{
    mnnvl_wire_header(out, type, len);
    if (len)
        memcpy(out + MNNVL_WIRE_HEADER_BYTES, payload, len);
    struct iovec iov = {out, MNNVL_WIRE_HEADER_BYTES + len};
    mnnvl_auth_seal(&hostile_sess, &iov, 1, out + MNNVL_WIRE_HEADER_BYTES + len);
    return MNNVL_WIRE_HEADER_BYTES + len + MNNVL_WIRE_MAC_BYTES;
}

/* Sends a sealed frame; returns the status (the root may have dropped the connection). */
static mnnvl_status_t try_send_frame(int fd, uint16_t type, const void *payload, size_t len)
{
    uint8_t *msg = malloc(MNNVL_WIRE_HEADER_BYTES + len + MNNVL_WIRE_MAC_BYTES);
    cr_assert(msg);
    size_t n = seal_frame(msg, type, payload, len);
    mnnvl_status_t s = mnnvl_sock_send_all(fd, msg, n, mnnvl_deadline_after(10000), NULL);
    free(msg);
    return s;
}

static void send_frame(int fd, uint16_t type, const void *payload, size_t len)
{
    cr_assert_eq(try_send_frame(fd, type, payload, len), MNNVL_SUCCESS, "%s", mnnvl_last_error());
}

static void send_hello(int fd, uint64_t group, uint32_t rank, uint32_t size, uint32_t timeout_ms)
{
    uint8_t hello[MNNVL_WIRE_HELLO_FIXED + 7];
    mnnvl_wire_put64(hello, group);
    mnnvl_wire_put32(hello + 8, rank);
    mnnvl_wire_put32(hello + 12, size);
    mnnvl_wire_put32(hello + 16, timeout_ms);
    memcpy(hello + MNNVL_WIRE_HELLO_FIXED, "hostile", 7);
    send_frame(fd, MNNVL_WIRE_HELLO, hello, sizeof(hello));
}

/* A root of the test's own (empty job key) and its hostile member: connected as
 * hostile_connect does, then announced by a HELLO as rank 0 of `size` in `group`. */
static int hostile_member(mnnvl_tcp_root_t **root, int rcvbuf, uint64_t group, uint32_t size,
                          uint32_t timeout_ms)
{
    *root = mt_tcp_root("");
    int fd = hostile_connect(mnnvl_tcp_root_address(*root), rcvbuf);
    send_hello(fd, group, 0, size, timeout_ms);
    return fd;
}

/* Reads and discards until the root closes the connection; 1 when it did within ms. */
static int closed_within(int fd, int ms)
{
    uint64_t deadline = mnnvl_deadline_after(ms);
    uint8_t buf[65536];
    for (;;) {
        if (mnnvl_sock_wait_readable(fd, deadline, NULL) != MNNVL_SUCCESS)
            return 0;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
    }
}

typedef struct honest {
    mt_tcp_rank_t who;
    mnnvl_status_t status;
    char why[512];
} honest_t;

/* A well-behaved rank of a 2-rank job: create (3 s timeout) and one barrier. */
static void *honest_rank(void *arg)
{
    honest_t *h = arg;
    mnnvl_bootstrap_t *bs = NULL;
    h->status = mt_tcp_create(&h->who, &bs);
    if (h->status == MNNVL_SUCCESS)
        h->status = bs->ops->barrier(bs);
    snprintf(h->why, sizeof(h->why), "%s", h->status ? mnnvl_last_error() : "");
    if (bs)
        bs->ops->destroy(bs);
    return NULL;
}

static void expect_honest_job_works(const char *root)
{
    honest_t h[2] = {{.who = {root, "", "honest", 0, 2, 3000}},
                     {.who = {root, "", "honest", 1, 2, 3000}}};
    mt_run_threads(2, honest_rank, h, sizeof(h[0]));
    for (int i = 0; i < 2; i++)
        cr_expect_eq(h[i].status, MNNVL_SUCCESS, "honest rank %d beside the hostile member: %s", i,
                     h[i].why);
}

/* 256 KiB of QUERY from a member that never reads its answers: other jobs still form, and
 * the answers do not pile up (one STATUS queued at a time). */
Test(tcp_root, query_burst_does_not_stall_another_job)
{
    mnnvl_tcp_root_t *root = NULL;
    int fd = hostile_member(&root, 4096, 0x1234, 1 << 20, 60000); /* a group that never forms */
    const char *address = mnnvl_tcp_root_address(root);
    size_t one = MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_MAC_BYTES;
    size_t n = (256 << 10) / one;
    uint8_t *burst = malloc(n * one);
    uint64_t start = mnnvl_now_ms();
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < n; i++) /* each round anew: sequence numbers move on */
            seal_frame(burst + i * one, MNNVL_WIRE_QUERY, NULL, 0);
        cr_assert_eq(mnnvl_sock_send_all(fd, burst, n * one, mnnvl_deadline_after(20000), NULL),
                     MNNVL_SUCCESS, "the root stopped reading the burst: %s", mnnvl_last_error());
    }
    expect_honest_job_works(address);
    cr_log_info("4 x 256 KiB of QUERY and an honest job: %llu ms",
                (unsigned long long)(mnnvl_now_ms() - start));
    free(burst);
    close(fd);
    mnnvl_tcp_root_stop(root);
}

/* A member that asks for results and never reads them is dropped once its queue is full. */
Test(tcp_root, member_that_never_reads_is_dropped)
{
    mnnvl_tcp_root_t *root = NULL;
    int fd = hostile_member(&root, 4096, 0x99, 1, 60000); /* a group of one forms at once */
    size_t bytes = 64 << 10;
    uint8_t *coll = calloc(1, MNNVL_WIRE_COLL_FIXED + bytes);
    coll[0] = MNNVL_WIRE_OP_ALLGATHER;
    mnnvl_wire_put64(coll + 8, bytes);
    int sent = 0;
    for (; sent < 2000; sent++)
        if (try_send_frame(fd, MNNVL_WIRE_COLL, coll, MNNVL_WIRE_COLL_FIXED + bytes) !=
            MNNVL_SUCCESS)
            break; /* dropped: the connection is gone */
    cr_expect(closed_within(fd, 10000),
              "the root kept a member that sent %d collectives of %zu bytes and read nothing", sent,
              bytes);
    cr_log_info("dropped after %d unread results of %zu bytes", sent, bytes);
    free(coll);
    close(fd);
    expect_honest_job_works(mnnvl_tcp_root_address(root));
    mnnvl_tcp_root_stop(root);
}

static long vm_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f && fscanf(f, "%ld", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A COLL header announcing 1 GiB, then nothing: the root reserves what arrives, not what is
 * announced, and drops the member once the message is overdue (its timeout_ms + a grace). */
Test(tcp_root, huge_coll_header_reserves_nothing_and_is_dropped_when_overdue)
{
    mnnvl_tcp_root_t *root = NULL;
    int fd = hostile_member(&root, 0, 0x77, 1, 500);
    long before = vm_kib();
    uint8_t msg[MNNVL_WIRE_HEADER_BYTES + MNNVL_WIRE_COLL_FIXED] = {0};
    mnnvl_wire_header(msg, MNNVL_WIRE_COLL, MNNVL_WIRE_COLL_FIXED + MNNVL_WIRE_MAX_RESULT);
    msg[MNNVL_WIRE_HEADER_BYTES] = MNNVL_WIRE_OP_BROADCAST;
    mnnvl_wire_put64(msg + MNNVL_WIRE_HEADER_BYTES + 8, MNNVL_WIRE_MAX_RESULT);
    cr_assert_eq(send(fd, msg, sizeof(msg), MSG_NOSIGNAL), (ssize_t)sizeof(msg));
    usleep(300 * 1000);
    long grown = vm_kib() - before;
    cr_expect_lt(grown, 64 * 1024, "a 32-byte header grew the process by %ld KiB", grown);
    uint64_t start = mnnvl_now_ms();
    cr_expect(closed_within(fd, 8000), "the root kept a member whose message never came");
    cr_log_info("virtual size grew %ld KiB; dropped after %llu ms", grown,
                (unsigned long long)(mnnvl_now_ms() - start));
    close(fd);
    mnnvl_tcp_root_stop(root);
}

/* A member of a group that never forms is told who never joined after its timeout, and
 * dropped. */
Test(tcp_root, group_that_never_forms_is_timed_out_and_told_who_is_missing)
{
    mnnvl_tcp_root_t *root = NULL;
    int fd = hostile_member(&root, 0, 0x55, 6, 300);
    uint8_t head[MNNVL_WIRE_HEADER_BYTES];
    uint64_t deadline = mnnvl_deadline_after(6000);
    cr_assert_eq(mnnvl_sock_recv_all(fd, head, sizeof(head), deadline, NULL), MNNVL_SUCCESS,
                 "the root never timed the forming group out: %s", mnnvl_last_error());
    uint16_t type = 0;
    uint64_t len = 0;
    cr_assert_eq(mnnvl_wire_parse_header(head, &type, &len), 0);
    cr_assert_eq(type, MNNVL_WIRE_ERROR);
    cr_assert(len >= MNNVL_WIRE_ERROR_FIXED && len <= MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT);
    char text[MNNVL_WIRE_ERROR_FIXED + MNNVL_WIRE_MAX_TEXT + 1] = {0};
    cr_assert_eq(mnnvl_sock_recv_all(fd, text, (size_t)len, deadline, NULL), MNNVL_SUCCESS);
    cr_expect_eq((int32_t)mnnvl_wire_get32((uint8_t *)text), MNNVL_ERR_TIMEOUT);
    cr_expect(strstr(text + MNNVL_WIRE_ERROR_FIXED, "ranks 1-5 never joined"), "%s",
              text + MNNVL_WIRE_ERROR_FIXED);
    cr_expect(closed_within(fd, 6000), "the root kept the member after telling it");
    close(fd);
    mnnvl_tcp_root_stop(root);
}

/* The fuzzing entry runs real message sequences and garbage through the handling without a
 * socket: a group of one forms, gathers, answers a QUERY, and leaves; then cut frames. */
Test(tcp_root, feed_runs_a_whole_session_and_garbage)
{
    uint8_t buf[512];
    size_t at = 0;
    uint8_t hello[MNNVL_WIRE_HELLO_FIXED] = {0};
    mnnvl_wire_put64(hello, 7);
    mnnvl_wire_put32(hello + 12, 1);
    mnnvl_wire_put32(hello + 16, 1000);
    mnnvl_wire_header(buf + at, MNNVL_WIRE_HELLO, sizeof(hello));
    memcpy(buf + at + MNNVL_WIRE_HEADER_BYTES, hello, sizeof(hello));
    at += MNNVL_WIRE_HEADER_BYTES + sizeof(hello);
    uint8_t coll[MNNVL_WIRE_COLL_FIXED + 8] = {MNNVL_WIRE_OP_ALLGATHER};
    mnnvl_wire_put64(coll + 8, 8);
    mnnvl_wire_header(buf + at, MNNVL_WIRE_COLL, sizeof(coll));
    memcpy(buf + at + MNNVL_WIRE_HEADER_BYTES, coll, sizeof(coll));
    at += MNNVL_WIRE_HEADER_BYTES + sizeof(coll);
    mnnvl_wire_header(buf + at, MNNVL_WIRE_QUERY, 0);
    at += MNNVL_WIRE_HEADER_BYTES;
    mnnvl_wire_header(buf + at, MNNVL_WIRE_BYE, 0);
    at += MNNVL_WIRE_HEADER_BYTES;
    mnnvl_tcp_root_feed(buf, at);
    for (size_t cut = 0; cut < at; cut += 3)
        mnnvl_tcp_root_feed(buf, cut); /* every prefix, frames cut anywhere */
    memset(buf, 0xff, sizeof(buf));
    mnnvl_tcp_root_feed(buf, sizeof(buf));
    mnnvl_tcp_root_feed(NULL, 0);
    cr_assert(1, "no crash, no leak under the sanitizers");
}
