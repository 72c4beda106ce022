/* Operations of the star transports faked by star.c's tests (test_star_auth's in-process
 * transport, fuzz_star's script): sends that complete when started, nothing to progress
 * outside a wait, and links that need no setup. Both programs compile this file in. */
#ifndef MNNVL_TEST_STAR_STUB_H
#define MNNVL_TEST_STAR_STUB_H

#include "bootstrap/plugins/star.h"

/* send_test: always sent. */
int star_stub_send_test(star_t *st, star_send_t *s);

/* poll: nothing to progress (0 events). */
int star_stub_poll(star_t *st);

/* adopt: the HELLO's sender needs no link of its own. */
mnnvl_status_t star_stub_adopt(star_t *st, star_msg_t *hello);

#endif
