/* The one host:port parser of the tree: the config keys root and store, the tcp bootstrap's
 * sockets, mnnvl-store's --listen, and the ucx and ofi plugins' root all read addresses with
 * it, so that an address accepted in one place means the same everywhere.
 *
 * The rule (strict on purpose: a value that is refused here would otherwise fail later, at
 * connect time, on one rank only):
 *   host:port       host is a name or an IPv4 address: no ':', '[', ']', space or control
 *                   character, at most MNNVL_HOST_MAX - 1 bytes;
 *   [ipv6]:port     an IPv6 address in brackets, not empty;
 *   port            1 to 5 decimal digits, 0 to 65535 (0: any free port, for listening);
 *   :port           an empty host, only with MNNVL_HOSTPORT_LISTEN: every interface.
 * Nothing else: no bare IPv6 address, no missing port, no text after the port. */
#ifndef MNNVL_BASE_HOSTPORT_H
#define MNNVL_BASE_HOSTPORT_H

#include <stddef.h>

#include "mnnvl.h"

#define MNNVL_HOST_MAX 256 /* a DNS name is at most 253 bytes */
#define MNNVL_PORT_MAX 6   /* "65535" */

/* For addresses to listen on: an empty host means every interface. */
#define MNNVL_HOSTPORT_LISTEN 1

typedef struct mnnvl_hostport {
    char host[MNNVL_HOST_MAX]; /* without the brackets of an IPv6 address */
    char port[MNNVL_PORT_MAX];
    int port_number;
    int ipv6; /* it was written in brackets */
} mnnvl_hostport_t;

/* Splits `address` by the rule above. On failure returns INVALID_ARGUMENT and writes into
 * `why` (of `why_len` bytes, may be NULL) a sentence naming the address and what is wrong
 * with it; `out` is then unspecified. Touches no global state (no last error), so that the
 * plugins can compile it in. */
mnnvl_status_t mnnvl_hostport_parse(const char *address, int flags, mnnvl_hostport_t *out,
                                    char *why, size_t why_len);

#endif
