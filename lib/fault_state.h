/* The fault record of a communicator, shared by lib/fault.c (the record, the watcher) and
 * lib/fault_device.c (the device mask and the control block's words). */
#ifndef MNNVL_FAULT_STATE_H
#define MNNVL_FAULT_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fault.h"

typedef struct mnnvl_rank_seen {
    int reason;       /* MNNVL_DEAD_*, 0 while alive */
    int64_t since_ms; /* CLOCK_REALTIME when this process first saw it */
} mnnvl_rank_seen_t;

struct mnnvl_fault_state {
    pthread_mutex_t lock;    /* seen, failed, and the writes of note() */
    mnnvl_rank_seen_t *seen; /* [comm->size] */
    int failed;
    /* One byte per rank below byte_ranks: the control block's `dead` with a device, else
     * own_bytes. */
    uint8_t *dead;
    uint8_t own_bytes[MNNVL_FT_RANKS];
    int byte_ranks;
    volatile uint64_t *error_word; /* the control block's async error word; NULL: CPU-only */
    unsigned long long *mask;      /* device address of the mask; NULL: CPU-only or none */
    int peer_timeout_ms;           /* the config key's value */
    pthread_t watcher;
    int watching;
    atomic_int stop;
};

/* The device part of setup (CUDA builds; the context is current): the byte array and the
 * error word of the control block, the mask in device memory (zeroed). Logs when the mask
 * cannot be allocated and leaves f->mask NULL. Local. */
void mnnvl_fault_device_setup(mnnvl_comm_t comm, mnnvl_fault_state_t *f);

/* Frees the mask. Local. */
void mnnvl_fault_device_teardown(mnnvl_comm_t comm, mnnvl_fault_state_t *f);

#endif
