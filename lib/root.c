/* The public TCP root: mnnvl_root_start/address/stop over the tcp bootstrap's root server
 * (bootstrap/tcp_root.c). */
#include <stdio.h>
#include <stdlib.h>

#include "bootstrap/sock.h"
#include "bootstrap/tcp.h"
#include "error.h"

struct mnnvl_root_s {
    mnnvl_tcp_root_t *tcp;
};

MNNVL_API mnnvl_status_t mnnvl_root_start(const mnnvl_config_t config, const char *listen_address,
                                          mnnvl_root_t *root)
{
    if (!root)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "root_start: root is NULL");
    *root = NULL;
    if (!config)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "root_start: config is NULL; create one with mnnvl_config_create() "
                           "(it carries the job_key every rank must prove)");
    const char *job_key = mnnvl_config_get(config, "job_key");
    if (!job_key)
        return mnnvl_error_wrap(MNNVL_ERR_INTERNAL, "root_start: cannot read job_key");
    char address[MNNVL_SOCK_ADDR_MAX + 8];
    if (!listen_address) {
        /* This host's name, so that ranks on other hosts can reach the address it reports. */
        char host[MNNVL_SOCK_ADDR_MAX];
        mnnvl_sock_host_address(host, sizeof(host));
        snprintf(address, sizeof(address), "%s:0", host);
        listen_address = address;
    }
    struct mnnvl_root_s *r = calloc(1, sizeof(*r));
    if (!r)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "root_start: out of memory");
    mnnvl_status_t st = mnnvl_tcp_root_start(listen_address, job_key, &r->tcp);
    if (st != MNNVL_SUCCESS) {
        free(r);
        return mnnvl_error_wrap(st, "root_start on %s", listen_address);
    }
    *root = r;
    return MNNVL_SUCCESS;
}

MNNVL_API const char *mnnvl_root_address(const mnnvl_root_t root)
{
    return root ? mnnvl_tcp_root_address(root->tcp) : NULL;
}

MNNVL_API mnnvl_status_t mnnvl_root_stop(mnnvl_root_t root)
{
    if (!root)
        return MNNVL_SUCCESS;
    mnnvl_tcp_root_stop(root->tcp);
    free(root);
    return MNNVL_SUCCESS;
}
