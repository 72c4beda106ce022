/* Ranks as threads of the test process: the tests that run a bootstrap's ranks side by side
 * in one process (and share nothing but its sockets or in-process transport). Kept apart from
 * testutil.h because the programs built from the bootstrap sources compile this file in
 * instead of linking libmnnvltest. */
#ifndef MNNVL_TEST_RANK_THREADS_H
#define MNNVL_TEST_RANK_THREADS_H

#include <stddef.h>

/* Runs fn(items + i * item_size) on a thread of its own for each i < n and waits for all of
 * them; fails the test when a thread cannot be started. n is at most MT_MAX_THREADS. */
#define MT_MAX_THREADS 16
void mt_run_threads(int n, void *(*fn)(void *), void *items, size_t item_size);

#endif
