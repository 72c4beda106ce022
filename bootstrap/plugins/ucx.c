/* The ucx bootstrap plugin: being written (issue 5). Until then it reports UNSUPPORTED. */
#include "bootstrap/bootstrap.h"

__attribute__((visibility("default"))) mnnvl_status_t
mnnvl_bootstrap_plugin_create(const mnnvl_bootstrap_args_t *args, mnnvl_bootstrap_t **out)
{
    *out = 0;
    args->set_error(MNNVL_ERR_UNSUPPORTED, "ucx bootstrap: not implemented yet");
    return MNNVL_ERR_UNSUPPORTED;
}
