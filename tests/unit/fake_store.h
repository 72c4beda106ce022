/* A tiny PyTorch c10d TCPStore server for tests: the torch 2.x wire protocol, just the
 * commands bootstrap/torch_store.c sends (VALIDATE, PING, SET, COMPARE_SET, GET, ADD, WAIT,
 * GETNUMKEYS, DELETE, MULTI_GET), one thread per client, keys in memory. A test plants a
 * fault (a value of the wrong length, a reply that resets the connection) to see what the
 * client does with a store it cannot trust: the real server cannot be made to lie.
 *
 * The server runs in a process of its own (tests/lib/service.h): start it before forking
 * ranks (mt_run_ranks). */
#ifndef MNNVL_TEST_FAKE_STORE_H
#define MNNVL_TEST_FAKE_STORE_H

#include <stddef.h>

typedef enum fake_fault {
    FAKE_NONE = 0,
    /* Every GET/MULTI_GET reply for a key ending in `suffix` carries `len` bytes instead of
     * the stored value (its bytes, then zeros). */
    FAKE_VALUE_LENGTH,
    /* The first GET/MULTI_GET of a key ending in `suffix` is answered with "garbage" (only
     * that client's read is wrong). */
    FAKE_FIRST_READ_GARBLED,
    /* Every GET/MULTI_GET reply for a key ending in `suffix` has its byte at offset `len`
     * flipped (xor 1). */
    FAKE_FLIP_BYTE,
    /* (fake_store_start_moved) Every GET/MULTI_GET of a key ending in `suffix` is answered
     * with the last value ever SET under the same key ending in `other` instead, and the
     * other way round: two ranks' values swapped. */
    FAKE_SWAP,
    /* (fake_store_start_moved) Every GET/MULTI_GET of a key ending in `suffix` is answered
     * with the last value ever SET under the key ending in `other` (deleted since or not):
     * a replay of an earlier round's value. */
    FAKE_REPLAY,
} fake_fault_t;

typedef struct fake_store fake_store_t;

/* Listens on 127.0.0.1 (a free port) and serves until fake_store_stop. NULL on failure. */
fake_store_t *fake_store_start(fake_fault_t fault, const char *suffix, size_t len);

/* A store that answers reads of one key with another key's value (FAKE_SWAP, FAKE_REPLAY). */
fake_store_t *fake_store_start_moved(fake_fault_t fault, const char *suffix, const char *other);

/* "127.0.0.1:<port>", owned by the store. */
const char *fake_store_address(const fake_store_t *s);

/* Stops the store and returns how many replies its fault changed, or -1 when the store's
 * process failed. */
int fake_store_stop(fake_store_t *s);

#endif
