/* Fixtures of the tests that reach the tcp bootstrap's internals (test_tcp_root,
 * test_tcp_auth): hidden in libmnnvl.so, so those programs are built from the bootstrap
 * sources and compile this file in instead of linking libmnnvltest. */
#ifndef MNNVL_TEST_TCP_FIXTURE_H
#define MNNVL_TEST_TCP_FIXTURE_H

#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp.h"

/* Who a rank of these tests is: rank `rank` of `size` of the communicator `comm_name`,
 * joining the external root at `root` with `job_key`. */
typedef struct mt_tcp_rank {
    const char *root; /* kept by pointer: it must outlive the bootstrap */
    const char *job_key;
    const char *comm_name;
    int rank;
    int size;
    int timeout_ms;
} mt_tcp_rank_t;

/* mnnvl_bootstrap_tcp_create for `who`. Its errors and log lines go nowhere: the tests read
 * mnnvl_last_error(). */
mnnvl_status_t mt_tcp_create(const mt_tcp_rank_t *who, mnnvl_bootstrap_t **bs);

/* A tcp root on a free loopback port that `job_key` opens, or the test fails. */
mnnvl_tcp_root_t *mt_tcp_root(const char *job_key);

#endif
