/* The ofi bootstrap plugin (libmnnvl-bootstrap-ofi.so): the star protocol of star.c over
 * libfabric tagged messages on RDM endpoints. libmnnvl loads it with dlopen, so the library
 * itself never links libfabric.
 *
 * Config keys: root (host:port): rank 0's endpoint is bound there, and since the RDM name
 * of tcp;ofi_rxm is a plain sockaddr, any rank that knows host:port can send to it.
 * ofi_provider (default "tcp;ofi_rxm"; MNNVL_OFI_PROVIDER through the config): the
 * libfabric provider; any that offers RDM endpoints with tagged messages and needs no memory
 * registration for host buffers ("tcp;ofi_rxm", "tcp", "sockets", "net" in 1.17).
 *
 * Endpoints belong to the process, shared by its communicators (messages name their
 * communicator by token, star.h): one bound to each root address this process is rank 0 at,
 * and one per provider and local address for the communicators it is a member of. They
 * stay open until the process exits. A root endpoint because rxm reports the first send
 * into a connection whose peer endpoint has closed as sent: a HELLO for the next
 * communicator that reached the previous one's endpoint just before it closed would be
 * lost, where an open one keeps it in its lobby until the next communicator takes it. A
 * member endpoint because opening one and connecting it again costs 50-150 ms per
 * communicator (100 communicators in a row: 18 s, against 0.9 s on a kept endpoint whose
 * connection to the root stays up).
 *
 * Messages and endpoints: ofi_ep.c. Progress is manual (tcp;ofi_rxm's data_progress):
 * every wait reads the completion queue.
 *
 * Peer loss: libfabric does not report the death of an RDM endpoint's peer. rxm closes the
 * broken connection (a send caught in between fails with ENOTCONN) and then, on every send,
 * tries to connect again, answering -FI_EAGAIN for as long as nothing accepts. So a rank
 * waiting for a peer sends it a PING every PING_MS, and a send to a peer that already took
 * one of our messages and now stays unsendable for OFI_LOST_AFTER_MS means it is gone:
 * PEER_LOST (an inference from rxm's behaviour, not a report). A PING alone on the endpoint
 * can only stall for want of a connection, so it says so after OFI_GONE_AFTER_MS (ofi_ep.h).
 * The liveness watcher (star.h) pings the same way between collectives: rank 0 each member,
 * a member rank 0, so a killed rank is known in about PING_MS + OFI_GONE_AFTER_MS. Where
 * sends neither fail nor stall (a host that vanished without closing its connections: the
 * kernel buffers them), the wait ends with TIMEOUT.
 */
#include <netdb.h>
#include <poll.h>
#include <rdma/fi_errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostport.h"
#include "ofi_ep.h"
#include "star.h"

#define DEFAULT_PROVIDER "tcp;ofi_rxm"
#define POLL_SLICE_MS 50
#define PING_MS 100

typedef struct ofi_proc {
    pid_t pid;
    pthread_mutex_t lock; /* every use of the endpoints and of the lists below */
    int wake_fd;          /* eventfd: abort() from another thread */
    ofi_ep_t *eps;
    star_registry_t registry;
} ofi_proc_t;

typedef struct ofi_comm {
    star_t star; /* first: star.c hands us &comm->star */
    ofi_proc_t *proc;
    ofi_ep_t *ep;    /* NULL for a communicator of one */
    fi_addr_t *addr; /* by rank; FI_ADDR_UNSPEC: no link */
    uint8_t *linked; /* by rank: a send to it completed */
} ofi_comm_t;

static const star_ops_t ofi_ops;

static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static ofi_proc_t *the_proc;

/* ---------------------------------------------------------------------------------------- */
/* The transport for star.c                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* A complete message: to its communicator, or a HELLO to the lobby of the endpoint it came
 * to. Under the process lock (inside ofi_ep_progress). */
static void route(void *arg, ofi_ep_t *e, star_msg_t *m)
{
    ofi_proc_t *proc = arg;
    if (m->h.dst == 0 && m->h.type == STAR_HELLO) {
        m->from = NULL;
        star_lobby_add(&e->lobby, m);
        return;
    }
    star_t *st = m->h.dst ? star_registry_find(&proc->registry, m->h.dst) : NULL;
    if (st)
        star_deliver(st, m);
    else
        free(m); /* for a communicator that is gone */
}

static void ofi_send_start(star_t *st, star_send_t *s)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    s->op = ofi_op_start(c->ep, &s->h, s->buf, c->addr[s->to], c->linked[s->to]);
    if (!s->op)
        snprintf(s->why, sizeof(s->why), "out of memory");
}

static int ofi_send_test(star_t *st, star_send_t *s)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    int r = s->op ? ofi_op_test(c->ep, s->op, s->why, sizeof(s->why)) : -1;
    if (r > 0)
        c->linked[s->to] = 1;
    return r;
}

static void ofi_send_end(star_t *st, star_send_t *s)
{
    if (s->op)
        ofi_op_end(((ofi_comm_t *)st)->ep, s->op);
}

/* ---------------------------------------------------------------------------------------- */
/* Waiting, links                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void ofi_wait(star_t *st, uint64_t until)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    ofi_proc_t *proc = c->proc;
    ofi_ep_t *e = c->ep;
    if (e && ofi_ep_progress(e))
        return; /* the caller looks at what arrived */
    uint64_t now = star_now_ms();
    if (now >= until)
        return;
    int slice = until - now < POLL_SLICE_MS ? (int)(until - now) : POLL_SLICE_MS;
    struct pollfd pfd[2] = {{.fd = proc->wake_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    struct fid *f = e ? &e->cq->fid : NULL;
    if (e && e->wait_fd >= 0 && fi_trywait(e->fabric, &f, 1) == FI_SUCCESS) {
        pfd[1].fd = e->wait_fd;
    } else if (e) {
        /* No fd, or work the fd does not show (a transfer or a connection in progress,
         * driven only by our reads of the queue): poll again soon, yielding the CPU. */
        pthread_mutex_unlock(&proc->lock);
        sched_yield();
        pthread_mutex_lock(&proc->lock);
        return;
    }
    pthread_mutex_unlock(&proc->lock);
    poll(pfd, 2, slice);
    pthread_mutex_lock(&proc->lock);
    uint64_t drained;
    if (pfd[0].revents & POLLIN)
        (void)!read(proc->wake_fd, &drained, sizeof(drained));
}

static int ofi_poll(star_t *st)
{
    ofi_ep_t *e = ((ofi_comm_t *)st)->ep;
    return e ? ofi_ep_progress(e) : 0;
}

static void ofi_wake(star_t *st)
{
    uint64_t one = 1;
    (void)!write(((ofi_comm_t *)st)->proc->wake_fd, &one, sizeof(one));
}

static const char *ofi_link_broken(star_t *st, int rank)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    return rank == st->bs.rank || c->addr[rank] != FI_ADDR_UNSPEC ? NULL : "no link";
}

static mnnvl_status_t link_to(ofi_comm_t *c, int rank, const void *addr, size_t len)
{
    star_t *st = &c->star;
    if (len == 0 || len > sizeof(c->ep->name))
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "rank %d sent an address of %zu bytes", rank,
                         len);
    fi_addr_t a = FI_ADDR_UNSPEC;
    int rc = fi_av_insert(c->ep->av, addr, 1, &a, 0, NULL);
    if (rc != 1)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "cannot add rank %d's address: %s", rank,
                         fi_strerror(rc < 0 ? -rc : FI_EINVAL));
    c->addr[rank] = a;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t ofi_adopt(star_t *st, star_msg_t *hello)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    st->quiet++; /* a HELLO with a bad address is skipped, not reported */
    mnnvl_status_t s = link_to(c, hello->h.rank, hello->data, hello->len);
    st->quiet--;
    return s;
}

static void ofi_unlink(star_t *st, int rank)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    if (c->addr[rank] != FI_ADDR_UNSPEC)
        fi_av_remove(c->ep->av, &c->addr[rank], 1, 0);
    c->addr[rank] = FI_ADDR_UNSPEC;
}

/* Splits host:port by the base layer's rule (base/hostport.h). */
static mnnvl_status_t split_address(star_t *st, const char *address, char *host, size_t hl,
                                    char *port, size_t pl)
{
    mnnvl_hostport_t hp;
    char why[400] = "a part is too long";
    if (mnnvl_hostport_parse(address, 0, &hp, why, sizeof(why)) != MNNVL_SUCCESS ||
        strlen(hp.host) >= hl || strlen(hp.port) >= pl)
        return star_fail(st, MNNVL_ERR_INVALID_ARGUMENT,
                         "root '%s' is not host:port (%s); set the config key root (MNNVL_ROOT)",
                         address, why);
    snprintf(host, hl, "%s", hp.host);
    snprintf(port, pl, "%s", hp.port);
    return MNNVL_SUCCESS;
}

static mnnvl_status_t ofi_connect_root(star_t *st, uint64_t deadline)
{
    (void)deadline; /* inserting an address does not block: rxm connects on the first send */
    ofi_comm_t *c = (ofi_comm_t *)st;
    char host[256], port[16];
    mnnvl_status_t s = split_address(st, st->root, host, sizeof(host), port, sizeof(port));
    if (s != MNNVL_SUCCESS)
        return s;
    struct fi_info *hints = ofi_hints(c->ep->provider), *info = NULL;
    int rc = hints ? fi_getinfo(OFI_API, host, port, 0, hints, &info) : -FI_ENOMEM;
    fi_freeinfo(hints);
    if (rc != 0 || !info->dest_addr) {
        if (info)
            fi_freeinfo(info);
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "provider %s cannot address root %s: %s",
                         c->ep->provider, st->root, fi_strerror(rc ? -rc : FI_EADDRNOTAVAIL));
    }
    s = link_to(c, 0, info->dest_addr, info->dest_addrlen);
    fi_freeinfo(info);
    return s;
}

static mnnvl_status_t ofi_address(star_t *st, void *buf, size_t *len)
{
    ofi_ep_t *e = ((ofi_comm_t *)st)->ep;
    if (e->name_len > *len)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "the endpoint name has %zu bytes, more than %zu",
                         e->name_len, *len);
    memcpy(buf, e->name, e->name_len);
    *len = e->name_len;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t ofi_link_address(star_t *st, int rank, const void *addr, size_t len)
{
    return link_to((ofi_comm_t *)st, rank, addr, len);
}

/* ---------------------------------------------------------------------------------------- */
/* Endpoints                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* The local address a connection to host:port leaves from (no packet is sent). */
static int local_address_to(const char *host, const char *port, char *out, size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int ok =
        fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST) == 0;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return ok ? 0 : -1;
}

/* The endpoint this communicator uses: bound to the root for rank 0, else the process's
 * member endpoint on the local address that reaches the root. Under the process lock. */
static mnnvl_status_t attach_ep(ofi_comm_t *c, const char *provider, uint64_t deadline)
{
    star_t *st = &c->star;
    ofi_proc_t *proc = c->proc;
    char host[256], port[16], local[128];
    mnnvl_status_t s = split_address(st, st->root, host, sizeof(host), port, sizeof(port));
    if (s != MNNVL_SUCCESS)
        return s;
    int root = st->bs.rank == 0;
    if (!root && local_address_to(host, port, local, sizeof(local)) != 0)
        return star_fail(st, MNNVL_ERR_BOOTSTRAP, "no local address reaches root %s", st->root);
    const char *key = root ? st->root : local;
    for (ofi_ep_t *e = proc->eps; e; e = e->next) {
        if (e->root == root && strcmp(e->bound, key) == 0 && strcmp(e->provider, provider) == 0) {
            c->ep = e;
            return MNNVL_SUCCESS;
        }
    }
    char why[400];
    int rc = 0;
    ofi_ep_t *e;
    /* A root port may still be held by an earlier process (-FI_EADDRINUSE): retry. */
    while (!(e = ofi_ep_open(provider, root ? host : local, root ? port : "0", route, proc, &rc,
                             why, sizeof(why)))) {
        if (rc == -FI_ENODATA)
            return star_fail(st, MNNVL_ERR_UNSUPPORTED,
                             "libfabric offers no provider \"%s\" with RDM endpoints and tagged "
                             "messages for %s (%s); choose one with the config key ofi_provider or "
                             "MNNVL_OFI_PROVIDER (default %s)",
                             provider, root ? st->root : local, why, DEFAULT_PROVIDER);
        if (!root || rc != -FI_EADDRINUSE || star_now_ms() >= deadline)
            return star_fail(st, MNNVL_ERR_BOOTSTRAP, "cannot open an endpoint%s%s: %s",
                             root ? " at root " : "", root ? st->root : "", why);
        pthread_mutex_unlock(&proc->lock);
        star_pause_ms(STAR_RETRY_PAUSE_MS);
        pthread_mutex_lock(&proc->lock);
    }
    snprintf(e->bound, sizeof(e->bound), "%s", key);
    e->root = root;
    e->next = proc->eps;
    proc->eps = e;
    c->ep = e;
    return MNNVL_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* The process's state, communicators                                                       */
/* ---------------------------------------------------------------------------------------- */

static void proc_free(ofi_proc_t *proc)
{
    while (proc->eps) {
        ofi_ep_t *e = proc->eps;
        proc->eps = e->next;
        ofi_ep_close(e);
    }
    if (proc->wake_fd >= 0)
        close(proc->wake_fd);
    star_registry_free(&proc->registry);
    pthread_mutex_destroy(&proc->lock);
    free(proc);
}

/* The process's state, made on first use and kept until exit with its endpoints (see the
 * top of the file). One inherited through fork() belongs to the parent: it is left alone. */
static ofi_proc_t *proc_attach(void)
{
    pthread_mutex_lock(&proc_lock);
    if (the_proc && the_proc->pid != getpid())
        the_proc = NULL;
    if (!the_proc) {
        ofi_proc_t *proc = calloc(1, sizeof(*proc));
        if (proc) {
            proc->pid = getpid();
            pthread_mutex_init(&proc->lock, NULL);
            proc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (proc->wake_fd < 0) {
                proc_free(proc);
                proc = NULL;
            }
        }
        the_proc = proc;
    }
    ofi_proc_t *proc = the_proc;
    pthread_mutex_unlock(&proc_lock);
    return proc;
}

/* A registered communicator on proc; `locked`: the caller holds the process lock. */
static ofi_comm_t *comm_new(ofi_proc_t *proc, int rank, int size, int timeout_ms,
                            void (*set_error)(mnnvl_status_t, const char *), int locked)
{
    ofi_comm_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->proc = proc;
    c->addr = malloc(sizeof(*c->addr) * (size_t)size);
    c->linked = calloc((size_t)size, 1);
    if (!c->addr || !c->linked ||
        star_init(&c->star, &ofi_ops, &proc->lock, rank, size, timeout_ms, set_error) !=
            MNNVL_SUCCESS)
        goto fail;
    for (int r = 0; r < size; r++)
        c->addr[r] = FI_ADDR_UNSPEC;
    if (star_register(&c->star, &proc->registry, locked) == 0)
        return c;
fail:
    star_release(&c->star);
    free(c->addr);
    free(c->linked);
    free(c);
    return NULL;
}

/* Called with the lock held: the child shares the parent's endpoint. */
static star_t *ofi_child_new(star_t *parent, int rank, int size)
{
    ofi_comm_t *pc = (ofi_comm_t *)parent;
    ofi_comm_t *c = comm_new(pc->proc, rank, size, parent->timeout_ms, parent->set_error, 1);
    if (!c)
        return NULL;
    c->ep = size > 1 ? pc->ep : NULL;
    return &c->star;
}

static void ofi_free(star_t *st)
{
    ofi_comm_t *c = (ofi_comm_t *)st;
    ofi_proc_t *proc = c->proc;
    /* The links stay in the endpoint's address vector: later communicators of the same
     * processes reuse the entry and rxm's connection behind it. */
    pthread_mutex_lock(&proc->lock);
    star_registry_remove(&proc->registry, st);
    pthread_mutex_unlock(&proc->lock);
    star_release(st);
    free(c->addr);
    free(c->linked);
    free(c);
}

static const star_ops_t ofi_ops = {
    .name = "ofi",
    .send_start = ofi_send_start,
    .send_test = ofi_send_test,
    .send_end = ofi_send_end,
    .wait = ofi_wait,
    .poll = ofi_poll,
    .wake = ofi_wake,
    .link_broken = ofi_link_broken,
    .adopt = ofi_adopt,
    .connect_root = ofi_connect_root,
    .unlink = ofi_unlink,
    .address = ofi_address,
    .link_address = ofi_link_address,
    .child_new = ofi_child_new,
    .free = ofi_free,
    .ping_ms = PING_MS,
};

/* ofi_provider from the config (which applies MNNVL_OFI_PROVIDER), else tcp;ofi_rxm. */
static const char *provider_of(const mnnvl_bootstrap_args_t *args)
{
    const char *p = args->config_get(args->config, "ofi_provider");
    return p && p[0] ? p : DEFAULT_PROVIDER;
}

static mnnvl_status_t ofi_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    star_t like;
    mnnvl_status_t s = star_begin(&like, &ofi_ops, args, out);
    const char *provider = provider_of(args);
    if (s == MNNVL_SUCCESS && strlen(provider) >= sizeof(((ofi_ep_t *)0)->provider))
        s = star_fail(&like, MNNVL_ERR_INVALID_ARGUMENT, "ofi_provider '%.40s...' is too long",
                      provider);
    if (s != MNNVL_SUCCESS)
        return s;
    ofi_proc_t *proc = proc_attach();
    ofi_comm_t *c =
        proc ? comm_new(proc, args->rank, args->size, args->timeout_ms, args->set_error, 0) : NULL;
    if (!c)
        return star_fail(&like, MNNVL_ERR_NO_MEMORY, "out of memory");
    star_t *st = &c->star;
    star_take_like(st, &like);
    uint64_t deadline = star_now_ms() + (uint64_t)args->timeout_ms;
    if (args->size > 1) {
        pthread_mutex_lock(&proc->lock);
        s = attach_ep(c, provider, deadline);
        pthread_mutex_unlock(&proc->lock);
    }
    return star_finish(st, s, c->ep ? &c->ep->lobby : NULL, args, deadline, out);
}

STAR_PLUGIN("ofi", ofi_create);
