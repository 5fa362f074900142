/* Addresses and routes as text: what parses, what does not, and that what
 * is formatted parses back to the same. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "common/netaddr.h"

Test(netaddr, macs)
{
	uint8_t mac[6];
	char text[18];

	cr_assert_eq(net_parse_mac("52:54:00:Ab:cd:EF", mac), 0);
	net_format_mac(mac, text);
	cr_expect_str_eq(text, "52:54:00:ab:cd:ef");
	const char *bad[] = { "", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:", "52-54-00-ab-cd-ef",
			      "52:54:00:ab:cd:eg", "5:54:00:ab:cd:ef" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(net_parse_mac(bad[i], mac), -1, "%s", bad[i]);
}

Test(netaddr, addresses_with_their_prefix)
{
	struct nl_addr a;
	char text[NETADDR_TEXT_MAX];

	cr_assert_eq(net_parse_cidr("10.0.0.2/24", &a), 0);
	cr_expect_eq(a.family, AF_INET);
	cr_expect_eq(a.prefix, 24);
	cr_assert_eq(net_format_cidr(&a, text, sizeof(text)), 0);
	cr_expect_str_eq(text, "10.0.0.2/24");
	cr_assert_eq(net_parse_cidr("fd00::2/64", &a), 0);
	cr_expect_eq(a.family, AF_INET6);
	cr_assert_eq(net_format_cidr(&a, text, sizeof(text)), 0);
	cr_expect_str_eq(text, "fd00::2/64");
	const char *bad[] = { "10.0.0.2", "10.0.0.2/33", "fd00::2/129", "10.0.0.2/", "10.0.0.2/024",
			      "10.0.0/24", "/24", "10.0.0.2/2x", "host/24" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(net_parse_cidr(bad[i], &a), -1, "%s", bad[i]);
}

Test(netaddr, routes_as_ip_writes_them)
{
	struct nl_route r;
	char text[NETADDR_TEXT_MAX];
	const char *good[] = { "default via 10.0.0.1", "10.1.0.0/16 via 10.0.0.254", "10.2.0.0/16",
			       "default via fe80::1", "fd01::/48 via fd00::1" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(net_parse_route(good[i], &r), 0, "%s", good[i]);
		cr_assert_eq(net_format_route(&r, text, sizeof(text)), 0, "%s", good[i]);
		cr_expect_str_eq(text, good[i]);
	}
	cr_assert_eq(net_parse_route("default via 10.0.0.1", &r), 0);
	cr_expect_eq(r.dst_len, 0);
	cr_expect(r.has_gw);
	const char *bad[] = { "default", "", "via 10.0.0.1", "10.1.0.0/16 via fd00::1", "10.1.0.0 via 10.0.0.1",
			      "default via", "default via 10.0.0.300", "10.1.0.0/16 dev eth0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(net_parse_route(bad[i], &r), -1, "%s", bad[i]);
}
