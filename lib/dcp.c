/* DCP all-to-all handles (placeholder of the API commit: the implementation follows in the
 * next commits; until then every entry point fails with UNSUPPORTED and says so). */
#include "error.h"

static mnnvl_status_t not_yet(const char *what)
{
    return mnnvl_error(MNNVL_ERR_UNSUPPORTED, "%s: not implemented yet in this build", what);
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_create(mnnvl_comm_t comm,
                                              const mnnvl_dcp_a2a_params_t *params,
                                              mnnvl_dcp_a2a_t *dcp)
{
    if (dcp)
        *dcp = NULL;
    return not_yet("dcp_a2a_create");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                       const void *stats, int entries, void *out_o,
                                       void *out_stats, void *stream)
{
    return not_yet("dcp_a2a");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_lse_reduce(mnnvl_dcp_a2a_t dcp, const void *partial_o,
                                                  const void *stats, int entries, void *out,
                                                  void *out_lse, void *stream)
{
    return not_yet("dcp_a2a_lse_reduce");
}

MNNVL_API mnnvl_status_t mnnvl_dcp_a2a_destroy(mnnvl_dcp_a2a_t dcp)
{
    return dcp ? not_yet("dcp_a2a_destroy") : MNNVL_SUCCESS;
}
