/* One libfabric endpoint of the ofi plugin (ofi.c) and the messages on it: star.h headers,
 * each with its payload inline when it fits a receive slot, else followed by the payload as
 * a second message whose tag the header names. The caller serialises every call on an
 * endpoint (the plugin's process lock). */
#ifndef MNNVL_PLUGIN_OFI_EP_H
#define MNNVL_PLUGIN_OFI_EP_H

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <stddef.h>
#include <stdint.h>

#include "star.h"

#define OFI_API FI_VERSION(1, 10)

typedef struct ofi_ep ofi_ep_t;
typedef struct ofi_op ofi_op_t;
typedef struct ofi_slot ofi_slot_t;
typedef struct ofi_payload ofi_payload_t;

/* Takes a complete message that arrived on e (HELLOs have h.dst 0). */
typedef void (*ofi_route_fn)(void *arg, ofi_ep_t *e, star_msg_t *m);

struct ofi_ep {
    ofi_ep_t *next; /* the plugin's list */
    char provider[64];
    char bound[300]; /* the plugin's key: a root's host:port, or a member's local address */
    int root;        /* bound to a root address */
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_cq *cq;
    struct fid_av *av;
    struct fid_ep *ep;
    int wait_fd; /* -1: the provider has no fd to sleep on */
    uint8_t name[256];
    size_t name_len;
    uint64_t tag_nonce; /* payload tags: random high bits, so senders do not collide */
    uint32_t next_tag;
    ofi_slot_t *slots;
    ofi_payload_t *payloads;
    ofi_op_t *ops;
    star_lobby_t lobby;
    ofi_route_fn route;
    void *route_arg;
};

/* RDM, tagged, unregistered host buffers, the FI_CONTEXT mode, for `provider`; NULL when
 * out of memory. fi_freeinfo it. */
struct fi_info *ofi_hints(const char *provider);

/* Opens an endpoint bound to node:service (service "0": any port) with its receives posted.
 * NULL with *rc (a negative fi_errno) and the sentence *why on failure. */
ofi_ep_t *ofi_ep_open(const char *provider, const char *node, const char *service,
                      ofi_route_fn route, void *route_arg, int *rc, char *why, size_t why_len);
void ofi_ep_close(ofi_ep_t *e);

/* Reads the completion queue dry, routing what arrived, and posts what could not be posted
 * before. Returns the number of completions. */
int ofi_ep_progress(ofi_ep_t *e);

/* Starts sending header h (its aux is the endpoint's to set) and buf to `to`; `known`: the
 * peer took one of our messages before, so a send that cannot even be posted for
 * OFI_LOST_AFTER_MS (a lone PING: OFI_GONE_AFTER_MS) means its endpoint is gone. NULL when
 * out of memory. */
ofi_op_t *ofi_op_start(ofi_ep_t *e, const star_hdr_t *h, star_buf_t *buf, fi_addr_t to, int known);
/* 0 while in flight, 1 once sent, -1 when it failed (why). Retries a postponed post. */
int ofi_op_test(ofi_ep_t *e, ofi_op_t *op, char *why, size_t why_len);
/* The caller is done with op; one still in flight is freed by its last completion. */
void ofi_op_end(ofi_ep_t *e, ofi_op_t *op);

#define OFI_LOST_AFTER_MS 1000
/* The same for a PING while no other send holds the endpoint's queues: then nothing but a
 * missing connection stalls it (see alone_ping in ofi_ep.c). */
#define OFI_GONE_AFTER_MS 200

#endif
