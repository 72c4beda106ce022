/* The one error path: set the status and a sentence naming the values, return the status.
 *
 *     if (bytes == 0)
 *         return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "mem_alloc: bytes is 0");
 */
#ifndef MNNVL_ERROR_H
#define MNNVL_ERROR_H

#include "mnnvl.h"

/* Records `status` and the printf-formatted sentence as the calling thread's last error,
 * logs it at debug level, and returns `status`. */
mnnvl_status_t mnnvl_error(mnnvl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like mnnvl_error, with the thread's current sentence appended after ": " — for adding the
 * caller's context to an error a callee already described. */
mnnvl_status_t mnnvl_error_wrap(mnnvl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's last error (every public entry point that succeeds leaves the
 * previous sentence alone; callers only read it after a failure). */
void mnnvl_error_clear(void);

#define MNNVL_CHECK(expr)                            \
    do {                                             \
        mnnvl_status_t mnnvl_check_status_ = (expr); \
        if (mnnvl_check_status_ != MNNVL_SUCCESS)    \
            return mnnvl_check_status_;              \
    } while (0)

#endif
