/* The one host:port rule (base/hostport.h): what it accepts, how it splits it, and that
 * every refusal names the address. Built from base/hostport.c alone (it is hidden inside
 * libmnnvl.so); the config keys root and store and the bootstraps all read addresses with
 * it, so test_config's root/store cases follow from these. */
#include <criterion/criterion.h>
#include <string.h>

#include "hostport.h"

static void accepts(const char *address, int flags, const char *host, const char *port, int number,
                    int ipv6)
{
    mnnvl_hostport_t hp;
    char why[400] = "";
    cr_assert_eq(mnnvl_hostport_parse(address, flags, &hp, why, sizeof(why)), MNNVL_SUCCESS,
                 "'%s' refused: %s", address, why);
    cr_expect_str_eq(hp.host, host, "host of '%s'", address);
    cr_expect_str_eq(hp.port, port, "port of '%s'", address);
    cr_expect_eq(hp.port_number, number, "port number of '%s'", address);
    cr_expect_eq(hp.ipv6, ipv6, "ipv6 of '%s'", address);
}

static void refuses(const char *address, int flags, const char *says)
{
    mnnvl_hostport_t hp;
    char why[400] = "";
    cr_assert_eq(mnnvl_hostport_parse(address, flags, &hp, why, sizeof(why)),
                 MNNVL_ERR_INVALID_ARGUMENT, "'%s' accepted", address ? address : "(null)");
    cr_expect(strstr(why, says) != NULL, "'%s': '%s' lacks '%s'", address ? address : "(null)", why,
              says);
    if (address && *address && strlen(address) < 100)
        cr_expect(strstr(why, address) != NULL, "'%s' not named in '%s'", address, why);
}

Test(hostport, splits_names_ipv4_and_bracketed_ipv6)
{
    accepts("localhost:29500", 0, "localhost", "29500", 29500, 0);
    accepts("10.0.0.1:65535", 0, "10.0.0.1", "65535", 65535, 0);
    accepts("node-7.cluster.example:0", 0, "node-7.cluster.example", "0", 0, 0);
    accepts("[::1]:1", 0, "::1", "1", 1, 1);
    accepts("[fe80::1%eth0]:80", 0, "fe80::1%eth0", "80", 80, 1);
    accepts("[::ffff:10.0.0.1]:443", 0, "::ffff:10.0.0.1", "443", 443, 1);
    accepts("h:00080", 0, "h", "00080", 80, 0);
}

Test(hostport, empty_host_only_for_listening)
{
    accepts(":29500", MNNVL_HOSTPORT_LISTEN, "", "29500", 29500, 0);
    refuses(":29500", 0, "no host");
    refuses("[]:80", MNNVL_HOSTPORT_LISTEN, "empty IPv6 address");
}

Test(hostport, refuses_what_would_fail_later)
{
    refuses(NULL, 0, "empty");
    refuses("", MNNVL_HOSTPORT_LISTEN, "empty");
    refuses("nohostport", 0, "has no port");
    refuses("host:", 0, "expected a number from 0 to 65535");
    refuses("host:99999", 0, "expected a number from 0 to 65535");
    refuses("host:123456", 0, "expected a number from 0 to 65535");
    refuses("host:+80", 0, "expected a number from 0 to 65535");
    refuses("host: 80", 0, "expected a number from 0 to 65535");
    refuses("host:80 ", 0, "expected a number from 0 to 65535");
    refuses("host:80/x", 0, "expected a number from 0 to 65535");
    refuses("a:b:c:1", 0, "bare IPv6");
    refuses("::1:80", 0, "bare IPv6");
    refuses("[::1:80", 0, "lacks ']:port'");
    refuses("[::1]80", 0, "lacks ']:port'");
    refuses("[::1]", 0, "lacks ']:port'");
    refuses("[10.0.0.1]:80", 0, "no IPv6 address inside the brackets");
    refuses("[host]:80", 0, "no IPv6 address inside the brackets");
    refuses("[::1x]:80", 0, "inside the brackets");
    refuses("[fe80::1%]:80", 0, "no IPv6 address inside the brackets");
    refuses("my host:80", 0, "0x20 in its host");
    refuses("ho]st:80", 0, "in its host");
    refuses("ho\tst:80", 0, "0x09 in its host");
}

Test(hostport, host_length_is_bounded)
{
    char address[400];
    memset(address, 'a', MNNVL_HOST_MAX - 1);
    strcpy(address + MNNVL_HOST_MAX - 1, ":1");
    mnnvl_hostport_t hp;
    cr_assert_eq(mnnvl_hostport_parse(address, 0, &hp, NULL, 0), MNNVL_SUCCESS);
    cr_expect_eq(strlen(hp.host), (size_t)MNNVL_HOST_MAX - 1);
    memset(address, 'a', MNNVL_HOST_MAX);
    strcpy(address + MNNVL_HOST_MAX, ":1");
    char why[600] = "";
    cr_assert_eq(mnnvl_hostport_parse(address, 0, &hp, why, sizeof(why)),
                 MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(why, "at most 255 fit") != NULL, "%s", why);
}

Test(hostport, why_may_be_null_or_short)
{
    mnnvl_hostport_t hp;
    cr_expect_eq(mnnvl_hostport_parse("x", 0, &hp, NULL, 0), MNNVL_ERR_INVALID_ARGUMENT);
    char why[8];
    cr_expect_eq(mnnvl_hostport_parse("nohostport", 0, &hp, why, sizeof(why)),
                 MNNVL_ERR_INVALID_ARGUMENT);
    cr_expect_eq(strlen(why), sizeof(why) - 1, "truncated to its buffer");
}
