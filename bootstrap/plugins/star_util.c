/* The small pieces that the star protocol and its transports share: time, error sentences,
 * payload buffers, communicator tokens, the registry and the lobby (see star.h). */
#include "star.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* Time, errors, buffers                                                                    */
/* ---------------------------------------------------------------------------------------- */

uint64_t star_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void star_pause_ms(int ms)
{
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Plugins cannot call libmnnvl, so they name the statuses they report themselves. */
const char *star_status_name(int s)
{
    switch (s) {
    case MNNVL_ERR_TIMEOUT: return "TIMEOUT";
    case MNNVL_ERR_PEER_LOST: return "PEER_LOST";
    case MNNVL_ERR_ABORTED: return "ABORTED";
    case MNNVL_ERR_MISMATCH: return "MISMATCH";
    case MNNVL_ERR_NO_MEMORY: return "NO_MEMORY";
    case MNNVL_ERR_AUTH: return "AUTH";
    default: return "BOOTSTRAP";
    }
}

mnnvl_status_t star_fail(star_t *st, mnnvl_status_t s, const char *fmt, ...)
{
    if (st->quiet)
        return s;
    char sentence[600];
    int n =
        snprintf(sentence, sizeof(sentence), "%s bootstrap: rank %d: ", st->ops->name, st->bs.rank);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sentence + n, sizeof(sentence) - (size_t)n, fmt, ap);
    va_end(ap);
    st->set_error(s, sentence);
    return s;
}

star_buf_t *star_buf_copy(const void *data, size_t len)
{
    if (!len)
        return NULL;
    star_buf_t *b = malloc(sizeof(*b) + len);
    if (b) {
        b->refs = 1;
        b->len = len;
        memcpy(b->data, data, len);
    }
    return b;
}

star_buf_t *star_buf_ref(star_buf_t *b)
{
    if (b)
        b->refs++;
    return b;
}

void star_buf_unref(star_buf_t *b)
{
    if (b && --b->refs == 0)
        free(b);
}

/* ---------------------------------------------------------------------------------------- */
/* Tokens, registry, lobby                                                                  */
/* ---------------------------------------------------------------------------------------- */

uint64_t star_new_token(void)
{
    static atomic_uint_fast64_t next = 1;
    return atomic_fetch_add(&next, 1);
}

int star_registry_add(star_registry_t *r, star_t *st)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 8;
        star_t **v = realloc(r->v, sizeof(*v) * (size_t)cap);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = st;
    return 0;
}

void star_registry_remove(star_registry_t *r, const star_t *st)
{
    for (int i = 0; i < r->n; i++) {
        if (r->v[i] == st) {
            r->v[i] = r->v[--r->n];
            return;
        }
    }
}

star_t *star_registry_find(const star_registry_t *r, uint64_t token)
{
    for (int i = 0; i < r->n; i++)
        if (r->v[i]->token == token)
            return r->v[i];
    return NULL;
}

void star_registry_free(star_registry_t *r)
{
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

void star_lobby_add(star_lobby_t *l, star_msg_t *m)
{
    star_msg_t **pp = &l->head;
    while (*pp)
        pp = &(*pp)->next;
    m->next = NULL;
    *pp = m;
}

star_msg_t *star_lobby_take(star_lobby_t *l, uint64_t comm_id)
{
    for (star_msg_t **pp = &l->head; *pp; pp = &(*pp)->next) {
        star_msg_t *m = *pp;
        if (m->h.type == STAR_HELLO && m->h.seq == comm_id) {
            *pp = m->next;
            return m;
        }
    }
    return NULL;
}

void star_lobby_drop_from(star_lobby_t *l, const void *from)
{
    for (star_msg_t **pp = &l->head; *pp;) {
        star_msg_t *m = *pp;
        if (m->from == from) {
            *pp = m->next;
            free(m);
        } else {
            pp = &m->next;
        }
    }
}

void star_lobby_clear(star_lobby_t *l)
{
    while (l->head) {
        star_msg_t *m = l->head;
        l->head = m->next;
        free(m);
    }
}
