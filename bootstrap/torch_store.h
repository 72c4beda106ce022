/* The torch-store bootstrap's one entry beyond bootstrap.h, for fuzz harnesses
 * (tests/fuzz/fuzz_store_reply.c), which compile torch_store.c in. Not part of the
 * library's API. */
#ifndef MNNVL_TORCH_STORE_H
#define MNNVL_TORCH_STORE_H

#include <stddef.h>

/* Runs rank `rank` of `size` over `fd`, a connected socket whose peer plays the store with
 * what it sends: the join, creation's rounds, an allgather and a broadcast of `bytes` each
 * and a barrier, then the leave, until the first failure. Values are cut at `max_value`
 * (when it is between the smallest and the real limit) and their tags are not checked, so
 * that a fuzzer reaches the length and header checks. Takes fd (closed at the end). */
void mnnvl_torch_store_feed(int fd, int rank, int size, size_t bytes, size_t max_value, int modern);

#endif
