/* The thread-local last-error sentence (the status names are in status.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "status.h"

#define MNNVL_ERROR_LEN 1024

static _Thread_local char last_error[MNNVL_ERROR_LEN];

MNNVL_API const char *mnnvl_last_error(void)
{
    return last_error;
}

void mnnvl_error_clear(void)
{
    last_error[0] = '\0';
}

static mnnvl_status_t record(mnnvl_status_t status, const char *prefix, const char *fmt, va_list ap)
{
    char sentence[MNNVL_ERROR_LEN];
    int n = vsnprintf(sentence, sizeof(sentence), fmt, ap);
    if (prefix && prefix[0] && n >= 0 && (size_t)n < sizeof(sentence))
        snprintf(sentence + n, sizeof(sentence) - (size_t)n, ": %s", prefix);
    memcpy(last_error, sentence, sizeof(last_error));
    mnnvl_log(MNNVL_LOG_DEBUG, "%s: %s", mnnvl_status_string(status), last_error);
    return status;
}

mnnvl_status_t mnnvl_error(mnnvl_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(status, NULL, fmt, ap);
    va_end(ap);
    return status;
}

mnnvl_status_t mnnvl_error_wrap(mnnvl_status_t status, const char *fmt, ...)
{
    char inner[MNNVL_ERROR_LEN];
    memcpy(inner, last_error, sizeof(inner));
    va_list ap;
    va_start(ap, fmt);
    record(status, inner, fmt, ap);
    va_end(ap);
    return status;
}
