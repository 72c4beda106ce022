#include "rank_threads.h"

#include <criterion/criterion.h>
#include <pthread.h>

void mt_run_threads(int n, void *(*fn)(void *), void *items, size_t item_size)
{
    pthread_t t[MT_MAX_THREADS];
    cr_assert(n > 0 && n <= MT_MAX_THREADS, "mt_run_threads: %d threads", n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, fn, (char *)items + (size_t)i * item_size), 0,
                     "thread %d of %d did not start", i, n);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}
