/* The plugin entry is checked before any of the plugin runs: a plugin of another bootstrap
 * interface version is refused with a sentence naming both versions (the fake plugins of
 * fake_plugin.c abort the process if their create is called). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

TestSuite(plugin_version, .timeout = 30);

/* comm_create over the "mpi" backend, which MNNVL_PLUGIN_DIR points at a fake (`what`): it
 * must be refused with UNSUPPORTED and leave no communicator. */
static void expect_create_unsupported(const char *what)
{
    mnnvl_config_t cfg = NULL;
    cr_assert_eq(mnnvl_config_create(&cfg), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_config_set(cfg, "bootstrap", "mpi"), MNNVL_SUCCESS);
    mnnvl_comm_t comm = NULL;
    mnnvl_status_t st = mnnvl_comm_create(cfg, 0, 1, -1, &comm);
    mnnvl_config_destroy(cfg);
    cr_expect_eq(st, MNNVL_ERR_UNSUPPORTED, "comm_create over %s returned %s (%s)", what,
                 mnnvl_status_string(st), mnnvl_last_error());
    cr_expect_null(comm);
}

/* A fake of another interface version in `dir`: not available, and refused by comm_create,
 * each with a sentence naming both versions. */
static void expect_refused(const char *dir, const char *version_words)
{
    setenv("MNNVL_PLUGIN_DIR", dir, 1);
    cr_expect_eq(mnnvl_bootstrap_available("mpi"), 0, "the fake plugin in %s was accepted", dir);
    const char *why = mnnvl_last_error();
    cr_expect(strstr(why, version_words) && strstr(why, "this libmnnvl speaks version 2"),
              "bootstrap_available: the sentence does not name both versions: %s", why);

    expect_create_unsupported("the fake");
    why = mnnvl_last_error();
    cr_expect(strstr(why, version_words) && strstr(why, "this libmnnvl speaks version 2"),
              "comm_create: the sentence does not name both versions: %s", why);
}

Test(plugin_version, descriptor_of_version_99_is_refused_before_it_runs)
{
    expect_refused(MNNVL_TEST_FAKE_PLUGIN_DIR "/v99/.libs",
                   "speaks bootstrap interface version 99");
}

Test(plugin_version, version_1_entry_is_refused_before_it_runs)
{
    expect_refused(MNNVL_TEST_FAKE_PLUGIN_DIR "/v1/.libs", "speaks bootstrap interface version 1");
}

Test(plugin_version, operations_table_without_child_is_refused)
{
    setenv("MNNVL_PLUGIN_DIR", MNNVL_TEST_FAKE_PLUGIN_DIR "/small/.libs", 1);
    expect_create_unsupported("a too small table");
    cr_expect(strstr(mnnvl_last_error(), "operations table of"), "%s", mnnvl_last_error());
}
