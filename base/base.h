/* base/: the layer at the bottom of libmnnvl, below lib/ and bootstrap/.
 *
 * Layering (which folder may include which; tools/check_layers.sh checks it in make check):
 *
 *     tools/  tests/  examples/          anything below (tests may reach internals)
 *     lib/                               lib/, bootstrap/, kernels/launch.h, base/
 *     bootstrap/   kernels/              their own folder, base/ (never lib/, nor each other)
 *     base/                              base/ only
 *     bindings/ stand apart: they see lib/mnnvl.h alone.
 *
 * The public header lib/mnnvl.h may be included from every layer (it is the ABI, and the
 * status enum lives there); build_config.h (configure's output) too.
 *
 * What base/ holds, one file each: the error path and last-error sentence (error.h), the
 * one logging call (log.h), the monotonic clock and deadlines (deadline.h), the names of
 * the statuses (status.h), the host:port rule (hostport.h), the hash (hash.h), and the
 * loader of libcuda.so.1 (libcuda.h).
 *
 * The bootstrap plugins (bootstrap/plugins/) cannot link libmnnvl, so they compile in the
 * parts of base/ that keep no process-wide state of libmnnvl's: deadline.h, hash.h,
 * status.c, hostport.c. error.c and log.c are libmnnvl's (the last error and the log sink
 * are the library's); a plugin reports through mnnvl_bootstrap_args_t's set_error and log.
 * Tools and tests compile libcuda.c in (inside libmnnvl.so it is hidden).
 *
 * Including this header gives all of base/; a file that needs one part includes that part. */
#ifndef MNNVL_BASE_H
#define MNNVL_BASE_H

#include "deadline.h"
#include "error.h"
#include "hash.h"
#include "hostport.h"
#include "libcuda.h"
#include "log.h"
#include "status.h"

#endif
