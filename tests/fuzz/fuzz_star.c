/* libFuzzer harness for the star protocol of the ucx and ofi plugins
 * (bootstrap/plugins/star.c): how a communicator handles the messages its transport hands
 * it (star_deliver, the lobby), through forming, an allgather, a broadcast, a barrier and a
 * child (split). The transport here is a script: the first byte picks the rank and the size, the
 * rest is a list of messages {u8 type, i8 rank, u8 seq (0xff: the communicator id), i8
 * status, i8 origin, u8 flags (1: to the lobby, 2: the right size), u8 length, payload},
 * delivered one per wait; a type of STAR_PING + 1 instead breaks the link to that rank
 * (until the communicator unlinks it). When the script ends the communicator is aborted.
 * Sends always succeed. The addresses a split links to are read whole, as a real
 * transport would. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/plugins/star.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSG_FIXED 7

typedef struct fuzz_star {
    star_t st; /* first: the ops get this pointer */
    star_lobby_t lobby;
    const uint8_t *p;
    size_t left;
    int ended;
    int broken;   /* the rank whose link broke, -1: none */
    unsigned sum; /* of the bytes of the addresses linked to */
} fuzz_star_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *script;
static size_t script_left;

static void next_message(fuzz_star_t *f)
{
    if (f->ended)
        return;
    if (script_left < MSG_FIXED) {
        f->ended = 1;
        atomic_store(&f->st.aborted, 1);
        return;
    }
    const uint8_t *h = script;
    size_t len = h[6] < script_left - MSG_FIXED ? h[6] : script_left - MSG_FIXED;
    star_msg_t *m = calloc(1, sizeof(*m) + len);
    if (!m)
        return;
    m->h.type = h[0] % (STAR_PING + 2);
    m->h.rank = (int8_t)h[1];
    m->h.seq = h[2] == 0xff ? f->st.comm_id : h[2];
    m->h.status = (int8_t)h[3];
    m->h.origin = (int8_t)h[4];
    m->h.dst = h[5] & 1 ? 0 : f->st.token;
    m->h.src = 1000 + (uint64_t)(uint8_t)h[1];
    m->h.size = h[5] & 2 ? f->st.bs.size : (int8_t)h[6];
    m->h.bytes = len;
    m->len = len;
    memcpy(m->data, h + MSG_FIXED, len);
    script += MSG_FIXED + len;
    script_left -= MSG_FIXED + len;
    if (m->h.type == STAR_PING + 1) {
        f->broken = m->h.rank;
        free(m);
    } else if (m->h.dst == 0 && m->h.type == STAR_HELLO)
        star_lobby_add(&f->lobby, m);
    else
        star_deliver(&f->st, m);
}

static void op_send_start(star_t *st, star_send_t *s)
{
    (void)st;
    s->op = s;
}
static int op_send_test(star_t *st, star_send_t *s)
{
    (void)st;
    (void)s;
    return 1;
}
static void op_send_end(star_t *st, star_send_t *s)
{
    (void)st;
    s->op = NULL;
}
static void op_wait(star_t *st, uint64_t until)
{
    (void)until;
    next_message((fuzz_star_t *)st);
}
static int op_poll(star_t *st)
{
    (void)st;
    return 0;
}
static void op_wake(star_t *st)
{
    (void)st;
}
static const char *op_link_broken(star_t *st, int rank)
{
    return ((fuzz_star_t *)st)->broken == rank ? "the script broke it" : NULL;
}
static mnnvl_status_t op_adopt(star_t *st, star_msg_t *hello)
{
    (void)st;
    (void)hello;
    return MNNVL_SUCCESS;
}
static mnnvl_status_t op_connect_root(star_t *st, uint64_t deadline)
{
    (void)deadline;
    if (((fuzz_star_t *)st)->ended)
        return star_fail(st, MNNVL_ERR_ABORTED, "the script ended");
    return MNNVL_SUCCESS;
}
static void op_unlink(star_t *st, int rank)
{
    fuzz_star_t *f = (fuzz_star_t *)st;
    if (f->broken == rank)
        f->broken = -1;
}
static mnnvl_status_t op_address(star_t *st, void *buf, size_t *len)
{
    (void)st;
    memcpy(buf, "fuzz", 4);
    *len = 4;
    return MNNVL_SUCCESS;
}
static mnnvl_status_t op_link_address(star_t *st, int rank, const void *addr, size_t len)
{
    (void)rank;
    const uint8_t *a = addr;
    for (size_t i = 0; i < len; i++) /* what a transport does: read the address whole */
        ((fuzz_star_t *)st)->sum += a[i];
    return MNNVL_SUCCESS;
}
static star_t *op_child_new(star_t *parent, int rank, int size);
static void op_free(star_t *st)
{
    fuzz_star_t *f = (fuzz_star_t *)st;
    star_release(st);
    star_lobby_clear(&f->lobby);
    free(f);
}
static void ignore_error(mnnvl_status_t status, const char *sentence)
{
    (void)status;
    (void)sentence;
}

static const star_ops_t ops = {
    .name = "fuzz",
    .send_start = op_send_start,
    .send_test = op_send_test,
    .send_end = op_send_end,
    .wait = op_wait,
    .poll = op_poll,
    .wake = op_wake,
    .link_broken = op_link_broken,
    .adopt = op_adopt,
    .connect_root = op_connect_root,
    .unlink = op_unlink,
    .address = op_address,
    .link_address = op_link_address,
    .child_new = op_child_new,
    .free = op_free,
};

static fuzz_star_t *fuzz_new(int rank, int size)
{
    fuzz_star_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    if (star_init(&f->st, &ops, &lock, rank, size, 1000, ignore_error) != MNNVL_SUCCESS) {
        star_release(&f->st);
        free(f);
        return NULL;
    }
    f->broken = -1;
    snprintf(f->st.root, sizeof(f->st.root), "fuzz");
    star_fill_interface(&f->st);
    return f;
}

static star_t *op_child_new(star_t *parent, int rank, int size)
{
    (void)parent;
    fuzz_star_t *c = fuzz_new(rank, size);
    return c ? &c->st : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    int group = 1 + (data[0] & 3);
    int rank = (data[0] >> 2 & 3) % group;
    script = data + 1;
    script_left = size - 1;
    fuzz_star_t *f = fuzz_new(rank, group);
    if (!f)
        return 0;
    mnnvl_bootstrap_t *bs = &f->st.bs;
    const mnnvl_bootstrap_ops_t *o = bs->ops;
    mnnvl_status_t s = star_form(&f->st, &f->lobby, "world", star_now_ms() + 1000);
    uint8_t mine[8] = {1, 2, 3, 4, 5, 6, 7, 8}, all[8 * 4];
    if (s == MNNVL_SUCCESS)
        s = o->allgather(bs, mine, all, sizeof(mine));
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        s = o->broadcast(bs, mine, sizeof(mine), group - 1);
    if (s == MNNVL_SUCCESS || s == MNNVL_ERR_MISMATCH)
        s = o->barrier(bs);
    /* A child of the even or the odd ranks, as lib hands it down (parent ranks in order). */
    int members[4], n = 0, me = 0;
    for (int r = rank & 1; r < group; r += 2) {
        if (r == rank)
            me = n;
        members[n++] = r;
    }
    mnnvl_bootstrap_child_t desc = {.members = members, .size = n, .rank = me, .tag = 7};
    mnnvl_bootstrap_t *child = NULL;
    if (s == MNNVL_SUCCESS)
        s = o->child(bs, &desc, &child);
    if (child)
        child->ops->destroy(child);
    o->destroy(bs);
    return 0;
}
