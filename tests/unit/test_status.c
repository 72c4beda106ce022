/* Status strings, the last-error sentence, version and logging. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mnnvl.h"

Test(status, every_code_has_its_own_name)
{
    const mnnvl_status_t codes[] = {MNNVL_SUCCESS,           MNNVL_ERR_INVALID_ARGUMENT,
                                    MNNVL_ERR_INVALID_USAGE, MNNVL_ERR_NO_MEMORY,
                                    MNNVL_ERR_CUDA,          MNNVL_ERR_NO_DEVICE,
                                    MNNVL_ERR_UNSUPPORTED,   MNNVL_ERR_BOOTSTRAP,
                                    MNNVL_ERR_TIMEOUT,       MNNVL_ERR_PEER_LOST,
                                    MNNVL_ERR_GRAPH_CAPTURE, MNNVL_ERR_ABORTED,
                                    MNNVL_ERR_MISMATCH,      MNNVL_ERR_AUTH,
                                    MNNVL_ERR_INTERNAL};
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *name = mnnvl_status_string(codes[i]);
        cr_assert(strncmp(name, "MNNVL_", 6) == 0, "code %d named %s", codes[i], name);
        cr_assert(strcmp(name, "MNNVL_ERR_UNKNOWN") != 0, "code %d has no name", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(name, mnnvl_status_string(codes[j])) != 0,
                      "codes %d and %d share the name %s", codes[i], codes[j], name);
    }
    cr_assert_str_eq(mnnvl_status_string(MNNVL_ERR_TIMEOUT), "MNNVL_ERR_TIMEOUT");
    cr_assert_str_eq(mnnvl_status_string((mnnvl_status_t)-999), "MNNVL_ERR_UNKNOWN");
    cr_assert_str_eq(mnnvl_status_string((mnnvl_status_t)7), "MNNVL_ERR_UNKNOWN");
}

Test(status, last_error_names_the_values)
{
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, 4, 9);
    cr_assert_eq(mnnvl_mapping_validate(&m), MNNVL_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(mnnvl_last_error(), "rank 9") != NULL, "sentence: %s", mnnvl_last_error());
    cr_assert(strstr(mnnvl_last_error(), "4") != NULL, "sentence: %s", mnnvl_last_error());
}

static void *fail_in_thread(void *arg)
{
    (void)arg;
    mnnvl_config_t cfg;
    mnnvl_config_create(&cfg);
    mnnvl_config_set(cfg, "no_such_key", "1");
    mnnvl_config_destroy(cfg);
    return strstr(mnnvl_last_error(), "no_such_key") ? (void *)1 : NULL;
}

Test(status, last_error_is_per_thread)
{
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, 2, 5);
    mnnvl_mapping_validate(&m);
    char before[512];
    snprintf(before, sizeof(before), "%s", mnnvl_last_error());
    pthread_t t;
    void *saw = NULL;
    pthread_create(&t, NULL, fail_in_thread, NULL);
    pthread_join(t, &saw);
    cr_assert(saw != NULL, "the other thread did not see its own error");
    cr_assert_str_eq(mnnvl_last_error(), before, "another thread's error leaked into this one");
}

Test(version, matches_header)
{
    cr_assert_eq(mnnvl_version(), MNNVL_VERSION_CODE);
    char expect[32];
    snprintf(expect, sizeof(expect), "%d.%d.%d", MNNVL_VERSION_MAJOR, MNNVL_VERSION_MINOR,
             MNNVL_VERSION_PATCH);
    cr_assert_str_eq(mnnvl_version_string(), expect);
}

static int lines_seen;
static mnnvl_log_level_t last_level;
static char last_line[512];

static void capture(mnnvl_log_level_t level, const char *message, void *user)
{
    lines_seen += user == (void *)&lines_seen;
    last_level = level;
    snprintf(last_line, sizeof(last_line), "%s", message);
}

Test(log, callback_receives_lines_at_or_below_the_level)
{
    mnnvl_set_log_callback(capture, &lines_seen);
    mnnvl_set_log_level(MNNVL_LOG_DEBUG);
    cr_assert_eq(mnnvl_get_log_level(), MNNVL_LOG_DEBUG);
    /* Errors are logged at debug level with their sentence. */
    mnnvl_mapping_t m;
    mnnvl_mapping_init(&m, 3, 3);
    mnnvl_mapping_validate(&m);
    cr_assert_gt(lines_seen, 0);
    cr_assert_eq(last_level, MNNVL_LOG_DEBUG);
    cr_assert(strstr(last_line, "rank 3") != NULL, "line: %s", last_line);

    int before = lines_seen;
    mnnvl_set_log_level(MNNVL_LOG_WARN);
    mnnvl_mapping_validate(&m);
    cr_assert_eq(lines_seen, before, "a debug line passed the warn level");
    mnnvl_set_log_level((mnnvl_log_level_t)42);
    cr_assert_eq(mnnvl_get_log_level(), MNNVL_LOG_TRACE, "out-of-range levels clamp");
    mnnvl_set_log_callback(NULL, NULL);
}
