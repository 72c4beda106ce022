/* libFuzzer harness for the tcp root's message handling (bootstrap/tcp_root.c): the input is
 * what one connection that proved the job key sends, HELLO and then member messages, as
 * plain frames (mnnvl_tcp_root_feed skips their MACs). The root must refuse or handle every
 * byte without a crash, a leak or an unbounded allocation. */
#include <stddef.h>
#include <stdint.h>

#include "bootstrap/tcp.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    mnnvl_tcp_root_feed(data, size);
    return 0;
}
