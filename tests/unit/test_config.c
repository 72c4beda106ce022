/* Config keys: defaults, setters, validation, environment overrides. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

static mnnvl_config_t cfg;

static void setup(void)
{
    cr_assert_eq(mnnvl_config_create(&cfg), MNNVL_SUCCESS, "%s", mnnvl_last_error());
}

static void teardown(void)
{
    mnnvl_config_destroy(cfg);
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults)
{
    cr_assert_str_eq(mnnvl_config_get(cfg, "bootstrap"), "tcp");
    cr_assert_str_eq(mnnvl_config_get(cfg, "handle_type"), "auto");
    cr_assert_str_eq(mnnvl_config_get(cfg, "timeout_ms"), "120000");
    cr_assert_str_eq(mnnvl_config_get(cfg, "root_mode"), "rank0");
    cr_assert_str_eq(mnnvl_config_get(cfg, "comm_name"), "world");
    cr_assert_str_eq(mnnvl_config_get(cfg, "root"), "");
    cr_assert_str_eq(mnnvl_config_get(cfg, "job_key"), "");
    cr_assert_str_eq(mnnvl_config_get(cfg, "store_prefix"), "mnnvl");
}

Test(config, set_and_get)
{
    cr_assert_eq(mnnvl_config_set(cfg, "root", "10.0.0.1:29500"), MNNVL_SUCCESS);
    cr_assert_str_eq(mnnvl_config_get(cfg, "root"), "10.0.0.1:29500");
    cr_assert_eq(mnnvl_config_set(cfg, "root", "[::1]:1"), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_config_set(cfg, "handle_type", "posix-fd"), MNNVL_SUCCESS);
    cr_assert_str_eq(mnnvl_config_get(cfg, "handle_type"), "posix-fd");
    cr_assert_eq(mnnvl_config_set(cfg, "timeout_ms", "250"), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_config_set(cfg, "log_level", "debug"), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_config_set(cfg, "job_key", "s3cret value of at least 32 bytes!"),
                 MNNVL_SUCCESS);
    cr_assert_str_eq(mnnvl_config_get(cfg, "job_key"), "s3cret value of at least 32 bytes!");
}

/* A key short enough to guess is refused with a sentence that says how to make a good one
 * and does not show the key; 16 bytes and the empty key (no secret) are accepted. */
Test(config, short_job_key_is_refused_without_showing_it)
{
    const char *good = "a good job key of 32 characters!";
    cr_assert_eq(mnnvl_config_set(cfg, "job_key", good), MNNVL_SUCCESS);
    const char *shorts[] = {"Zq", "hello", "fifteen bytes.."};
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        cr_expect_eq(mnnvl_config_set(cfg, "job_key", shorts[i]), MNNVL_ERR_INVALID_ARGUMENT,
                     "'%s' was accepted", shorts[i]);
        const char *why = mnnvl_last_error();
        cr_expect(strstr(why, "mnnvl-store --new-key") && strstr(why, "at least 16"), "%s", why);
        cr_expect(!strstr(why, shorts[i]), "the sentence shows the key: %s", why);
        cr_expect_str_eq(mnnvl_config_get(cfg, "job_key"), good, "a refused key replaced it");
    }
    cr_expect_eq(mnnvl_config_set(cfg, "job_key", "sixteen bytes..."), MNNVL_SUCCESS);
    cr_expect_eq(mnnvl_config_set(cfg, "job_key", ""), MNNVL_SUCCESS);
}

Test(config, unknown_key_is_an_error_naming_it)
{
    cr_assert_eq(mnnvl_config_set(cfg, "tiemout_ms", "5"), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(mnnvl_last_error(), "tiemout_ms") != NULL, "%s", mnnvl_last_error());
    cr_assert(strstr(mnnvl_last_error(), "timeout_ms") != NULL, "should list the known keys");
    cr_assert_null(mnnvl_config_get(cfg, "nope"));
    cr_assert_eq(mnnvl_config_set(cfg, NULL, "x"), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert_eq(mnnvl_config_set(NULL, "root", "x"), MNNVL_ERR_INVALID_ARGUMENT);
}

Test(config, bad_values_are_errors_and_leave_the_old_value)
{
    const char *bad[][2] = {
        {"bootstrap", "carrier-pigeon"},
        {"handle_type", "ipc"},
        {"timeout_ms", "0"},
        {"timeout_ms", "-5"},
        {"timeout_ms", "12ms"},
        {"timeout_ms", "99999999999"},
        {"root", "nohostport"},
        {"root", "host:"},
        {"root", "host:99999"},
        {"root", ":80"},
        {"root_mode", "both"},
        {"log_level", "loud"},
        {"store", "x:y"},
        {"bootstrap", NULL},
        /* issue 12: values the bootstrap or the integer readers would refuse or misread. */
        {"root", "a:b:c:1"},
        {"root", "[::1:80"},
        {"root", "[::1]80"},
        {"root", "[]:80"},
        {"store", "host:123456"},
        {"timeout_ms", " 5"},
        {"timeout_ms", "+5"},
        {"timeout_ms", "5 "},
        {"allreduce_oneshot_max", " 1"},
        {"allreduce_oneshot_max", "+1"},
        {"mpi_comm", " 3"},
        {"mpi_comm", "3x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *before = mnnvl_config_get(cfg, bad[i][0]);
        char saved[128];
        strncpy(saved, before, sizeof(saved) - 1);
        saved[sizeof(saved) - 1] = 0;
        cr_assert_eq(mnnvl_config_set(cfg, bad[i][0], bad[i][1]), MNNVL_ERR_INVALID_ARGUMENT,
                     "%s=%s accepted", bad[i][0], bad[i][1] ? bad[i][1] : "(null)");
        cr_assert(strstr(mnnvl_last_error(), bad[i][0]) != NULL, "%s", mnnvl_last_error());
        if (bad[i][1])
            cr_assert(strstr(mnnvl_last_error(), bad[i][1]) != NULL, "%s", mnnvl_last_error());
        cr_assert_str_eq(mnnvl_config_get(cfg, bad[i][0]), saved);
    }
}

/* The forms the bootstrap accepts stay accepted by the stricter set-time checks. */
Test(config, good_addresses_and_numbers_are_accepted)
{
    const char *good[][2] = {
        {"root", "localhost:0"},
        {"root", "[::1]:29500"},
        {"root", "10.0.0.1:65535"},
        {"store", "node-3.ib:1234"},
        {"root", ""},
        {"timeout_ms", "1"},
        {"allreduce_oneshot_max", "0"},
        {"mpi_comm", "-2"},
        {"mpi_comm", ""},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(mnnvl_config_set(cfg, good[i][0], good[i][1]), MNNVL_SUCCESS, "%s=%s: %s",
                     good[i][0], good[i][1], mnnvl_last_error());
        cr_assert_str_eq(mnnvl_config_get(cfg, good[i][0]), good[i][1]);
    }
}

Test(config_env, environment_overrides_defaults)
{
    setenv("MNNVL_TIMEOUT_MS", "777", 1);
    setenv("MNNVL_HANDLE_TYPE", "fabric", 1);
    setenv("MNNVL_STORE_PREFIX", "svc", 1);
    mnnvl_config_t c;
    cr_assert_eq(mnnvl_config_create(&c), MNNVL_SUCCESS, "%s", mnnvl_last_error());
    cr_assert_str_eq(mnnvl_config_get(c, "timeout_ms"), "777");
    cr_assert_str_eq(mnnvl_config_get(c, "handle_type"), "fabric");
    cr_assert_str_eq(mnnvl_config_get(c, "store_prefix"), "svc");
    /* A setter still wins over the environment. */
    cr_assert_eq(mnnvl_config_set(c, "timeout_ms", "5"), MNNVL_SUCCESS);
    cr_assert_str_eq(mnnvl_config_get(c, "timeout_ms"), "5");
    mnnvl_config_destroy(c);
}

Test(config_env, bad_environment_value_fails_create_naming_the_variable)
{
    setenv("MNNVL_BOOTSTRAP", "smoke-signals", 1);
    mnnvl_config_t c = (mnnvl_config_t)1;
    cr_assert_eq(mnnvl_config_create(&c), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert_null(c);
    cr_assert(strstr(mnnvl_last_error(), "MNNVL_BOOTSTRAP") != NULL, "%s", mnnvl_last_error());
    cr_assert(strstr(mnnvl_last_error(), "smoke-signals") != NULL, "%s", mnnvl_last_error());
}

Test(config_env, destroy_null_is_a_no_op)
{
    cr_assert_eq(mnnvl_config_destroy(NULL), MNNVL_SUCCESS);
    cr_assert_eq(mnnvl_config_create(NULL), MNNVL_ERR_INVALID_ARGUMENT);
}
