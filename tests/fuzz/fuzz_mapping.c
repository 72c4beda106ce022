/* libFuzzer harness for lib/mapping.c: the input is a mapping's fields (any struct_size)
 * and a group. A mapping that validates must give groups whose ranks lie in
 * [0, world_size), ascend, and contain this rank at the index reported. */
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    mnnvl_mapping_t m;
    if (size < sizeof(m) + 1)
        return 0;
    memcpy(&m, data, sizeof(m));
    mnnvl_group_t group = (mnnvl_group_t)(data[sizeof(m)] % 8);
    if (mnnvl_mapping_validate(&m) != MNNVL_SUCCESS)
        return 0;
    /* Keep the allocation bounded: large valid worlds are legal but slow to enumerate. */
    if (m.world_size > (1 << 16))
        return 0;
    int *ranks = malloc((size_t)m.world_size * sizeof(int));
    int count = -1, index = -1;
    mnnvl_status_t st = mnnvl_mapping_group(&m, group, ranks, m.world_size, &count, &index);
    if (st == MNNVL_SUCCESS) {
        if (count < 1 || count > m.world_size || index < 0 || index >= count ||
            ranks[index] != m.rank)
            abort();
        for (int i = 0; i < count; i++)
            if (ranks[i] < 0 || ranks[i] >= m.world_size || (i && ranks[i] <= ranks[i - 1]))
                abort();
    } else if (group <= MNNVL_GROUP_MOE_EP) {
        abort(); /* a valid mapping and group must give the group */
    }
    free(ranks);
    return 0;
}
