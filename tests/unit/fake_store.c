/* The fake TCPStore of fake_store.h. Integers on the wire are native-endian u64, strings
 * and values a u64 length then the bytes, as in torch's TCPStore. */
#include "fake_store.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/tcpstore_wire.h"
#include "service.h"

#define MAX_CLIENTS 64
#define MAX_FIELD ((uint64_t)64 << 20)

struct entry {
    struct entry *next;
    char *key;
    uint8_t *value;
    size_t len;
};

/* What a test asked for, copied into the store's process by the fork. */
struct spec {
    fake_fault_t fault;
    char suffix[128];
    char other[128];
    size_t len;
};

struct server {
    int listen_fd;
    char address[64];
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct entry *entries;
    struct entry *history; /* the last value ever SET under each key */
    int stopping;
    int fds[MAX_CLIENTS];
    pthread_t threads[MAX_CLIENTS];
    int nclients;
    fake_fault_t fault;
    char suffix[128];
    char other[128];
    size_t fault_len;
    int faults;
    int garbled_once;
};

struct client {
    struct server *s;
    int fd;
};

static int recv_all(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, (const uint8_t *)buf + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        sent += (size_t)n;
    }
    return 0;
}

static int recv_u64(int fd, uint64_t *v)
{
    return recv_all(fd, v, sizeof(*v));
}

/* A length-prefixed field, NUL-terminated for use as a key. */
static uint8_t *recv_field(int fd, size_t *len)
{
    uint64_t n;
    if (recv_u64(fd, &n) != 0 || n > MAX_FIELD)
        return NULL;
    uint8_t *p = malloc((size_t)n + 1);
    if (!p || recv_all(fd, p, (size_t)n) != 0) {
        free(p);
        return NULL;
    }
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

static int send_field(int fd, const void *p, size_t len)
{
    uint64_t n = len;
    return send_all(fd, &n, sizeof(n)) || send_all(fd, p, len) ? -1 : 0;
}

/* Under the lock. */
static struct entry *find_in(struct entry *list, const char *key)
{
    for (struct entry *e = list; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static struct entry *find(struct server *s, const char *key)
{
    return find_in(s->entries, key);
}

/* Under the lock: the entry of `key` in *list, added without a value when there is none. */
static struct entry *find_or_add(struct entry **list, const char *key)
{
    struct entry *e = find_in(*list, key);
    if (!e) {
        e = calloc(1, sizeof(*e));
        e->key = strdup(key);
        e->next = *list;
        *list = e;
    }
    return e;
}

/* Under the lock: records a copy of the value in the history. */
static void remember(struct server *s, const char *key, const uint8_t *value, size_t len)
{
    struct entry *e = find_or_add(&s->history, key);
    free(e->value);
    e->value = malloc(len + 1);
    memcpy(e->value, value, len);
    e->len = len;
}

/* Under the lock; takes value. */
static void put(struct server *s, const char *key, uint8_t *value, size_t len)
{
    remember(s, key, value, len);
    struct entry *e = find_or_add(&s->entries, key);
    free(e->value);
    e->value = value;
    e->len = len;
    pthread_cond_broadcast(&s->changed);
}

static int ends_with(const char *key, const char *suffix)
{
    size_t k = strlen(key), n = strlen(suffix);
    return n && k >= n && strcmp(key + k - n, suffix) == 0;
}

/* The key read instead of `key` under FAKE_SWAP / FAKE_REPLAY, in buf; NULL when none. */
static const char *moved_key(const struct server *s, const char *key, char *buf, size_t len)
{
    const char *from = NULL, *to = NULL;
    if ((s->fault == FAKE_SWAP || s->fault == FAKE_REPLAY) && ends_with(key, s->suffix)) {
        from = s->suffix;
        to = s->other;
    } else if (s->fault == FAKE_SWAP && ends_with(key, s->other)) {
        from = s->other;
        to = s->suffix;
    }
    if (!from)
        return NULL;
    snprintf(buf, len, "%.*s%s", (int)(strlen(key) - strlen(from)), key, to);
    return buf;
}

/* Waits for the key and sends its value, through the planted fault. */
static int reply_get(struct server *s, int fd, const char *key)
{
    pthread_mutex_lock(&s->lock);
    struct entry *e;
    while (!(e = find(s, key)) && !s->stopping)
        pthread_cond_wait(&s->changed, &s->lock);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    char other[1200];
    const char *moved = moved_key(s, key, other, sizeof(other));
    struct entry *instead = moved ? find_in(s->history, moved) : NULL;
    if (instead) {
        e = instead;
        s->faults++;
    }
    size_t len = e->len;
    uint8_t *v = malloc(len + 1);
    memcpy(v, e->value, len);
    if (s->fault == FAKE_FLIP_BYTE && ends_with(key, s->suffix) && s->fault_len < len) {
        v[s->fault_len] ^= 1;
        s->faults++;
    } else if (s->fault == FAKE_VALUE_LENGTH && ends_with(key, s->suffix)) {
        uint8_t *w = calloc(1, s->fault_len + 1);
        memcpy(w, v, len < s->fault_len ? len : s->fault_len);
        free(v);
        v = w;
        len = s->fault_len;
        s->faults++;
    } else if (s->fault == FAKE_FIRST_READ_GARBLED && ends_with(key, s->suffix) &&
               !s->garbled_once) {
        s->garbled_once = 1;
        s->faults++;
        free(v);
        v = (uint8_t *)strdup("garbage");
        len = strlen("garbage");
    }
    pthread_mutex_unlock(&s->lock);
    int rc = send_field(fd, v, len);
    free(v);
    return rc;
}

/* One command; -1 ends the connection. */
static int serve_one(struct server *s, int fd)
{
    uint8_t cmd;
    if (recv_all(fd, &cmd, 1) != 0)
        return -1;
    size_t klen = 0, vlen = 0, elen = 0;
    uint8_t *key = NULL, *value = NULL, *expected = NULL;
    int rc = 0;
    switch (cmd) {
    case MNNVL_TCPSTORE_VALIDATE: {
        uint32_t magic;
        return recv_all(fd, &magic, sizeof(magic));
    }
    case MNNVL_TCPSTORE_PING: {
        uint32_t nonce;
        return recv_all(fd, &nonce, sizeof(nonce)) || send_all(fd, &nonce, sizeof(nonce)) ? -1 : 0;
    }
    case MNNVL_TCPSTORE_SET:
        key = recv_field(fd, &klen);
        value = key ? recv_field(fd, &vlen) : NULL;
        if (!value) {
            free(key);
            return -1;
        }
        pthread_mutex_lock(&s->lock);
        put(s, (char *)key, value, vlen);
        pthread_mutex_unlock(&s->lock);
        free(key);
        return 0;
    case MNNVL_TCPSTORE_COMPARE_SET: {
        key = recv_field(fd, &klen);
        expected = key ? recv_field(fd, &elen) : NULL;
        value = expected ? recv_field(fd, &vlen) : NULL;
        if (!value) {
            free(key);
            free(expected);
            return -1;
        }
        pthread_mutex_lock(&s->lock);
        struct entry *e = find(s, (char *)key);
        if ((!e && elen == 0) || (e && e->len == elen && memcmp(e->value, expected, elen) == 0)) {
            uint8_t *copy = malloc(vlen + 1);
            memcpy(copy, value, vlen);
            put(s, (char *)key, copy, vlen);
            e = find(s, (char *)key);
        }
        size_t len = e ? e->len : elen;
        uint8_t *now = malloc(len + 1);
        memcpy(now, e ? e->value : expected, len);
        pthread_mutex_unlock(&s->lock);
        rc = send_field(fd, now, len);
        free(now);
        free(key);
        free(expected);
        free(value);
        return rc;
    }
    case MNNVL_TCPSTORE_GET:
        key = recv_field(fd, &klen);
        rc = key ? reply_get(s, fd, (char *)key) : -1;
        free(key);
        return rc;
    case MNNVL_TCPSTORE_ADD: {
        key = recv_field(fd, &klen);
        uint64_t delta;
        if (!key || recv_u64(fd, &delta) != 0) {
            free(key);
            return -1;
        }
        pthread_mutex_lock(&s->lock);
        struct entry *e = find(s, (char *)key);
        long long v = e ? atoll((char *)e->value) : 0;
        v += (long long)delta;
        char text[32];
        int n = snprintf(text, sizeof(text), "%lld", v);
        uint8_t *copy = malloc((size_t)n + 1);
        memcpy(copy, text, (size_t)n + 1);
        put(s, (char *)key, copy, (size_t)n);
        pthread_mutex_unlock(&s->lock);
        free(key);
        uint64_t out = (uint64_t)v;
        return send_all(fd, &out, sizeof(out));
    }
    case MNNVL_TCPSTORE_WAIT: {
        uint64_t n;
        if (recv_u64(fd, &n) != 0 || n > 1024)
            return -1;
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            key = recv_field(fd, &klen);
            if (!key)
                return -1;
            pthread_mutex_lock(&s->lock);
            while (!find(s, (char *)key) && !s->stopping)
                pthread_cond_wait(&s->changed, &s->lock);
            rc = s->stopping ? -1 : 0;
            pthread_mutex_unlock(&s->lock);
            free(key);
        }
        uint8_t stop = 0; /* STOP_WAITING */
        return rc || send_all(fd, &stop, 1) ? -1 : 0;
    }
    case MNNVL_TCPSTORE_GETNUMKEYS: {
        pthread_mutex_lock(&s->lock);
        uint64_t n = 0;
        for (struct entry *e = s->entries; e; e = e->next)
            n++;
        pthread_mutex_unlock(&s->lock);
        return send_all(fd, &n, sizeof(n));
    }
    case MNNVL_TCPSTORE_DELETE: {
        key = recv_field(fd, &klen);
        if (!key)
            return -1;
        uint64_t deleted = 0;
        pthread_mutex_lock(&s->lock);
        for (struct entry **p = &s->entries; *p; p = &(*p)->next) {
            if (strcmp((*p)->key, (char *)key) == 0) {
                struct entry *e = *p;
                *p = e->next;
                free(e->key);
                free(e->value);
                free(e);
                deleted = 1;
                break;
            }
        }
        pthread_mutex_unlock(&s->lock);
        free(key);
        return send_all(fd, &deleted, sizeof(deleted));
    }
    case MNNVL_TCPSTORE_MULTI_GET: {
        uint64_t n;
        if (recv_u64(fd, &n) != 0 || n > 4096)
            return -1;
        char **keys = calloc((size_t)n + 1, sizeof(*keys));
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            keys[i] = (char *)recv_field(fd, &klen);
            rc = keys[i] ? 0 : -1;
        }
        for (uint64_t i = 0; i < n && rc == 0; i++)
            rc = reply_get(s, fd, keys[i]);
        for (uint64_t i = 0; i < n; i++)
            free(keys[i]);
        free(keys);
        return rc;
    }
    default: return -1; /* an unknown command: the real server resets too */
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    while (serve_one(c->s, c->fd) == 0)
        ;
    shutdown(c->fd, SHUT_RDWR);
    free(c);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&s->lock);
        if (s->stopping || s->nclients == MAX_CLIENTS) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            if (s->stopping)
                return NULL;
            continue;
        }
        struct client *c = malloc(sizeof(*c));
        c->s = s;
        c->fd = fd;
        s->fds[s->nclients] = fd;
        pthread_create(&s->threads[s->nclients], NULL, client_main, c);
        s->nclients++;
        pthread_mutex_unlock(&s->lock);
    }
}

static struct server *server_start(const struct spec *spec)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->fault = spec->fault;
    snprintf(s->suffix, sizeof(s->suffix), "%s", spec->suffix);
    snprintf(s->other, sizeof(s->other), "%s", spec->other);
    s->fault_len = spec->len;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(s->listen_fd, 64) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        free(s);
        return NULL;
    }
    snprintf(s->address, sizeof(s->address), "127.0.0.1:%d", ntohs(a.sin_port));
    pthread_create(&s->acceptor, NULL, acceptor_main, s);
    return s;
}

/* Returns how many replies the fault changed. */
static int server_stop(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    int faults = s->faults;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->changed);
    for (int i = 0; i < s->nclients; i++)
        shutdown(s->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nclients; i++) {
        pthread_join(s->threads[i], NULL);
        close(s->fds[i]);
    }
    close(s->listen_fd);
    struct entry *lists[2] = {s->entries, s->history};
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            struct entry *e = lists[i];
            lists[i] = e->next;
            free(e->key);
            free(e->value);
            free(e);
        }
    }
    free(s);
    return faults;
}

struct fake_store {
    mt_service_t *service;
};

/* The store's process (tests/lib/service.h says why the server is not a thread of the
 * test's process). Its result is the fault count. */
static int store_service(void *arg, mt_service_io_t *io)
{
    struct server *s = server_start(arg);
    if (!s)
        return -1;
    mt_service_ready(io, s->address);
    mt_service_wait(io);
    return server_stop(s);
}

static fake_store_t *start(const struct spec *spec)
{
    fake_store_t *f = calloc(1, sizeof(*f));
    if (f)
        f->service = mt_service_start(store_service, (void *)spec);
    if (f && !f->service) {
        free(f);
        f = NULL;
    }
    return f;
}

fake_store_t *fake_store_start(fake_fault_t fault, const char *suffix, size_t len)
{
    struct spec spec = {.fault = fault, .len = len};
    snprintf(spec.suffix, sizeof(spec.suffix), "%s", suffix ? suffix : "");
    return start(&spec);
}

fake_store_t *fake_store_start_moved(fake_fault_t fault, const char *suffix, const char *other)
{
    struct spec spec = {.fault = fault};
    snprintf(spec.suffix, sizeof(spec.suffix), "%s", suffix ? suffix : "");
    snprintf(spec.other, sizeof(spec.other), "%s", other ? other : "");
    return start(&spec);
}

const char *fake_store_address(const fake_store_t *s)
{
    return mt_service_info(s->service);
}

int fake_store_stop(fake_store_t *s)
{
    if (!s)
        return -1;
    int faults = mt_service_stop(s->service);
    free(s);
    return faults;
}
