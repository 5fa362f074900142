/* rtnetlink in a network namespace of the test's own, with a veth pair
 * made by ip(8): links, addresses and routes read back as set, and the tc
 * redirect as tc(8) shows it. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/netlink.h"

static struct nl nl;

static void setup(void)
{
	struct rv_err err;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(system("ip link add v0 type veth peer name v1"), 0);
	cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	nl_close(&nl);
}

TestSuite(netlink, .init = setup, .fini = teardown, .timeout = 20);

/* What a command prints (tc's view), for checks by substring. */
static const char *output(const char *cmd)
{
	static char buf[512];
	FILE *p = popen(cmd, "r");

	cr_assert_not_null(p, "%s", cmd);
	size_t got = fread(buf, 1, sizeof(buf) - 1, p);
	buf[got] = '\0';
	pclose(p);
	return buf;
}

static struct nl_link link_named(const char *name)
{
	struct nl_link k;
	struct rv_err err;

	cr_assert_eq(nl_link_by_name(&nl, name, &k, &err), 0, "%s", err.msg);
	return k;
}

Test(netlink, lists_the_links_of_its_namespace)
{
	struct nl_link links[8];
	unsigned n;
	struct rv_err err;

	cr_assert_eq(nl_links(&nl, links, 8, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 3, "lo, v0, v1");
	cr_expect(links[0].loopback);
	cr_expect_str_eq(links[0].name, "lo");
	for (unsigned i = 1; i < n; i++) {
		cr_expect(!links[i].loopback);
		cr_expect(links[i].has_mac);
		cr_expect_eq(links[i].mtu, 1500);
	}
	cr_expect_eq(nl_links(&nl, links, 2, &n, &err), -1, "more links than room");
}

Test(netlink, sets_a_link_up_with_its_mtu_and_mac)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
	struct rv_err err;
	struct nl_link v0 = link_named("v0");

	cr_assert_eq(nl_link_set(&nl, v0.index, true, 1400, mac, &err), 0, "%s", err.msg);
	v0 = link_named("v0");
	cr_expect(v0.flags & IFF_UP);
	cr_expect_eq(v0.mtu, 1400);
	cr_expect_eq(memcmp(v0.mac, mac, 6), 0);
}

Test(netlink, a_missing_link_is_an_error_naming_it)
{
	struct nl_link k;
	struct rv_err err;

	cr_expect_eq(nl_link_by_name(&nl, "nope0", &k, &err), -1);
	cr_expect_eq(err.code, ENODEV);
	cr_expect_not_null(strstr(err.msg, "nope0"), "%s", err.msg);
}

Test(netlink, addresses_and_routes_read_back_as_added)
{
	struct rv_err err;
	struct nl_link v0 = link_named("v0");
	struct nl_addr a4 = { .family = AF_INET, .prefix = 24 }, a6 = { .family = AF_INET6, .prefix = 64 };
	struct nl_route def = { .family = AF_INET, .has_gw = true, .oif = v0.index };

	inet_pton(AF_INET, "10.9.0.2", a4.addr);
	inet_pton(AF_INET6, "2001:db8::2", a6.addr);
	inet_pton(AF_INET, "10.9.0.1", def.gw);
	cr_assert_eq(nl_link_set(&nl, v0.index, true, 0, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(nl_addr_add(&nl, v0.index, &a4, &err), 0, "%s", err.msg);
	cr_assert_eq(nl_addr_add(&nl, v0.index, &a6, &err), 0, "%s", err.msg);
	cr_assert_eq(nl_route_add(&nl, &def, &err), 0, "%s", err.msg);

	struct nl_addr got[NL_MAX_ADDRS];
	unsigned n;
	cr_assert_eq(nl_addrs(&nl, v0.index, got, NL_MAX_ADDRS, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 2);
	cr_expect_eq(memcmp(&got[0], &a4, sizeof(a4)), 0);
	cr_expect_eq(memcmp(&got[1], &a6, sizeof(a6)), 0);

	struct nl_route routes[NL_MAX_ROUTES];
	cr_assert_eq(nl_routes(&nl, v0.index, routes, NL_MAX_ROUTES, &n, &err), 0, "%s", err.msg);
	bool saw_default = false, saw_net = false;
	for (unsigned i = 0; i < n; i++) {
		if (routes[i].family != AF_INET)
			continue;
		if (routes[i].dst_len == 0 && routes[i].has_gw && !memcmp(routes[i].gw, def.gw, 4))
			saw_default = true;
		if (routes[i].dst_len == 24 && !routes[i].has_gw)
			saw_net = true;
	}
	cr_expect(saw_default, "the default route via 10.9.0.1");
	cr_expect(saw_net, "the connected 10.9.0.0/24");
}

Test(netlink, a_redirect_is_an_ingress_qdisc_and_a_mirred_filter, .timeout = 20)
{
	struct rv_err err;
	struct nl_link v0 = link_named("v0"), v1 = link_named("v1");

	cr_assert_eq(nl_redirect(&nl, v0.index, v1.index, &err), 0, "%s", err.msg);
	const char *line = output("tc filter show dev v0 ingress");
	cr_expect_not_null(strstr(line, "u32"), "%s", line);
	cr_expect_not_null(strstr(line, "Egress Redirect to device v1"), "%s", line);
}

Test(netlink, a_redirect_removed_leaves_no_qdisc_and_can_be_made_again, .timeout = 20)
{
	struct rv_err err;
	struct nl_link v0 = link_named("v0"), v1 = link_named("v1");

	cr_assert_eq(nl_redirect(&nl, v0.index, v1.index, &err), 0, "%s", err.msg);
	cr_assert_eq(nl_redirect_remove(&nl, v0.index, &err), 0, "%s", err.msg);
	const char *line = output("tc qdisc show dev v0");
	cr_expect_null(strstr(line, "ingress"), "%s", line);
	cr_expect_eq(nl_redirect_remove(&nl, v0.index, &err), 0, "none left is fine: %s", err.msg);
	cr_expect_eq(nl_redirect(&nl, v0.index, v1.index, &err), 0, "%s", err.msg);
}

Test(netlink, makes_a_veth_pair_refuses_a_taken_name_and_deletes_both_ends)
{
	struct rv_err err;
	struct nl_link a, k;

	cr_assert_eq(nl_veth_add(&nl, "va", "vb", -1, &err), 0, "%s", err.msg);
	a = link_named("va");
	link_named("vb");
	cr_expect_eq(nl_veth_add(&nl, "va", "vc", -1, &err), -1);
	cr_expect_eq(err.code, EEXIST, "%s", err.msg);
	cr_expect_not_null(strstr(err.msg, "va"), "%s", err.msg);
	cr_expect_eq(nl_veth_add(&nl, "a-name-too-long-for-linux", "vd", -1, &err), -1);
	cr_expect_eq(err.code, ENAMETOOLONG);
	cr_assert_eq(nl_link_del(&nl, a.index, &err), 0, "%s", err.msg);
	cr_expect_eq(nl_link_by_name(&nl, "vb", &k, &err), -1, "the peer went with it");
}

Test(netlink, puts_a_veths_peer_in_another_namespace)
{
	struct rv_err err;
	struct nl_link k;
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	int other = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(setns(home, CLONE_NEWNET), 0);
	cr_assert_eq(nl_veth_add(&nl, "here0", "there0", other, &err), 0, "%s", err.msg);
	link_named("here0");
	cr_expect_eq(nl_link_by_name(&nl, "there0", &k, &err), -1, "not in this namespace");
	struct nl there;
	cr_assert_eq(setns(other, CLONE_NEWNET), 0);
	cr_assert_eq(nl_open(&there, &err), 0, "%s", err.msg);
	cr_expect_eq(nl_link_by_name(&there, "there0", &k, &err), 0, "%s", err.msg);
	nl_close(&there);
	close(other);
	close(home);
}
