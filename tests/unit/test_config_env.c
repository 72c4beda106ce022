/* Unknown MNNVL_* environment variables: one warning each, naming the closest config key;
 * config keys and the variables read elsewhere (tests, plugins, the benchmark) say nothing.
 * Criterion runs each test in its own process, so each sees the first config_create. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ */

#include "mnnvl.h"

static char lines[8][512];
static int nlines;

static void capture(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)user_data;
    if (level == MNNVL_LOG_WARN && strstr(message, "environment variable") && nlines < 8)
        snprintf(lines[nlines++], sizeof(lines[0]), "%s", message);
}

/* Starts from an environment without MNNVL_* variables (the caller's could warn). */
static void clear_mnnvl_env(void)
{
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (strncmp(*e, "MNNVL_", 6) == 0 && eq && eq - *e < 64) {
                char name[64];
                memcpy(name, *e, (size_t)(eq - *e));
                name[eq - *e] = '\0';
                unsetenv(name); /* environ changed: scan again */
                again = 1;
                break;
            }
        }
    }
}

static void create_twice(void)
{
    mnnvl_set_log_callback(capture, NULL);
    for (int i = 0; i < 2; i++) {
        mnnvl_config_t cfg;
        cr_assert_eq(mnnvl_config_create(&cfg), MNNVL_SUCCESS, "%s", mnnvl_last_error());
        mnnvl_config_destroy(cfg);
    }
    mnnvl_set_log_callback(NULL, NULL);
}

Test(unknown_env, misspelled_key_warns_once_with_the_closest)
{
    clear_mnnvl_env();
    setenv("MNNVL_JOBKEY", "secret from the environment 0123456789", 1);
    setenv("MNNVL_TIMEOUT", "5", 1);
    create_twice();
    cr_assert_eq(nlines, 2, "one warning per unknown variable, not per config: %d", nlines);
    const char *job = strstr(lines[0], "MNNVL_JOBKEY") ? lines[0] : lines[1];
    const char *timeout = job == lines[0] ? lines[1] : lines[0];
    cr_assert(strstr(job, "MNNVL_JOBKEY") && strstr(job, "MNNVL_JOB_KEY (config key job_key)"),
              "%s", job);
    cr_assert(strstr(timeout, "MNNVL_TIMEOUT") && strstr(timeout, "MNNVL_TIMEOUT_MS"), "%s",
              timeout);
}

Test(unknown_env, keys_and_known_variables_are_quiet)
{
    clear_mnnvl_env();
    setenv("MNNVL_JOB_KEY", "secret from the environment 0123456789", 1);
    setenv("MNNVL_TIMEOUT_MS", "5000", 1);
    setenv("MNNVL_REQUIRE_GPU", "1", 1);
    setenv("MNNVL_TEST_SOMETHING", "x", 1);
    setenv("MNNVL_PLUGIN_DIR", "/nonexistent", 1);
    create_twice();
    cr_assert_eq(nlines, 0, "warned: %s", nlines ? lines[0] : "");
}
