/* The one logging call. Lines go to the callback set with mnnvl_set_log_callback, or to
 * stderr as "mnnvl[pid] LEVEL: message". */
#ifndef MNNVL_LOG_H
#define MNNVL_LOG_H

#include "mnnvl.h"

void mnnvl_log(mnnvl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses none|error|warn|info|debug|trace; returns -1 for anything else. */
int mnnvl_log_level_parse(const char *name);

#define MNNVL_WARN(...) mnnvl_log(MNNVL_LOG_WARN, __VA_ARGS__)
#define MNNVL_INFO(...) mnnvl_log(MNNVL_LOG_INFO, __VA_ARGS__)
#define MNNVL_DEBUG(...) mnnvl_log(MNNVL_LOG_DEBUG, __VA_ARGS__)

#endif
