/* The operation-handle cache (see handle_cache.h): a short list under a lock, since a
 * communicator holds a handful of operations. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "handle_cache.h"

struct mnnvl_cached_op {
    struct mnnvl_cached_op *next;
    int kind;
    size_t key_len;
    void *handle;
    unsigned char key[];
};

void mnnvl_handle_cache_init(mnnvl_handle_cache_t *cache)
{
    pthread_mutex_init(&cache->lock, NULL);
    cache->head = NULL;
}

void mnnvl_handle_cache_fini(mnnvl_handle_cache_t *cache)
{
    while (cache->head) {
        struct mnnvl_cached_op *gone = cache->head;
        cache->head = gone->next;
        free(gone);
    }
    pthread_mutex_destroy(&cache->lock);
}

void *mnnvl_handle_cache_find(mnnvl_handle_cache_t *cache, int kind, const void *key,
                              size_t key_len, void (*retain)(void *handle))
{
    void *found = NULL;
    pthread_mutex_lock(&cache->lock);
    for (struct mnnvl_cached_op *op = cache->head; op && !found; op = op->next) {
        if (op->kind == kind && op->key_len == key_len && memcmp(op->key, key, key_len) == 0) {
            found = op->handle;
            retain(found);
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

mnnvl_status_t mnnvl_handle_cache_add(mnnvl_handle_cache_t *cache, int kind, const void *key,
                                      size_t key_len, void *handle)
{
    struct mnnvl_cached_op *op = malloc(sizeof(*op) + key_len);
    if (!op)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "out of memory caching an operation handle");
    op->kind = kind;
    op->key_len = key_len;
    op->handle = handle;
    memcpy(op->key, key, key_len);
    pthread_mutex_lock(&cache->lock);
    op->next = cache->head;
    cache->head = op;
    pthread_mutex_unlock(&cache->lock);
    return MNNVL_SUCCESS;
}

void mnnvl_handle_cache_remove(mnnvl_handle_cache_t *cache, void *handle)
{
    pthread_mutex_lock(&cache->lock);
    for (struct mnnvl_cached_op **at = &cache->head; *at; at = &(*at)->next) {
        if ((*at)->handle == handle) {
            struct mnnvl_cached_op *gone = *at;
            *at = gone->next;
            free(gone);
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
}
