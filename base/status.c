/* The one table of status names. The switch has no default, so a status added to mnnvl.h
 * without a name here fails the build (-Wswitch, an error in CI); the bindings' copies are
 * checked against this table by tests/unit/test_status_tables.sh. */
#include <string.h>

#include "status.h"

MNNVL_API const char *mnnvl_status_string(mnnvl_status_t status)
{
    switch (status) {
    case MNNVL_SUCCESS: return "MNNVL_SUCCESS";
    case MNNVL_ERR_INVALID_ARGUMENT: return "MNNVL_ERR_INVALID_ARGUMENT";
    case MNNVL_ERR_INVALID_USAGE: return "MNNVL_ERR_INVALID_USAGE";
    case MNNVL_ERR_NO_MEMORY: return "MNNVL_ERR_NO_MEMORY";
    case MNNVL_ERR_CUDA: return "MNNVL_ERR_CUDA";
    case MNNVL_ERR_NO_DEVICE: return "MNNVL_ERR_NO_DEVICE";
    case MNNVL_ERR_UNSUPPORTED: return "MNNVL_ERR_UNSUPPORTED";
    case MNNVL_ERR_BOOTSTRAP: return "MNNVL_ERR_BOOTSTRAP";
    case MNNVL_ERR_TIMEOUT: return "MNNVL_ERR_TIMEOUT";
    case MNNVL_ERR_PEER_LOST: return "MNNVL_ERR_PEER_LOST";
    case MNNVL_ERR_GRAPH_CAPTURE: return "MNNVL_ERR_GRAPH_CAPTURE";
    case MNNVL_ERR_ABORTED: return "MNNVL_ERR_ABORTED";
    case MNNVL_ERR_MISMATCH: return "MNNVL_ERR_MISMATCH";
    case MNNVL_ERR_AUTH: return "MNNVL_ERR_AUTH";
    case MNNVL_ERR_INTERNAL: return "MNNVL_ERR_INTERNAL";
    }
    return "MNNVL_ERR_UNKNOWN";
}

const char *mnnvl_status_name(mnnvl_status_t status)
{
    const char *name = mnnvl_status_string(status);
    if (strncmp(name, "MNNVL_ERR_", 10) == 0)
        return name + 10;
    return name + 6; /* "MNNVL_SUCCESS" */
}
