/* The pure-CPU parts of the DCP all-to-all: parameter defaults, the workspace size against
 * the layout documented in kernels/launch.h, every parameter check and its sentence, the
 * struct_size convention, and what the GPU entry points say without a GPU. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "build_config.h"
#include "mnnvl.h"
#include "testutil.h"

static mnnvl_dcp_a2a_params_t valid(int cp, int max_entries, int d, mnnvl_dtype_t t, int s)
{
    mnnvl_dcp_a2a_params_t p;
    mnnvl_dcp_a2a_params_init(&p);
    p.cp_size = cp;
    p.max_entries = max_entries;
    p.head_dim = d;
    p.dtype = t;
    p.stats_lanes = s;
    return p;
}

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

/* The layout of kernels/launch.h: flags [2][cp][64] u64, then slots [2][cp][max_entries] of
 * the row followed by the stats padded to 16 bytes, each region 128-byte aligned. */
static size_t documented_size(const mnnvl_dcp_a2a_params_t *p)
{
    size_t flags = round_up(2 * (size_t)p->cp_size * 64 * 8, 128);
    size_t row = (size_t)p->head_dim * 2 + round_up((size_t)p->stats_lanes * 4, 16);
    return round_up(flags + 2 * (size_t)p->cp_size * (size_t)p->max_entries * row, 128);
}

Test(dcp_plan, init_fills_the_defaults)
{
    mnnvl_dcp_a2a_params_t p;
    memset(&p, 0x5a, sizeof(p));
    mnnvl_dcp_a2a_params_init(&p);
    cr_assert_eq(p.struct_size, sizeof(p));
    cr_assert_eq(p.cp_size, 0);
    cr_assert_eq(p.max_entries, 0);
    cr_assert_eq(p.head_dim, 128);
    cr_assert_eq(p.dtype, MNNVL_DTYPE_BF16);
    cr_assert_eq(p.stats_lanes, 2);
    cr_assert_eq(p.lse_base, MNNVL_LSE_BASE_E);
    mnnvl_dcp_a2a_params_init(NULL); /* must not crash */
    /* The defaults alone leave cp_size and max_entries to the caller. */
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&p), 0);
    cr_assert(strstr(mnnvl_last_error(), "cp_size 0") != NULL, "%s", mnnvl_last_error());
}

Test(dcp_plan, workspace_size_follows_the_layout_and_grows_with_every_dimension)
{
    const int cps[] = {1, 2, 4, 8, 64}, dims[] = {64, 128, 256, 512, 1024},
              lanes[] = {1, 2, 4, 5, 8};
    const int entries[] = {1, 16, 128, 1408, 8192};
    for (int i = 0; i < 5; i++) {
        for (int t = 1; t <= 2; t++) {
            mnnvl_dcp_a2a_params_t p =
                valid(cps[i], entries[i], dims[i], (mnnvl_dtype_t)t, lanes[i]);
            size_t got = mnnvl_dcp_a2a_workspace_size(&p);
            cr_assert_eq(got, documented_size(&p), "cp %d entries %d D %d S %d: %zu, want %zu",
                         cps[i], entries[i], dims[i], lanes[i], got, documented_size(&p));
            /* Two receive buffers of every rank's rows must fit, whatever the padding. */
            size_t payload = 2 * (size_t)cps[i] * entries[i] * ((size_t)dims[i] * 2 + lanes[i] * 4);
            cr_assert_geq(got, payload);
            cr_assert_eq(got % 128, 0);
        }
    }
    mnnvl_dcp_a2a_params_t base = valid(4, 128, 128, MNNVL_DTYPE_BF16, 2);
    size_t b = mnnvl_dcp_a2a_workspace_size(&base);
    /* cp_size, max_entries, head_dim and stats_lanes, each one step past base. */
    const mnnvl_dcp_a2a_params_t grown[] = {
        valid(8, 128, 128, MNNVL_DTYPE_BF16, 2), valid(4, 129, 128, MNNVL_DTYPE_BF16, 2),
        valid(4, 128, 136, MNNVL_DTYPE_BF16, 2), valid(4, 128, 128, MNNVL_DTYPE_BF16, 5)};
    for (size_t i = 0; i < sizeof(grown) / sizeof(grown[0]); i++)
        cr_assert_gt(mnnvl_dcp_a2a_workspace_size(&grown[i]), b, "grown dimension %zu", i);
    /* The LSE base changes no byte of the layout. */
    mnnvl_dcp_a2a_params_t other_base = base;
    other_base.lse_base = MNNVL_LSE_BASE_2;
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&other_base), b);
}

static void expect_refused(mnnvl_dcp_a2a_params_t p, const char *needle)
{
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&p), 0, "parameters with '%s' accepted", needle);
    cr_assert(strstr(mnnvl_last_error(), needle) != NULL, "expected '%s' in: %s", needle,
              mnnvl_last_error());
}

Test(dcp_plan, every_parameter_check_names_the_value)
{
    mnnvl_dcp_a2a_params_t p = valid(4, 128, 128, MNNVL_DTYPE_BF16, 2);
    cr_assert_gt(mnnvl_dcp_a2a_workspace_size(&p), 0, "%s", mnnvl_last_error());
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(NULL), 0);
    cr_assert(strstr(mnnvl_last_error(), "params is NULL") != NULL, "%s", mnnvl_last_error());
    mnnvl_dcp_a2a_params_t q;
    q = p, q.cp_size = 0, expect_refused(q, "cp_size 0 must be in [1, 64]");
    q = p, q.cp_size = 65, expect_refused(q, "cp_size 65 must be in [1, 64]");
    q = p, q.max_entries = 0, expect_refused(q, "max_entries 0 must be in [1, 16777216]");
    q = p, q.max_entries = (1 << 24) + 1, expect_refused(q, "max_entries 16777217");
    q = p, q.dtype = MNNVL_DTYPE_FP32, expect_refused(q, "dtype 0 is not FP16 (1) or BF16 (2)");
    q = p, q.dtype = (mnnvl_dtype_t)7, expect_refused(q, "dtype 7");
    q = p, q.head_dim = 0, expect_refused(q, "head_dim 0 must be a multiple of 8");
    q = p, q.head_dim = 100, expect_refused(q, "head_dim 100 must be a multiple of 8");
    q = p, q.head_dim = 1032, expect_refused(q, "head_dim 1032");
    q = p, q.stats_lanes = 0, expect_refused(q, "stats_lanes 0 must be in [1, 8]");
    q = p, q.stats_lanes = 9, expect_refused(q, "stats_lanes 9 must be in [1, 8]");
    q = p, q.lse_base = (mnnvl_lse_base_t)2, expect_refused(q, "lse_base 2 is not");
    /* The smallest and largest accepted values. */
    q = valid(1, 1, 8, MNNVL_DTYPE_FP16, 1);
    cr_assert_gt(mnnvl_dcp_a2a_workspace_size(&q), 0, "%s", mnnvl_last_error());
    q = valid(64, 1, 1024, MNNVL_DTYPE_BF16, 8);
    cr_assert_gt(mnnvl_dcp_a2a_workspace_size(&q), 0, "%s", mnnvl_last_error());
}

/* struct_size: this header's size is accepted, a newer (larger) header's is refused with a
 * sentence saying so, and a size no header ever had means the struct was never initialised. */
Test(dcp_plan, struct_size_convention)
{
    mnnvl_dcp_a2a_params_t p = valid(2, 16, 128, MNNVL_DTYPE_BF16, 2);
    size_t want = mnnvl_dcp_a2a_workspace_size(&p);
    cr_assert_gt(want, 0);
    /* A newer header's struct: its first bytes are ours, more follow. */
    struct {
        mnnvl_dcp_a2a_params_t known;
        int64_t later_field;
    } newer;
    newer.known = p;
    newer.later_field = 0;
    newer.known.struct_size = sizeof(newer);
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&newer.known), 0);
    cr_assert(strstr(mnnvl_last_error(), "newer lib/mnnvl.h") != NULL, "%s", mnnvl_last_error());
    p.struct_size = 4;
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&p), 0);
    cr_assert(strstr(mnnvl_last_error(), "mnnvl_dcp_a2a_params_init") != NULL, "%s",
              mnnvl_last_error());
    p.struct_size = 0;
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&p), 0);
    p.struct_size = sizeof(p);
    cr_assert_eq(mnnvl_dcp_a2a_workspace_size(&p), want);
}

/* Without a handle or a GPU: NULL handles and CPU-only communicators are refused with a
 * sentence (UNSUPPORTED in a build without CUDA), destroy(NULL) is a no-op. */
static int cpu_only_body(int rank, int size, void *arg)
{
    mnnvl_config_t cfg = mt_config(arg, "dcp-test-key-0123456789abcdef0123456789", 10000);
    mnnvl_comm_t comm = NULL;
    if (mt_fail(mnnvl_comm_create(cfg, rank, size, -1, &comm), rank, "comm_create"))
        return 1;
    mnnvl_config_destroy(cfg);
    mnnvl_dcp_a2a_params_t p = valid(size, 16, 128, MNNVL_DTYPE_BF16, 2);
    mnnvl_dcp_a2a_t d = (mnnvl_dcp_a2a_t)&p; /* must be overwritten with NULL */
    mnnvl_status_t st = mnnvl_dcp_a2a_create(comm, &p, &d);
#ifdef HAVE_CUDA
    const mnnvl_status_t want = MNNVL_ERR_INVALID_USAGE;
    const char *needle = "CPU-only";
#else
    const mnnvl_status_t want = MNNVL_ERR_UNSUPPORTED;
    const char *needle = "without CUDA";
#endif
    int bad = 0;
    if (st != want || d != NULL || !strstr(mnnvl_last_error(), needle)) {
        fprintf(stderr, "rank %d: create on a CPU-only communicator gave %s (%s)\n", rank,
                mnnvl_status_string(st), mnnvl_last_error());
        bad = 1;
    }
    mnnvl_comm_destroy(comm);
    return bad;
}

Test(dcp_plan, without_a_gpu)
{
    char root[64];
    mt_loopback_root(root, sizeof(root));
    cr_assert_eq(mt_run_ranks(2, cpu_only_body, root, 30, NULL), 0);
    cr_assert_eq(mnnvl_dcp_a2a_destroy(NULL), MNNVL_SUCCESS);
    float buf[4];
#ifdef HAVE_CUDA
    cr_assert_eq(mnnvl_dcp_a2a(NULL, buf, buf, 1, buf, buf, NULL), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(mnnvl_last_error(), "dcp is NULL") != NULL, "%s", mnnvl_last_error());
    cr_assert_eq(mnnvl_dcp_a2a_lse_reduce(NULL, buf, buf, 1, buf, buf, NULL),
                 MNNVL_ERR_INVALID_ARGUMENT);
    mnnvl_dcp_a2a_params_t p = valid(1, 1, 128, MNNVL_DTYPE_BF16, 2);
    cr_assert_eq(mnnvl_dcp_a2a_create(NULL, &p, NULL), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(mnnvl_last_error(), "dcp is NULL") != NULL, "%s", mnnvl_last_error());
#else
    cr_assert_eq(mnnvl_dcp_a2a(NULL, buf, buf, 1, buf, buf, NULL), MNNVL_ERR_UNSUPPORTED);
    cr_assert_eq(mnnvl_dcp_a2a_lse_reduce(NULL, buf, buf, 1, buf, buf, NULL),
                 MNNVL_ERR_UNSUPPORTED);
#endif
}
