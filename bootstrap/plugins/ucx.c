/* The ucx bootstrap plugin (libmnnvl-bootstrap-ucx.so): the star protocol of star.c over
 * UCX active messages. libmnnvl loads it with dlopen, so the library itself never links UCX.
 *
 * Config key: root (host:port). Rank 0 listens there with UCX's sockaddr listener (works
 * with UCX_TLS=tcp); members connect and say HELLO over that connection. A split's members
 * reach their new rank 0 through the UCX worker address, without a listener.
 *
 * One UCX context and worker per process serve all its communicators (reference-counted);
 * messages name their communicator by token (star.h), and a HELLO waits in the lobby of the
 * listener it came through until the communicator formed there takes it, so communicators
 * created one after another (or at once, with different names) share a root port.
 *
 * A listener lives until the process exits, and keeps the context and worker alive with it.
 * UCX 1.13 cannot destroy a listener safely while a client is connecting: its TCP sockcm
 * keeps a pointer to the listener in every accepted connection whose first data has not
 * arrived yet, and calls through it from the async thread when the data comes, after
 * ucp_listener_destroy freed it (a SIGSEGV in ucp_cm_server_conn_request_cb; the listener
 * cleanup in uct/tcp/tcp_listener.c does not touch those connections; openucx/ucx#11087 is
 * the same race). Members of the next communicator connect exactly while the previous one
 * is being torn down, so a listener is never destroyed; connection requests are never
 * rejected either (ucp_listener_reject on a sockcm request can crash the async thread,
 * openucx/ucx#11235): every request is accepted and an unwanted connection closed.
 *
 * Peer loss: endpoints use UCX's peer error handling, so a rank that dies breaks its
 * connection and star.c reports PEER_LOST; between collectives the liveness watcher's polls
 * (star.h) run the error handler, so a killed rank is known within milliseconds.
 */
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include "hostport.h"
#include "star.h"

#define AM_ID 0x4d4e /* "MN" */
#define POLL_SLICE_MS 50

typedef struct ucx_proc ucx_proc_t;
typedef struct ucx_listener ucx_listener_t;

/* One UCP endpoint and what its error handler learned. */
typedef struct ucx_link {
    struct ucx_link *next; /* in its listener's list until a communicator adopts it */
    ucp_ep_h ep;
    ucs_status_t failed;
} ucx_link_t;

struct ucx_listener {
    ucx_listener_t *next;
    char address[300];
    ucp_listener_h handle;
    ucp_conn_request_h *reqs; /* arrived, endpoint not created yet */
    int nreqs, cap;
    ucx_link_t *links; /* accepted, not adopted yet */
    star_lobby_t lobby;
};

/* A send. UCX 1.13 reads the header and the payload until the send completes, so both
 * live here; a send whose caller gave up waits in the orphans until it completes, and so
 * does an endpoint close that outlasted its grace period. */
typedef struct ucx_op {
    struct ucx_op *next;
    star_hdr_t h;
    star_buf_t *buf;
    void *req;
    ucs_status_t status; /* UCS_INPROGRESS while in flight */
} ucx_op_t;

struct ucx_proc {
    pid_t pid;
    pthread_mutex_t lock; /* every use of the worker and of the lists below */
    atomic_int comms;     /* live communicators */
    ucp_context_h ctx;
    ucp_worker_h worker;
    int efd;
    ucx_listener_t *listeners;
    star_registry_t registry;
    ucx_op_t *orphans;
};

typedef struct ucx_comm {
    star_t star; /* first: star.c hands us &comm->star */
    ucx_proc_t *proc;
    ucx_listener_t *listener; /* rank 0 of a communicator formed at a root */
    ucx_link_t **links;       /* by rank */
} ucx_comm_t;

static const star_ops_t ucx_ops;

/* The process's UCX state; proc_lock orders attaching and detaching. */
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static ucx_proc_t *the_proc;

/* ---------------------------------------------------------------------------------------- */
/* Callbacks (inside ucp_worker_progress, with the process lock held)                       */
/* ---------------------------------------------------------------------------------------- */

static ucs_status_t on_message(void *arg, const void *header, size_t header_length, void *data,
                               size_t length, const ucp_am_recv_param_t *param)
{
    ucx_proc_t *proc = arg;
    if (header_length != sizeof(star_hdr_t) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV))
        return UCS_OK; /* not ours: we always send eager */
    star_hdr_t h;
    memcpy(&h, header, sizeof(h));
    if (h.type == STAR_PING)
        return UCS_OK;
    star_t *st = NULL;
    ucx_listener_t *via = NULL;
    ucx_link_t *from = NULL;
    if (h.dst != 0) {
        st = star_registry_find(&proc->registry, h.dst);
    } else if (h.type == STAR_HELLO && (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {
        /* The reply endpoint of a HELLO is the one we created from its connection request. */
        for (ucx_listener_t *l = proc->listeners; l && !from; l = l->next)
            for (ucx_link_t *k = l->links; k && !from; k = k->next)
                if (k->ep == param->reply_ep) {
                    from = k;
                    via = l;
                }
    }
    if (!st && !via)
        return UCS_OK; /* for a communicator that is gone */
    star_msg_t *m = malloc(sizeof(*m) + length);
    if (!m)
        return UCS_OK; /* the waiter times out and says so */
    m->h = h;
    m->from = from;
    m->len = length;
    memcpy(m->data, data, length);
    if (st)
        star_deliver(st, m);
    else
        star_lobby_add(&via->lobby, m);
    return UCS_OK;
}

static void on_ep_error(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    (void)ep;
    ucx_link_t *link = arg;
    link->failed = status;
}

static void on_conn_request(ucp_conn_request_h req, void *arg)
{
    ucx_listener_t *l = arg;
    if (l->nreqs == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        ucp_conn_request_h *v = realloc(l->reqs, sizeof(*v) * (size_t)cap);
        if (!v)
            return; /* the client's connection times out; it retries */
        l->reqs = v;
        l->cap = cap;
    }
    l->reqs[l->nreqs++] = req;
}

static void on_sent(void *request, ucs_status_t status, void *user_data)
{
    (void)request;
    ucx_op_t *op = user_data;
    op->status = status;
}

/* ---------------------------------------------------------------------------------------- */
/* Links                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static ucx_link_t *link_open(ucx_proc_t *proc, ucp_ep_params_t *params, ucs_status_t *why)
{
    ucx_link_t *link = calloc(1, sizeof(*link));
    if (!link) {
        *why = UCS_ERR_NO_MEMORY;
        return NULL;
    }
    link->failed = UCS_OK;
    params->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params->err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params->err_handler.cb = on_ep_error;
    params->err_handler.arg = link;
    *why = ucp_ep_create(proc->worker, params, &link->ep);
    if (*why != UCS_OK) {
        free(link);
        return NULL;
    }
    return link;
}

/* Closes the endpoint, flushing it while it works, and frees the link (UCX calls no error
 * handler of a closed endpoint). A flush still waiting for the peer after the grace
 * period finishes in the orphans: closing an endpoint twice is an error in UCX. */
static void link_close(ucx_proc_t *proc, ucx_link_t *link)
{
    if (!link)
        return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = link->failed == UCS_OK ? 0 : UCP_EP_CLOSE_FLAG_FORCE};
    void *req = ucp_ep_close_nbx(link->ep, &prm);
    uint64_t deadline = star_now_ms() + STAR_CLOSE_GRACE_MS;
    while (UCS_PTR_IS_PTR(req) && ucp_request_check_status(req) == UCS_INPROGRESS &&
           star_now_ms() < deadline)
        ucp_worker_progress(proc->worker);
    ucx_op_t *op = UCS_PTR_IS_PTR(req) && ucp_request_check_status(req) == UCS_INPROGRESS
                       ? calloc(1, sizeof(*op))
                       : NULL;
    if (op) {
        op->req = req;
        op->status = UCS_INPROGRESS;
        op->next = proc->orphans;
        proc->orphans = op;
    } else if (UCS_PTR_IS_PTR(req)) {
        ucp_request_free(req); /* done, or no memory to wait for it: UCX finishes it */
    }
    free(link);
}

/* Creates endpoints for the connection requests that arrived, and closes accepted
 * connections that broke before a communicator adopted them. */
static void tend_listeners(ucx_proc_t *proc)
{
    for (ucx_listener_t *l = proc->listeners; l; l = l->next) {
        while (l->nreqs > 0) {
            ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST,
                                  .conn_request = l->reqs[--l->nreqs]};
            ucs_status_t why;
            ucx_link_t *link = link_open(proc, &ep, &why);
            if (link) { /* else the client sees its connection fail, and retries */
                link->next = l->links;
                l->links = link;
            }
        }
        for (ucx_link_t **pp = &l->links; *pp;) {
            ucx_link_t *link = *pp;
            if (link->failed == UCS_OK) {
                pp = &link->next;
                continue;
            }
            *pp = link->next;
            star_lobby_drop_from(&l->lobby, link);
            link_close(proc, link);
        }
    }
}

/* Frees the sends and closes whose callers gave up, once they completed (all: now). */
static void reap_orphans(ucx_proc_t *proc, int all)
{
    for (ucx_op_t **pp = &proc->orphans; *pp;) {
        ucx_op_t *op = *pp;
        if (!all && ucp_request_check_status(op->req) == UCS_INPROGRESS) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        ucp_request_free(op->req);
        star_buf_unref(op->buf);
        free(op);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The transport for star.c                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void ucx_send_start(star_t *st, star_send_t *s)
{
    ucx_comm_t *c = (ucx_comm_t *)st;
    ucx_op_t *op = calloc(1, sizeof(*op));
    s->op = op;
    if (!op) {
        snprintf(s->why, sizeof(s->why), "out of memory");
        return;
    }
    op->h = s->h;
    op->buf = star_buf_ref(s->buf);
    op->status = UCS_INPROGRESS;
    ucx_link_t *link = c->links[s->to];
    if (!link) {
        op->status = UCS_ERR_NOT_CONNECTED;
        return;
    }
    /* A HELLO asks for the reply endpoint: it tells rank 0 which connection it came by. */
    ucp_request_param_t prm = {
        .op_attr_mask =
            UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .flags = UCP_AM_SEND_FLAG_EAGER | (s->h.type == STAR_HELLO ? UCP_AM_SEND_FLAG_REPLY : 0),
        .cb.send = on_sent,
        .user_data = op};
    void *req = ucp_am_send_nbx(link->ep, AM_ID, &op->h, sizeof(op->h),
                                op->buf ? op->buf->data : NULL, op->buf ? op->buf->len : 0, &prm);
    if (UCS_PTR_IS_PTR(req))
        op->req = req;
    else
        op->status = UCS_PTR_STATUS(req);
}

static int ucx_send_test(star_t *st, star_send_t *s)
{
    (void)st;
    ucx_op_t *op = s->op;
    if (!op)
        return -1;
    if (op->status == UCS_INPROGRESS)
        return 0;
    if (op->status == UCS_OK)
        return 1;
    snprintf(s->why, sizeof(s->why), "%s", ucs_status_string(op->status));
    return -1;
}

static void ucx_send_end(star_t *st, star_send_t *s)
{
    ucx_op_t *op = s->op;
    if (!op)
        return;
    if (op->status == UCS_INPROGRESS) {
        ucx_proc_t *proc = ((ucx_comm_t *)st)->proc;
        op->next = proc->orphans;
        proc->orphans = op;
        return;
    }
    if (op->req)
        ucp_request_free(op->req);
    star_buf_unref(op->buf);
    free(op);
}

static void ucx_wait(star_t *st, uint64_t until)
{
    ucx_proc_t *proc = ((ucx_comm_t *)st)->proc;
    unsigned events = 0, n;
    while ((n = ucp_worker_progress(proc->worker)) != 0)
        events += n;
    int requests = 0;
    for (ucx_listener_t *l = proc->listeners; l; l = l->next)
        requests += l->nreqs;
    tend_listeners(proc);
    reap_orphans(proc, 0);
    uint64_t now = star_now_ms();
    if (events || requests || now >= until)
        return; /* the caller looks at what arrived */
    if (ucp_worker_arm(proc->worker) != UCS_OK)
        return; /* UCS_ERR_BUSY: more events to progress */
    /* Sleeping in slices: connection events come from UCX's async thread, which does not
     * always signal the event fd. */
    uint64_t left = until - now;
    struct pollfd pfd = {.fd = proc->efd, .events = POLLIN};
    pthread_mutex_unlock(&proc->lock);
    poll(&pfd, 1, left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
    pthread_mutex_lock(&proc->lock);
}

static int ucx_poll(star_t *st)
{
    unsigned events = 0, n;
    while ((n = ucp_worker_progress(((ucx_comm_t *)st)->proc->worker)) != 0)
        events += n;
    return (int)events;
}

static void ucx_wake(star_t *st)
{
    ucp_worker_signal(((ucx_comm_t *)st)->proc->worker); /* any thread, says ucp.h */
}

static const char *ucx_link_broken(star_t *st, int rank)
{
    ucx_link_t *link = ((ucx_comm_t *)st)->links[rank];
    if (!link)
        return rank == st->bs.rank ? NULL : "no connection";
    return link->failed == UCS_OK ? NULL : ucs_status_string(link->failed);
}

static mnnvl_status_t ucx_adopt(star_t *st, star_msg_t *hello)
{
    ucx_comm_t *c = (ucx_comm_t *)st;
    ucx_link_t *link = hello->from;
    for (ucx_link_t **pp = &c->listener->links; *pp; pp = &(*pp)->next) {
        if (*pp != link)
            continue;
        *pp = link->next;
        link->next = NULL;
        c->links[hello->h.rank] = link;
        return link->failed == UCS_OK ? MNNVL_SUCCESS : MNNVL_ERR_PEER_LOST;
    }
    return MNNVL_ERR_PEER_LOST; /* its connection broke and was closed meanwhile */
}

static void ucx_unlink(star_t *st, int rank)
{
    ucx_comm_t *c = (ucx_comm_t *)st;
    link_close(c->proc, c->links[rank]);
    c->links[rank] = NULL;
}

static mnnvl_status_t sockaddr_of(star_t *st, const char *address, int passive,
                                  struct sockaddr_storage *ss, socklen_t *len)
{
    mnnvl_hostport_t hp;
    char why[400];
    if (mnnvl_hostport_parse(address, 0, &hp, why, sizeof(why)) != MNNVL_SUCCESS)
        return star_fail(st, MNNVL_ERR_INVALID_ARGUMENT,
                         "root '%s' is not host:port (%s); set the config key root (MNNVL_ROOT)",
                         address, why);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hp.host, hp.port, &hints, &res);
    if (rc != 0 || !res)
        return star_fail(st, MNNVL_ERR_INVALID_ARGUMENT, "cannot resolve root '%s': %s", address,
                         gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t ucx_connect_root(star_t *st, uint64_t deadline)
{
    (void)deadline; /* connecting does not block: a failure shows on the link */
    ucx_comm_t *c = (ucx_comm_t *)st;
    struct sockaddr_storage ss;
    socklen_t len;
    mnnvl_status_t s = sockaddr_of(st, st->root, 0, &ss, &len);
    if (s != MNNVL_SUCCESS)
        return s;
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR,
                          .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
                          .sockaddr = {.addr = (struct sockaddr *)&ss, .addrlen = len}};
    ucs_status_t why;
    c->links[0] = link_open(c->proc, &ep, &why);
    if (!c->links[0])
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "cannot connect to root %s: %s", st->root,
                         ucs_status_string(why));
    return MNNVL_SUCCESS;
}

static mnnvl_status_t ucx_address(star_t *st, void *buf, size_t *len)
{
    ucx_proc_t *proc = ((ucx_comm_t *)st)->proc;
    ucp_address_t *addr = NULL;
    size_t addr_len = 0;
    ucs_status_t us = ucp_worker_get_address(proc->worker, &addr, &addr_len);
    if (us != UCS_OK)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "no UCX worker address: %s",
                         ucs_status_string(us));
    mnnvl_status_t s = MNNVL_SUCCESS;
    if (addr_len > *len)
        s = star_fail(st, MNNVL_ERR_BOOTSTRAP,
                      "the UCX worker address has %zu bytes, more than %zu", addr_len, *len);
    else
        memcpy(buf, addr, addr_len);
    *len = addr_len;
    ucp_worker_release_address(proc->worker, addr);
    return s;
}

static mnnvl_status_t ucx_link_address(star_t *st, int rank, const void *addr, size_t len)
{
    (void)len;
    ucx_comm_t *c = (ucx_comm_t *)st;
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS,
                          .address = (const ucp_address_t *)addr};
    ucs_status_t why;
    c->links[rank] = link_open(c->proc, &ep, &why);
    if (!c->links[rank])
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "cannot connect to rank %d: %s", rank,
                         ucs_status_string(why));
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* The process's state                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void proc_free(ucx_proc_t *proc)
{
    reap_orphans(proc, 1);
    if (proc->worker)
        ucp_worker_destroy(proc->worker);
    if (proc->ctx)
        ucp_cleanup(proc->ctx);
    star_registry_free(&proc->registry);
    pthread_mutex_destroy(&proc->lock);
    free(proc);
}

static ucs_status_t proc_open(ucx_proc_t *proc)
{
    /* A root port that an earlier process used is still held by its closed connections
     * (TIME_WAIT). UCX 1.13 takes this option from the environment only; a value the user
     * set wins. */
    setenv("UCX_TCP_CM_REUSEADDR", "y", 0);
    ucp_config_t *config = NULL;
    ucs_status_t us = ucp_config_read(NULL, NULL, &config);
    ucp_params_t params = {.field_mask = UCP_PARAM_FIELD_FEATURES,
                           .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP};
    if (us == UCS_OK)
        us = ucp_init(&params, config, &proc->ctx);
    if (config)
        ucp_config_release(config);
    /* Single-threaded: the process lock serialises every use. */
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    if (us == UCS_OK)
        us = ucp_worker_create(proc->ctx, &wp, &proc->worker);
    if (us == UCS_OK)
        us = ucp_worker_get_efd(proc->worker, &proc->efd);
    ucp_am_handler_param_t hp = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .id = AM_ID,
        .cb = on_message,
        .arg = proc,
        .flags = UCP_AM_FLAG_WHOLE_MSG};
    if (us == UCS_OK)
        us = ucp_worker_set_am_recv_handler(proc->worker, &hp);
    return us;
}

/* The process's state, opened on first use. A state inherited through fork() belongs to
 * the parent's UCX (its async thread did not survive the fork): it is left alone. */
static ucx_proc_t *proc_attach(ucs_status_t *why)
{
    pthread_mutex_lock(&proc_lock);
    if (the_proc && the_proc->pid != getpid())
        the_proc = NULL;
    ucx_proc_t *proc = the_proc;
    *why = UCS_OK;
    if (!proc) {
        proc = calloc(1, sizeof(*proc));
        *why = proc ? UCS_OK : UCS_ERR_NO_MEMORY;
        if (proc) {
            proc->pid = getpid();
            proc->efd = -1;
            pthread_mutex_init(&proc->lock, NULL);
            atomic_init(&proc->comms, 0);
            *why = proc_open(proc);
            if (*why != UCS_OK) {
                proc_free(proc);
                proc = NULL;
            }
        }
        the_proc = proc;
    }
    if (proc)
        atomic_fetch_add(&proc->comms, 1);
    pthread_mutex_unlock(&proc_lock);
    return proc;
}

/* The last communicator closes the context and worker, unless a listener holds them. */
static void proc_detach(ucx_proc_t *proc)
{
    pthread_mutex_lock(&proc_lock);
    if (atomic_fetch_sub(&proc->comms, 1) == 1 && !proc->listeners && proc == the_proc) {
        the_proc = NULL;
        proc_free(proc);
    }
    pthread_mutex_unlock(&proc_lock);
}

/* The listener at st->root, created on first use. Under the process lock. */
static mnnvl_status_t listen_at_root(ucx_comm_t *c, uint64_t deadline)
{
    star_t *st = &c->star;
    ucx_proc_t *proc = c->proc;
    for (ucx_listener_t *l = proc->listeners; l; l = l->next) {
        if (strcmp(l->address, st->root) == 0) {
            c->listener = l;
            return MNNVL_SUCCESS;
        }
    }
    struct sockaddr_storage ss;
    socklen_t len;
    mnnvl_status_t s = sockaddr_of(st, st->root, 1, &ss, &len);
    ucx_listener_t *l = s == MNNVL_SUCCESS ? calloc(1, sizeof(*l)) : NULL;
    if (s == MNNVL_SUCCESS && !l)
        return star_fail(st, MNNVL_ERR_NO_MEMORY, "out of memory");
    if (s != MNNVL_SUCCESS)
        return s;
    snprintf(l->address, sizeof(l->address), "%s", st->root);
    ucp_listener_params_t lp = {.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
                                              UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
                                .sockaddr = {.addr = (struct sockaddr *)&ss, .addrlen = len},
                                .conn_handler = {.cb = on_conn_request, .arg = l}};
    ucs_status_t us;
    /* The port may still be held by an earlier process's closing connections. */
    while ((us = ucp_listener_create(proc->worker, &lp, &l->handle)) != UCS_OK) {
        if (star_now_ms() >= deadline) {
            free(l);
            return star_fail(st, MNNVL_ERR_BOOTSTRAP,
                             "cannot listen on root %s within timeout_ms %d: %s", st->root,
                             st->timeout_ms, ucs_status_string(us));
        }
        pthread_mutex_unlock(&proc->lock);
        star_pause_ms(STAR_RETRY_PAUSE_MS);
        pthread_mutex_lock(&proc->lock);
    }
    l->next = proc->listeners;
    proc->listeners = l;
    c->listener = l;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Communicators                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* A registered communicator on proc, which it holds a reference to; `locked`: the caller
 * holds the process lock. */
static ucx_comm_t *comm_new(ucx_proc_t *proc, int rank, int size, int timeout_ms,
                            void (*set_error)(mnnvl_status_t, const char *), int locked)
{
    ucx_comm_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->proc = proc;
    c->links = calloc((size_t)size, sizeof(*c->links));
    if (!c->links || star_init(&c->star, &ucx_ops, &proc->lock, rank, size, timeout_ms,
                               set_error) != MNNVL_SUCCESS)
        goto fail;
    if (star_register(&c->star, &proc->registry, locked) == 0)
        return c;
fail:
    star_release(&c->star);
    free(c->links);
    free(c);
    return NULL;
}

static star_t *ucx_child_new(star_t *parent, int rank, int size)
{
    ucx_proc_t *proc = ((ucx_comm_t *)parent)->proc;
    atomic_fetch_add(&proc->comms, 1); /* the parent's reference keeps proc alive */
    ucx_comm_t *c = comm_new(proc, rank, size, parent->timeout_ms, parent->set_error, 1);
    if (!c) {
        atomic_fetch_sub(&proc->comms, 1);
        return NULL;
    }
    return &c->star;
}

static void ucx_free(star_t *st)
{
    ucx_comm_t *c = (ucx_comm_t *)st;
    ucx_proc_t *proc = c->proc;
    pthread_mutex_lock(&proc->lock);
    star_registry_remove(&proc->registry, st);
    for (int r = 0; r < st->bs.size; r++)
        link_close(proc, c->links[r]);
    reap_orphans(proc, 0);
    pthread_mutex_unlock(&proc->lock);
    star_release(st);
    free(c->links);
    free(c);
    proc_detach(proc);
}

static const star_ops_t ucx_ops = {
    .name = "ucx",
    .send_start = ucx_send_start,
    .send_test = ucx_send_test,
    .send_end = ucx_send_end,
    .wait = ucx_wait,
    .poll = ucx_poll,
    .wake = ucx_wake,
    .link_broken = ucx_link_broken,
    .adopt = ucx_adopt,
    .connect_root = ucx_connect_root,
    .unlink = ucx_unlink,
    .address = ucx_address,
    .link_address = ucx_link_address,
    .child_new = ucx_child_new,
    .free = ucx_free,
    .ping_ms = 0, /* UCX reports a broken connection itself */
};

static mnnvl_status_t ucx_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    star_t like;
    mnnvl_status_t s = star_begin(&like, &ucx_ops, args, out);
    if (s != MNNVL_SUCCESS)
        return s;
    ucs_status_t why;
    ucx_proc_t *proc = proc_attach(&why);
    if (!proc)
        return star_fail(&like, MNNVL_ERR_BOOTSTRAP, "cannot open a UCX context and worker: %s",
                         ucs_status_string(why));
    ucx_comm_t *c = comm_new(proc, args->rank, args->size, args->timeout_ms, args->set_error, 0);
    if (!c) {
        proc_detach(proc);
        return star_fail(&like, MNNVL_ERR_NO_MEMORY, "out of memory");
    }
    star_t *st = &c->star;
    star_take_like(st, &like);
    uint64_t deadline = star_now_ms() + (uint64_t)args->timeout_ms;
    if (args->size > 1 && args->rank == 0) {
        pthread_mutex_lock(&proc->lock);
        s = listen_at_root(c, deadline);
        pthread_mutex_unlock(&proc->lock);
    }
    return star_finish(st, s, c->listener ? &c->listener->lobby : NULL, args, deadline, out);
}

STAR_PLUGIN("ucx", ucx_create);
