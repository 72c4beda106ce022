/* mnnvl_comm_shrink: the communicator of the survivors after a rank died (ncclCommShrink's
 * role). Nothing here talks to the parent's ranks as a whole: the excluded ranks may be
 * dead, and the parent's bootstrap may already have failed with PEER_LOST. The child is
 * built from the member list alone (bootstrap.h's child operation), and the members then
 * compare their exclude lists over the child, so that survivors who disagree get MISMATCH
 * before the device setup, instead of a communicator that some of them do not share. */
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "error.h"

/* Every shrink of one parent uses this tag: a parent has at most one shrink child per call,
 * and all survivors' calls line up, so the backends' child numbers tell shrinks apart. */
#define SHRINK_TAG UINT64_MAX

/* The parent ranks that stay, in parent order, and this rank's place among them. */
static mnnvl_status_t shrink_members(mnnvl_comm_t comm, const int *exclude, int n_exclude,
                                     unsigned char *excluded, int *members, int *count, int *index)
{
    for (int i = 0; i < n_exclude; i++) {
        int r = exclude[i];
        if (r < 0 || r >= comm->size)
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                               "comm_shrink: exclude_ranks[%d] is %d, not a rank of the "
                               "communicator's %d",
                               i, r, comm->size);
        if (excluded[r])
            return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                               "comm_shrink: rank %d is listed twice in exclude_ranks", r);
        if (r == comm->rank)
            return mnnvl_error(MNNVL_ERR_INVALID_USAGE,
                               "comm_shrink: rank %d excludes itself; an excluded rank does "
                               "not call comm_shrink",
                               r);
        excluded[r] = 1;
    }
    *count = 0;
    for (int r = 0; r < comm->size; r++) {
        if (excluded[r])
            continue;
        if (r == comm->rank)
            *index = *count;
        members[(*count)++] = r;
    }
    return MNNVL_SUCCESS;
}

typedef struct shrink_view {
    const int *members;
    const unsigned char *excluded; /* by parent rank */
    int parent_size;
} shrink_view_t;

/* Each member's view of who was excluded, as a bitmap over the parent ranks; the first
 * member whose view differs from this rank's is named. One round on the child. */
static mnnvl_status_t compare_views(mnnvl_bootstrap_t *bs, void *arg)
{
    const shrink_view_t *v = arg;
    const int *members = v->members;
    const unsigned char *excluded = v->excluded;
    int parent_size = v->parent_size;
    size_t bytes = ((size_t)parent_size + 7) / 8;
    unsigned char *mine = calloc(1, bytes);
    unsigned char *all = calloc((size_t)bs->size, bytes);
    if (!mine || !all) {
        free(mine);
        free(all);
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_shrink: out of memory");
    }
    for (int r = 0; r < parent_size; r++)
        if (excluded[r])
            mine[r / 8] |= (unsigned char)(1u << (r % 8));
    mnnvl_status_t st = bs->ops->allgather(bs, mine, all, bytes);
    for (int c = 0; st == MNNVL_SUCCESS && c < bs->size; c++) {
        const unsigned char *theirs = all + (size_t)c * bytes;
        if (memcmp(theirs, mine, bytes) == 0)
            continue;
        int differ = 0;
        while (differ < parent_size &&
               ((theirs[differ / 8] ^ mine[differ / 8]) & (1u << (differ % 8))) == 0)
            differ++;
        int they = (theirs[differ / 8] >> (differ % 8)) & 1;
        st = mnnvl_error(MNNVL_ERR_MISMATCH,
                         "comm_shrink: the survivors passed different exclude lists: parent "
                         "rank %d %s rank %d, parent rank %d %s",
                         members[c], they ? "excluded" : "kept", differ, members[bs->rank],
                         they ? "kept it" : "excluded it");
    }
    free(mine);
    free(all);
    return st;
}

MNNVL_API mnnvl_status_t mnnvl_comm_shrink(mnnvl_comm_t comm, const int *exclude_ranks,
                                           int n_exclude, mnnvl_comm_t *out)
{
    if (!comm || !out)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "comm_shrink: comm or out is NULL");
    *out = NULL;
    if (n_exclude < 0 || n_exclude >= comm->size || (n_exclude > 0 && !exclude_ranks))
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "comm_shrink: n_exclude %d must be in [0, size %d) with "
                           "exclude_ranks not NULL when it is positive",
                           n_exclude, comm->size);
    unsigned char *excluded = calloc((size_t)comm->size, 1);
    int *members = calloc((size_t)comm->size, sizeof(int));
    if (!excluded || !members) {
        free(excluded);
        free(members);
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "comm_shrink: out of memory");
    }
    int count = 0, index = 0;
    mnnvl_status_t st =
        shrink_members(comm, exclude_ranks, n_exclude, excluded, members, &count, &index);
    mnnvl_comm_t child = NULL;
    if (st == MNNVL_SUCCESS) {
        mnnvl_bootstrap_child_t spec = {
            .members = members, .size = count, .rank = index, .tag = SHRINK_TAG};
        shrink_view_t view = {.members = members, .excluded = excluded, .parent_size = comm->size};
        st = mnnvl_comm_child(comm, &spec, compare_views, &view, &child);
    }
    free(excluded);
    free(members);
    *out = child;
    return st;
}
