/* host:port parsing; the rule is in hostport.h. */
#include "hostport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static mnnvl_status_t refuse(char *why, size_t why_len,
                                                                   const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return MNNVL_ERR_INVALID_ARGUMENT;
}

static int plain_host_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']';
}

mnnvl_status_t mnnvl_hostport_parse(const char *address, int flags, mnnvl_hostport_t *out,
                                    char *why, size_t why_len)
{
    if (!address || !*address)
        return refuse(why, why_len, "the address is empty; expected host:port");
    const char *host = address;
    const char *host_end;
    const char *colon;
    int ipv6 = address[0] == '[';
    if (ipv6) {
        host = address + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return refuse(why, why_len, "address '%s' lacks ']:port' after the IPv6 address",
                          address);
        if (host_end == host)
            return refuse(why, why_len, "address '%s' has an empty IPv6 address", address);
        /* Hex digits, ':' and '.' (an embedded IPv4 address), then an optional zone
         * ("%eth0") of plain characters. */
        const char *zone = memchr(host, '%', (size_t)(host_end - host));
        const char *digits_end = zone ? zone : host_end;
        if (!memchr(host, ':', (size_t)(digits_end - host)) || zone == host_end - 1)
            return refuse(why, why_len, "address '%s' has no IPv6 address inside the brackets",
                          address);
        for (const char *p = host; p < host_end; p++) {
            int ok = p < digits_end ? strchr("0123456789abcdefABCDEF:.", *p) != NULL
                                    : p == zone || plain_host_char((unsigned char)*p);
            if (!ok)
                return refuse(why, why_len,
                              "address '%s' has the byte 0x%02x inside the brackets, where an "
                              "IPv6 address belongs",
                              address, (unsigned char)*p);
        }
        colon = host_end + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon)
            return refuse(why, why_len, "address '%s' has no port; expected host:port", address);
        if (memchr(address, ':', (size_t)(colon - address)))
            return refuse(why, why_len,
                          "address '%s' looks like a bare IPv6 address; write it as [addr]:port",
                          address);
        host_end = colon;
        for (const char *p = host; p < host_end; p++)
            if (!plain_host_char((unsigned char)*p))
                return refuse(why, why_len, "address '%s' has the byte 0x%02x in its host", address,
                              (unsigned char)*p);
        if (host_end == host && !(flags & MNNVL_HOSTPORT_LISTEN))
            return refuse(why, why_len,
                          "address '%s' has no host; expected host:port (an empty host, every "
                          "interface, is only for listening)",
                          address);
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen >= MNNVL_PORT_MAX || strspn(port, "0123456789") != plen)
        return refuse(why, why_len, "address '%s' has port '%s'; expected a number from 0 to 65535",
                      address, port);
    int number = 0;
    for (size_t i = 0; i < plen; i++)
        number = number * 10 + (port[i] - '0');
    if (number > 65535)
        return refuse(why, why_len, "address '%s' has port '%s'; expected a number from 0 to 65535",
                      address, port);
    size_t hlen = (size_t)(host_end - host);
    if (hlen >= MNNVL_HOST_MAX)
        return refuse(why, why_len, "address '%s' has a host of %zu bytes; at most %d fit", address,
                      hlen, MNNVL_HOST_MAX - 1);
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    memcpy(out->port, port, plen + 1);
    out->port_number = number;
    out->ipv6 = ipv6;
    return MNNVL_SUCCESS;
}
