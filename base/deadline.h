/* The one clock and timeout helper on the host: monotonic milliseconds and deadlines in
 * them. Header-only, so that the bootstrap plugins use the same clock. */
#ifndef MNNVL_DEADLINE_H
#define MNNVL_DEADLINE_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mnnvl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The same clock with sub-millisecond precision, for measurements (the benchmarks). */
static inline double mnnvl_now_ms_precise(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wall-clock milliseconds (CLOCK_REALTIME), for times handed to users, which they compare
 * across processes and hosts (mnnvl_rank_failure_t's since_ms); never for deadlines. */
static inline int64_t mnnvl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t mnnvl_deadline_after(int timeout_ms)
{
    return mnnvl_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
}

/* Milliseconds left before `deadline`, 0 when it has passed; fits poll()'s int. */
static inline int mnnvl_deadline_left(uint64_t deadline)
{
    uint64_t now = mnnvl_now_ms();
    if (now >= deadline)
        return 0;
    uint64_t left = deadline - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

#endif
