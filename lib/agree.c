/* Agreement over a bootstrap (see agree.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "error.h"

/* The fixed head of each rank's record; its payload follows. */
typedef struct verdict {
    int32_t status;
    char sentence[252];
} verdict_t;

mnnvl_status_t mnnvl_agree_gather(mnnvl_bootstrap_t *bs, mnnvl_status_t local, const void *mine,
                                  void *all, size_t bytes, const char *what)
{
    const size_t record = sizeof(verdict_t) + bytes;
    unsigned char *send = calloc(1, record);
    unsigned char *recv = calloc((size_t)bs->size, record);
    if (!send || !recv) {
        free(send);
        free(recv);
        return local != MNNVL_SUCCESS
                   ? local
                   : mnnvl_error(MNNVL_ERR_NO_MEMORY, "%s: out of memory agreeing on the outcome",
                                 what);
    }
    verdict_t head = {.status = local};
    if (local != MNNVL_SUCCESS)
        snprintf(head.sentence, sizeof(head.sentence), "%s", mnnvl_last_error());
    memcpy(send, &head, sizeof(head));
    if (bytes > 0 && mine)
        memcpy(send + sizeof(head), mine, bytes);
    mnnvl_status_t st = bs->ops->allgather(bs, send, recv, record);
    if (st == MNNVL_SUCCESS && local == MNNVL_SUCCESS) {
        for (int r = 0; r < bs->size; r++) {
            verdict_t v;
            memcpy(&v, recv + (size_t)r * record, sizeof(v));
            if (v.status == MNNVL_SUCCESS)
                continue;
            v.sentence[sizeof(v.sentence) - 1] = 0;
            st = v.status;
            mnnvl_error(st, "%s: rank %d failed (%s): %s", what, r, mnnvl_status_string(st),
                        v.sentence);
            break;
        }
    }
    if (st == MNNVL_SUCCESS && local == MNNVL_SUCCESS && all && bytes > 0)
        for (int r = 0; r < bs->size; r++)
            memcpy((unsigned char *)all + (size_t)r * bytes,
                   recv + (size_t)r * record + sizeof(verdict_t), bytes);
    free(send);
    free(recv);
    return local != MNNVL_SUCCESS ? local : st;
}

mnnvl_status_t mnnvl_agree(mnnvl_bootstrap_t *bs, mnnvl_status_t local, const char *what)
{
    return mnnvl_agree_gather(bs, local, NULL, NULL, 0, what);
}
