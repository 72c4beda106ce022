/* One libfabric endpoint of the ofi plugin; see ofi_ep.h. Progress is manual
 * (tcp;ofi_rxm's data_progress): nothing moves unless ofi_ep_progress reads the queue. A
 * payload that does not fit a receive slot travels as a second message: the receiver posts
 * a buffer of the size its header announced, with the header's tag, and rxm moves it by
 * rendezvous. A send lives until every part it posted completed, even when its caller gave
 * up, since the provider may still read its buffers. */
#include "ofi_ep.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR_SLOTS 16
#define SLOT_BYTES 4096 /* the largest message with its payload inline */
#define TAG_HDR 1ull
#define TAG_PAYLOAD (1ull << 63)
#define CQ_BATCH 16

enum { CTX_SLOT = 1, CTX_PAYLOAD, CTX_SEND };

/* What a completion's op_context points at: fi_context first (FI_CONTEXT mode). */
typedef struct ofi_ctx {
    struct fi_context fi;
    int kind;
    void *obj;
} ofi_ctx_t;

/* A posted receive for headers (and inline payloads). */
struct ofi_slot {
    ofi_ctx_t ctx;
    int posted;
    uint8_t buf[SLOT_BYTES];
};

/* A payload announced by a header, on its way into its message. */
struct ofi_payload {
    ofi_payload_t *next;
    ofi_ctx_t ctx;
    int posted;
    star_msg_t *msg;
};

/* A send: the header (with the payload inline, or the payload's tag) and the payload as a
 * second message. */
struct ofi_op {
    ofi_op_t *next; /* in the endpoint's list */
    ofi_ctx_t ctx[2];
    star_hdr_t h;
    star_buf_t *buf;
    fi_addr_t to;
    int parts;              /* 1 or 2 */
    int posted;             /* parts handed to the provider */
    int done;               /* parts completed */
    int orphan;             /* the caller is gone: free on the last completion */
    int known;              /* the peer took one of our messages before */
    uint64_t stalled_since; /* when posting it first met -FI_EAGAIN (0: never) */
    char why[160];
};

/* ---------------------------------------------------------------------------------------- */
/* Receiving                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void slot_post(ofi_ep_t *e, ofi_slot_t *s)
{
    ssize_t rc =
        fi_trecv(e->ep, s->buf, sizeof(s->buf), NULL, FI_ADDR_UNSPEC, TAG_HDR, 0, &s->ctx.fi);
    s->posted = rc == 0; /* -FI_EAGAIN: posted again at the next progress */
}

static void payload_post(ofi_ep_t *e, ofi_payload_t *p)
{
    ssize_t rc = fi_trecv(e->ep, p->msg->data, p->msg->len, NULL, FI_ADDR_UNSPEC, p->msg->h.aux, 0,
                          &p->ctx.fi);
    p->posted = rc == 0;
}

static void on_header(ofi_ep_t *e, ofi_slot_t *s, size_t len)
{
    star_hdr_t h;
    if (len < sizeof(h))
        return;
    memcpy(&h, s->buf, sizeof(h));
    size_t inline_len = len - sizeof(h);
    if (h.type == STAR_PING || (!h.aux && inline_len != h.bytes))
        return;
    star_msg_t *m = malloc(sizeof(*m) + h.bytes);
    if (!m)
        return; /* the waiter times out and says so */
    m->h = h;
    m->from = NULL;
    m->len = h.bytes;
    if (!h.aux) {
        memcpy(m->data, s->buf + sizeof(h), inline_len);
        e->route(e->route_arg, e, m);
        return;
    }
    ofi_payload_t *p = calloc(1, sizeof(*p));
    if (!p) {
        free(m);
        return;
    }
    p->ctx.kind = CTX_PAYLOAD;
    p->ctx.obj = p;
    p->msg = m;
    p->next = e->payloads;
    e->payloads = p;
    payload_post(e, p);
}

static void payload_done(ofi_ep_t *e, ofi_payload_t *p, int ok)
{
    for (ofi_payload_t **pp = &e->payloads; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (ok)
        e->route(e->route_arg, e, p->msg);
    else
        free(p->msg);
    free(p);
}

static void op_free(ofi_ep_t *e, ofi_op_t *op)
{
    for (ofi_op_t **pp = &e->ops; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    }
    star_buf_unref(op->buf);
    free(op);
}

static void on_completion(ofi_ep_t *e, ofi_ctx_t *ctx, size_t len,
                          const struct fi_cq_err_entry *err)
{
    if (ctx->kind == CTX_SLOT) {
        ofi_slot_t *s = ctx->obj;
        s->posted = 0;
        if (!err)
            on_header(e, s, len);
        slot_post(e, s);
    } else if (ctx->kind == CTX_PAYLOAD) {
        payload_done(e, ctx->obj, !err);
    } else {
        ofi_op_t *op = ctx->obj;
        op->done++;
        if (err && !op->why[0]) {
            char detail[128];
            const char *d =
                fi_cq_strerror(e->cq, err->prov_errno, err->err_data, detail, sizeof(detail));
            snprintf(op->why, sizeof(op->why), "%s (%s)", fi_strerror(err->err),
                     d ? d : "no detail");
        }
        if (op->orphan && op->done == op->posted)
            op_free(e, op);
    }
}

/* Reads the completion queue dry and reposts what could not be posted. Returns the number
 * of completions. */
int ofi_ep_progress(ofi_ep_t *e)
{
    int events = 0;
    for (;;) {
        struct fi_cq_tagged_entry ent[CQ_BATCH];
        ssize_t n = fi_cq_read(e->cq, ent, CQ_BATCH);
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err = {0};
            if (fi_cq_readerr(e->cq, &err, 0) == 1 && err.op_context) {
                on_completion(e, err.op_context, 0, &err);
                events++;
            }
            continue;
        }
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            on_completion(e, ent[i].op_context, ent[i].len, NULL);
        events += (int)n;
    }
    for (int i = 0; i < HDR_SLOTS; i++)
        if (!e->slots[i].posted)
            slot_post(e, &e->slots[i]);
    for (ofi_payload_t *p = e->payloads; p; p = p->next)
        if (!p->posted)
            payload_post(e, p);
    return events;
}

/* ---------------------------------------------------------------------------------------- */
/* Sending                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* 1 when op is a PING and no other send of the endpoint holds the provider's queues (every
 * part it posted completed). rxm then answers -FI_EAGAIN to a peer that took our messages
 * before only because it has no connection to it any more: the peer's end closed it, which a
 * live endpoint never does (the plugin keeps them open until exit). */
static int alone_ping(const ofi_ep_t *e, const ofi_op_t *op)
{
    if (op->h.type != STAR_PING || op->buf)
        return 0;
    for (const ofi_op_t *o = e->ops; o; o = o->next)
        if (o != op && o->done < o->posted)
            return 0;
    return 1;
}

/* Hands the parts not yet posted to the provider; -FI_EAGAIN (rxm is still connecting, or
 * its queues are full) leaves them for the next try. */
static void op_post(ofi_ep_t *e, ofi_op_t *op)
{
    while (op->posted < op->parts && !op->why[0]) {
        ssize_t rc;
        if (op->posted == 0) {
            struct iovec iov[2] = {{.iov_base = &op->h, .iov_len = sizeof(op->h)}};
            size_t count = 1;
            if (op->parts == 1 && op->buf) {
                iov[1] = (struct iovec){.iov_base = op->buf->data, .iov_len = op->buf->len};
                count = 2;
            }
            rc = fi_tsendv(e->ep, iov, NULL, count, op->to, TAG_HDR, &op->ctx[0].fi);
        } else {
            rc = fi_tsend(e->ep, op->buf->data, op->buf->len, NULL, op->to, op->h.aux,
                          &op->ctx[1].fi);
        }
        if (rc == -FI_EAGAIN) {
            uint64_t now = star_now_ms();
            int after = alone_ping(e, op) ? OFI_GONE_AFTER_MS : OFI_LOST_AFTER_MS;
            if (!op->stalled_since)
                op->stalled_since = now;
            else if (op->known && now - op->stalled_since >= (uint64_t)after)
                snprintf(op->why, sizeof(op->why),
                         "its endpoint is gone: rxm could not reconnect to it for %d ms", after);
            return;
        }
        if (rc != 0) {
            snprintf(op->why, sizeof(op->why), "%s", fi_strerror((int)-rc));
            return;
        }
        op->posted++;
    }
}

ofi_op_t *ofi_op_start(ofi_ep_t *e, const star_hdr_t *h, star_buf_t *buf, fi_addr_t to, int known)
{
    ofi_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    for (int i = 0; i < 2; i++) {
        op->ctx[i].kind = CTX_SEND;
        op->ctx[i].obj = op;
    }
    op->h = *h;
    op->buf = star_buf_ref(buf);
    op->to = to;
    op->known = known;
    op->parts = 1;
    if (buf && sizeof(op->h) + buf->len > SLOT_BYTES) {
        op->parts = 2;
        op->h.aux = TAG_PAYLOAD | e->tag_nonce | e->next_tag++;
    }
    op->next = e->ops;
    e->ops = op;
    if (to == FI_ADDR_UNSPEC)
        snprintf(op->why, sizeof(op->why), "no link to that rank");
    else
        op_post(e, op);
    return op;
}

int ofi_op_test(ofi_ep_t *e, ofi_op_t *op, char *why, size_t why_len)
{
    op_post(e, op);
    if (op->why[0] && op->done == op->posted) {
        snprintf(why, why_len, "%s", op->why);
        return -1;
    }
    return op->done == op->parts;
}

void ofi_op_end(ofi_ep_t *e, ofi_op_t *op)
{
    if (op->done == op->posted)
        op_free(e, op);
    else
        op->orphan = 1; /* parts not posted yet never will be */
}

/* ---------------------------------------------------------------------------------------- */
/* Opening and closing                                                                      */
/* ---------------------------------------------------------------------------------------- */

struct fi_info *ofi_hints(const char *provider)
{
    struct fi_info *hints = fi_allocinfo();
    if (!hints)
        return NULL;
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_TAGGED;
    hints->mode = FI_CONTEXT;
    hints->addr_format = FI_FORMAT_UNSPEC;
    hints->domain_attr->mr_mode = 0;                  /* host buffers, unregistered */
    hints->domain_attr->threading = FI_THREAD_DOMAIN; /* the process lock serialises */
    hints->fabric_attr->prov_name = strdup(provider);
    if (!hints->fabric_attr->prov_name) {
        fi_freeinfo(hints);
        return NULL;
    }
    return hints;
}

void ofi_ep_close(ofi_ep_t *e)
{
    if (e->ep)
        fi_close(&e->ep->fid); /* cancels what is posted: no completions after this */
    while (e->ops)
        op_free(e, e->ops);
    while (e->payloads) {
        ofi_payload_t *p = e->payloads;
        e->payloads = p->next;
        free(p->msg);
        free(p);
    }
    if (e->av)
        fi_close(&e->av->fid);
    if (e->cq)
        fi_close(&e->cq->fid);
    if (e->domain)
        fi_close(&e->domain->fid);
    if (e->fabric)
        fi_close(&e->fabric->fid);
    if (e->info)
        fi_freeinfo(e->info);
    star_lobby_clear(&e->lobby);
    free(e->slots);
    free(e);
}

ofi_ep_t *ofi_ep_open(const char *provider, const char *node, const char *service,
                      ofi_route_fn route, void *route_arg, int *rc_out, char *why, size_t why_len)
{
    ofi_ep_t *e = calloc(1, sizeof(*e));
    struct fi_info *hints = ofi_hints(provider);
    const char *step = "out of memory";
    int rc = -FI_ENOMEM;
    if (e)
        e->wait_fd = -1;
    if (!e || !hints || !(e->slots = calloc(HDR_SLOTS, sizeof(*e->slots))))
        goto fail;
    snprintf(e->provider, sizeof(e->provider), "%s", provider);
    e->route = route;
    e->route_arg = route_arg;
    step = "fi_getinfo";
    rc = fi_getinfo(OFI_API, node, service, FI_SOURCE, hints, &e->info);
    if (rc == 0) {
        step = "fi_fabric";
        rc = fi_fabric(e->info->fabric_attr, &e->fabric, NULL);
    }
    if (rc == 0) {
        step = "fi_domain";
        rc = fi_domain(e->fabric, e->info, &e->domain, NULL);
    }
    struct fi_cq_attr cq_attr = {
        .format = FI_CQ_FORMAT_TAGGED, .wait_obj = FI_WAIT_FD, .size = 1024};
    if (rc == 0) {
        step = "fi_cq_open";
        rc = fi_cq_open(e->domain, &cq_attr, &e->cq, NULL);
        if (rc == -FI_ENOSYS || rc == -FI_EINVAL) { /* no fd: poll the queue instead */
            cq_attr.wait_obj = FI_WAIT_NONE;
            rc = fi_cq_open(e->domain, &cq_attr, &e->cq, NULL);
        }
    }
    struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
    if (rc == 0) {
        step = "fi_av_open";
        rc = fi_av_open(e->domain, &av_attr, &e->av, NULL);
    }
    if (rc == 0) {
        step = "fi_endpoint";
        rc = fi_endpoint(e->domain, e->info, &e->ep, NULL);
    }
    if (rc == 0) {
        step = "binding the endpoint";
        rc = fi_ep_bind(e->ep, &e->cq->fid, FI_TRANSMIT | FI_RECV);
    }
    if (rc == 0)
        rc = fi_ep_bind(e->ep, &e->av->fid, 0);
    if (rc == 0) {
        step = "fi_enable";
        rc = fi_enable(e->ep);
    }
    if (rc == 0) {
        step = "fi_getname";
        e->name_len = sizeof(e->name);
        rc = fi_getname(&e->ep->fid, e->name, &e->name_len);
    }
    if (rc != 0)
        goto fail;
    if (cq_attr.wait_obj == FI_WAIT_FD && fi_control(&e->cq->fid, FI_GETWAIT, &e->wait_fd) != 0)
        e->wait_fd = -1;
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
        nonce = (uint32_t)getpid() * 2654435761u ^ (uint32_t)star_now_ms();
    e->tag_nonce = (uint64_t)(nonce & 0x7fffffffu) << 32;
    for (int i = 0; i < HDR_SLOTS; i++) {
        e->slots[i].ctx.kind = CTX_SLOT;
        e->slots[i].ctx.obj = &e->slots[i];
        slot_post(e, &e->slots[i]);
    }
    fi_freeinfo(hints);
    return e;
fail:
    *rc_out = rc < 0 ? rc : -rc;
    snprintf(why, why_len, "%s failed for provider %s at %s:%s: %s", step, provider,
             node ? node : "*", service ? service : "*", fi_strerror(rc < 0 ? -rc : rc));
    if (hints)
        fi_freeinfo(hints);
    if (e)
        ofi_ep_close(e);
    return NULL;
}
