/* Status strings and the thread-local last-error sentence. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"

#define MNNVL_ERROR_LEN 1024

static _Thread_local char last_error[MNNVL_ERROR_LEN];

MNNVL_API const char *mnnvl_status_string(mnnvl_status_t status)
{
    switch (status) {
    case MNNVL_SUCCESS: return "MNNVL_SUCCESS";
    case MNNVL_ERR_INVALID_ARGUMENT: return "MNNVL_ERR_INVALID_ARGUMENT";
    case MNNVL_ERR_INVALID_USAGE: return "MNNVL_ERR_INVALID_USAGE";
    case MNNVL_ERR_NO_MEMORY: return "MNNVL_ERR_NO_MEMORY";
    case MNNVL_ERR_CUDA: return "MNNVL_ERR_CUDA";
    case MNNVL_ERR_NO_DEVICE: return "MNNVL_ERR_NO_DEVICE";
    case MNNVL_ERR_UNSUPPORTED: return "MNNVL_ERR_UNSUPPORTED";
    case MNNVL_ERR_BOOTSTRAP: return "MNNVL_ERR_BOOTSTRAP";
    case MNNVL_ERR_TIMEOUT: return "MNNVL_ERR_TIMEOUT";
    case MNNVL_ERR_PEER_LOST: return "MNNVL_ERR_PEER_LOST";
    case MNNVL_ERR_GRAPH_CAPTURE: return "MNNVL_ERR_GRAPH_CAPTURE";
    case MNNVL_ERR_ABORTED: return "MNNVL_ERR_ABORTED";
    case MNNVL_ERR_MISMATCH: return "MNNVL_ERR_MISMATCH";
    case MNNVL_ERR_AUTH: return "MNNVL_ERR_AUTH";
    case MNNVL_ERR_INTERNAL: return "MNNVL_ERR_INTERNAL";
    }
    return "MNNVL_ERR_UNKNOWN";
}

MNNVL_API const char *mnnvl_last_error(void)
{
    return last_error;
}

void mnnvl_error_clear(void)
{
    last_error[0] = '\0';
}

static mnnvl_status_t record(mnnvl_status_t status, const char *prefix, const char *fmt,
                             va_list ap)
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
