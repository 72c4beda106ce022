#include "tcp_fixture.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *external_root_get(const void *config, const char *key)
{
    if (strcmp(key, "root") == 0)
        return config;
    if (strcmp(key, "root_mode") == 0)
        return "external";
    return "";
}

static void quiet_error(mnnvl_status_t status, const char *sentence)
{
    (void)status;
    (void)sentence;
}

static void quiet_log(mnnvl_log_level_t level, const char *line)
{
    (void)level;
    (void)line;
}

mnnvl_status_t mt_tcp_create(const mt_tcp_rank_t *who, mnnvl_bootstrap_t **bs)
{
    mnnvl_bootstrap_args_t args = {.abi_version = MNNVL_BOOTSTRAP_ABI_VERSION,
                                   .rank = who->rank,
                                   .size = who->size,
                                   .timeout_ms = who->timeout_ms,
                                   .job_key = who->job_key,
                                   .comm_name = who->comm_name,
                                   .config_get = external_root_get,
                                   .config = who->root,
                                   .set_error = quiet_error,
                                   .log = quiet_log};
    return mnnvl_bootstrap_tcp_create(&args, bs);
}

mnnvl_tcp_root_t *mt_tcp_root(const char *job_key)
{
    mnnvl_tcp_root_t *root = NULL;
    cr_assert_eq(mnnvl_tcp_root_start("127.0.0.1:0", job_key, &root), MNNVL_SUCCESS, "%s",
                 mnnvl_last_error());
    return root;
}
