/* A server that a test runs beside its forked ranks (an external tcp root, a fake store),
 * kept in a process of its own.
 *
 * Why not a thread of the test process: mt_run_ranks forks the ranks from that process,
 * and a rank forked while one of the server's threads is inside malloc inherits the
 * allocator's lock held by a thread that does not exist in the child. glibc's malloc
 * resets its locks at fork; the ASan allocator of GCC 12 does not, so the rank hangs at its
 * first allocation. CI's sanitizer stage saw exactly that: a rank forked while the tcp root's
 * thread was starting (ASan allocates at thread start) blocked forever in the allocator when
 * it started its own thread, and was killed after 15 s. A service is forked before any rank,
 * from a process with no server threads, and the ranks are forked from a process with none. */
#ifndef MNNVL_TEST_SERVICE_H
#define MNNVL_TEST_SERVICE_H

#include <stddef.h>

typedef struct mt_service mt_service_t;

/* The service process's end of the two pipes. */
typedef struct mt_service_io mt_service_io_t;

/* Runs in the service process: starts the server, calls mt_service_ready with what the test
 * needs to reach it (an address), then mt_service_wait, then stops the server and returns a
 * result for mt_service_stop (a count the test checks), or a negative value on failure. */
typedef int (*mt_service_fn)(void *arg, mt_service_io_t *io);

/* In the service: tells mt_service_start the server is up, and what mt_service_info returns
 * (at most 255 bytes of it are kept). */
void mt_service_ready(mt_service_io_t *io, const char *info);

/* In the service: blocks until mt_service_stop is called (or the test process is gone). */
void mt_service_wait(mt_service_io_t *io);

/* Forks the service process running fn(arg, ...) and waits, at most 10 s, until it calls
 * mt_service_ready. NULL (with a line on stderr) when it fails or returns without. Call it
 * before mt_run_ranks, and before this process starts threads of its own. */
mt_service_t *mt_service_start(mt_service_fn fn, void *arg);

/* The info the service passed to mt_service_ready. */
const char *mt_service_info(const mt_service_t *s);

/* Tells the service to stop and waits for it (at most 30 s, then kills it). Returns fn's
 * result, or -1 when the service died or had to be killed. Frees s. */
int mt_service_stop(mt_service_t *s);

#endif
