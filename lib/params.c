/* The one copy rule of extensible structs (see params.h). */
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "params.h"

mnnvl_status_t mnnvl_params_copy(void *own, size_t own_size, size_t first_size, const void *caller,
                                 const char *what, const char *init_name)
{
    if (!caller)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: params is NULL", what);
    uint32_t size;
    memcpy(&size, caller, sizeof(size));
    if (size > own_size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: struct_size %u is larger than the %zu bytes this library "
                           "knows; the program was built against a newer lib/mnnvl.h than "
                           "the libmnnvl it runs with (%s)",
                           what, size, own_size, mnnvl_version_string());
    if (size < first_size)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "%s: struct_size %u is smaller than the first version's %zu bytes; "
                           "fill the struct with %s() first",
                           what, size, first_size, init_name);
    memcpy(own, caller, size);
    ((uint32_t *)own)[0] = (uint32_t)own_size;
    return MNNVL_SUCCESS;
}
