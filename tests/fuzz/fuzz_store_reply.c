/* libFuzzer harness for the torch-store bootstrap's reading of what a TCPStore answers
 * (bootstrap/torch_store.c over bootstrap/tcpstore_client.c): the store authenticates
 * nobody, so every reply is hostile input. The first 4 bytes pick the rank and size, the
 * bytes per collective, the value limit and the protocol generation; the rest is the
 * store's side of the connection, sent as it is. Tags are not checked
 * (mnnvl_torch_store_feed), so that the fuzzer reaches the length, header and outcome
 * checks; the rank must fail or succeed cleanly, never write past a buffer. */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/torch_store.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > FUZZ_MAX_STREAM)
        return 0;
    fuzz_quiet_logs();
    int group = 1 + (data[0] & 3);
    int rank = (data[0] >> 2 & 3) % group;
    size_t bytes = (size_t)data[1] * 4;
    size_t max_value = data[2] ? 40 + (size_t)data[2] * 4 : 0; /* 0: the real limit */
    int modern = data[3] & 1;
    int sv[2];
    if (fuzz_socketpair(data + 4, size - 4, sv) != 0)
        return 0;
    mnnvl_torch_store_feed(sv[0], rank, group, bytes, max_value, modern); /* closes sv[0] */
    close(sv[1]);
    return 0;
}
