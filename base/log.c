/* Process-wide log level and sink. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static const char *const level_names[] = {"none", "error", "warn", "info", "debug", "trace"};

/* -1 until first use, then read from MNNVL_LOG_LEVEL once. */
static atomic_int log_level = -1;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static mnnvl_log_fn sink_fn;
static void *sink_user;

int mnnvl_log_level_parse(const char *name)
{
    for (int i = 0; i <= MNNVL_LOG_TRACE; i++)
        if (name && strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

MNNVL_API mnnvl_log_level_t mnnvl_get_log_level(void)
{
    int level = atomic_load(&log_level);
    if (level < 0) {
        const char *env = getenv("MNNVL_LOG_LEVEL");
        int parsed = env ? mnnvl_log_level_parse(env) : -1;
        if (env && parsed < 0)
            fprintf(stderr,
                    "mnnvl[%d] WARN: MNNVL_LOG_LEVEL=%s is not one of "
                    "none|error|warn|info|debug|trace; using warn\n",
                    (int)getpid(), env);
        int expected = -1;
        atomic_compare_exchange_strong(&log_level, &expected, parsed < 0 ? MNNVL_LOG_WARN : parsed);
        level = atomic_load(&log_level);
    }
    return (mnnvl_log_level_t)level;
}

MNNVL_API void mnnvl_set_log_level(mnnvl_log_level_t level)
{
    if ((int)level < MNNVL_LOG_NONE)
        level = MNNVL_LOG_NONE;
    if (level > MNNVL_LOG_TRACE)
        level = MNNVL_LOG_TRACE;
    atomic_store(&log_level, (int)level);
}

MNNVL_API void mnnvl_set_log_callback(mnnvl_log_fn fn, void *user_data)
{
    pthread_mutex_lock(&sink_lock);
    sink_fn = fn;
    sink_user = user_data;
    pthread_mutex_unlock(&sink_lock);
}

void mnnvl_log(mnnvl_log_level_t level, const char *fmt, ...)
{
    if (level == MNNVL_LOG_NONE || level > mnnvl_get_log_level())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* The lock keeps a callback from being swapped out mid-call and lines whole on stderr. */
    pthread_mutex_lock(&sink_lock);
    if (sink_fn) {
        sink_fn(level, line, sink_user);
    } else {
        char upper[8] = {0};
        for (size_t i = 0; i < sizeof(upper) - 1 && level_names[level][i]; i++)
            upper[i] = (char)(level_names[level][i] - 'a' + 'A');
        fprintf(stderr, "mnnvl[%d] %s: %s\n", (int)getpid(), upper, line);
    }
    pthread_mutex_unlock(&sink_lock);
}
