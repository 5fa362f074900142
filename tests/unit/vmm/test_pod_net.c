/* pod_net against a namespace set up as CNI leaves a pod's (ip netns add, a
 * veth with an address and a default route), from a network namespace of the
 * test's own: what the guest is told, the tap and the redirects as ip(8) and
 * tc(8) show them, and that the caller's namespace is the same afterwards. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/pod_net.h"

static char pod[64], pod_path[96];

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* What a command prints, for checks by substring. */
static char *output(const char *cmd)
{
	static char buf[2048];
	FILE *p = popen(cmd, "r");

	cr_assert_not_null(p);
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	pclose(p);
	return buf;
}

static ino_t my_netns(void)
{
	struct stat st;

	cr_assert_eq(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

static void setup(void)
{
	snprintf(pod, sizeof(pod), "rvut-pod-%d", getpid());
	snprintf(pod_path, sizeof(pod_path), "/run/netns/%s", pod);
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	sh("ip netns add %s", pod);
	sh("ip link add h0 type veth peer name eth0 netns %s", pod);
	sh("ip -n %s link set eth0 up mtu 1400 && ip -n %s addr add 10.5.0.2/24 dev eth0 && "
	   "ip -n %s route add default via 10.5.0.1", pod, pod, pod);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", pod);
	if (system(cmd) != 0) {
		/* already gone */
	}
}

TestSuite(pod_net, .init = setup, .fini = teardown, .timeout = 30);

Test(pod_net, gives_the_guest_the_veths_mac_mtu_addresses_and_routes)
{
	struct pod_net pn;
	struct rv_err err;
	ino_t home = my_netns();

	cr_assert_eq(pod_net_attach(pod_path, &pn, &err), 0, "%s", err.msg);
	cr_expect_eq(my_netns(), home, "back in the caller's namespace");
	cr_assert_geq(pn.tap_fd, 0);
	cr_expect_str_eq(pn.veth, "eth0");
	cr_expect_eq(pn.mtu, 1400);
	cr_assert_eq(pn.naddrs, 1);
	cr_expect_str_eq(pn.addrs[0], "10.5.0.2/24");
	cr_assert_eq(pn.nroutes, 2);
	cr_expect_str_eq(pn.routes[0], "10.5.0.0/24", "on-link first");
	cr_expect_str_eq(pn.routes[1], "default via 10.5.0.1");

	char want_mac[18], cmd[160];
	net_format_mac(pn.mac, want_mac);
	snprintf(cmd, sizeof(cmd), "ip -n %s -o link show eth0", pod);
	cr_expect_not_null(strstr(output(cmd), want_mac), "the MAC is eth0's");

	struct pod_net_conf conf;
	pod_net_conf(&pn, &conf);
	cr_expect_str_eq(conf.nc.mac, want_mac);
	cr_expect_eq(conf.nc.mtu, 1400);
	cr_expect_eq(conf.nc.naddrs, 1);
	cr_expect_str_eq(conf.nc.routes[1], "default via 10.5.0.1");
	cr_expect_eq(conf.vnet.tap_fd, pn.tap_fd);
	cr_expect_eq(conf.vnet.mtu, 1400);
	cr_expect_eq(memcmp(conf.vnet.mac, pn.mac, 6), 0);

	snprintf(cmd, sizeof(cmd), "ip -n %s -o link show %s", pod, pn.tap);
	const char *tap = output(cmd);
	cr_expect_not_null(strstr(tap, "mtu 1400"), "%s", tap);
	cr_expect_not_null(strstr(tap, "UP"), "%s", tap);
	snprintf(cmd, sizeof(cmd), "tc -n %s filter show dev eth0 ingress", pod);
	char redirect[64];
	snprintf(redirect, sizeof(redirect), "Egress Redirect to device %s", pn.tap);
	cr_expect_not_null(strstr(output(cmd), redirect), "eth0 -> tap");
	snprintf(cmd, sizeof(cmd), "tc -n %s filter show dev %s ingress", pod, pn.tap);
	cr_expect_not_null(strstr(output(cmd), "Egress Redirect to device eth0"), "tap -> eth0");

	pod_net_detach(&pn);
	cr_expect_eq(pn.tap_fd, -1);
	snprintf(cmd, sizeof(cmd), "tc -n %s qdisc show dev eth0", pod);
	cr_expect_null(strstr(output(cmd), "ingress"), "the redirect is gone");
	snprintf(cmd, sizeof(cmd), "ip -n %s -o link", pod);
	cr_expect_null(strstr(output(cmd), "runvm"), "and the tap");
	pod_net_detach(&pn);   /* twice is fine */
}

/* A killed VMM's filter redirects to a tap that is gone; left there, it
 * would match first and drop everything. */
Test(pod_net, replaces_a_redirect_a_killed_vmm_left)
{
	struct pod_net pn;
	struct rv_err err;
	char cmd[256];

	sh("ip -n %s link add gone0 type veth peer name gone1", pod);
	sh("tc -n %s qdisc add dev eth0 ingress && tc -n %s filter add dev eth0 parent ffff: "
	   "protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev gone0", pod, pod);
	sh("ip -n %s link del gone0", pod);
	cr_assert_eq(pod_net_attach(pod_path, &pn, &err), 0, "%s", err.msg);
	snprintf(cmd, sizeof(cmd), "tc -n %s filter show dev eth0 ingress | grep -c 'Egress Redirect'", pod);
	cr_expect_eq(atoi(output(cmd)), 1, "one redirect");
	snprintf(cmd, sizeof(cmd), "tc -n %s filter show dev eth0 ingress", pod);
	char want[64];
	snprintf(want, sizeof(want), "Egress Redirect to device %s", pn.tap);
	cr_expect_not_null(strstr(output(cmd), want), "%s", output(cmd));
	pod_net_detach(&pn);
}

Test(pod_net, a_namespace_another_sandbox_uses_is_refused_and_kept)
{
	struct pod_net first, second;
	struct rv_err err;
	char cmd[256], want[64];

	cr_assert_eq(pod_net_attach(pod_path, &first, &err), 0, "%s", err.msg);
	cr_assert_eq(pod_net_attach(pod_path, &second, &err), -1);
	cr_expect_eq(err.code, EBUSY);
	cr_expect_not_null(strstr(err.msg, first.tap), "%s", err.msg);
	cr_assert_eq(pod_net_release(pod_path, &err), 0, "%s", err.msg);
	snprintf(cmd, sizeof(cmd), "tc -n %s filter show dev eth0 ingress", pod);
	snprintf(want, sizeof(want), "Egress Redirect to device %s", first.tap);
	cr_expect_not_null(strstr(output(cmd), want), "neither the refusal nor a release undid it");
	pod_net_detach(&first);
}

Test(pod_net, a_namespace_with_lo_only_gives_no_interface)
{
	struct pod_net pn;
	struct rv_err err;

	sh("ip -n %s link del eth0", pod);
	cr_assert_eq(pod_net_attach(pod_path, &pn, &err), 0, "%s", err.msg);
	cr_expect_eq(pn.tap_fd, -1);
	pod_net_detach(&pn);
}

Test(pod_net, two_interfaces_are_refused_by_name_and_leave_nothing)
{
	struct pod_net pn;
	struct rv_err err;
	char cmd[128];
	ino_t home = my_netns();

	sh("ip -n %s link add extra0 type veth peer name extra1", pod);
	cr_assert_eq(pod_net_attach(pod_path, &pn, &err), -1);
	cr_expect_not_null(strstr(err.msg, "eth0"), "%s", err.msg);
	cr_expect_not_null(strstr(err.msg, "extra0"), "%s", err.msg);
	cr_expect_not_null(strstr(err.msg, pod_path), "%s", err.msg);
	cr_expect_eq(my_netns(), home);
	snprintf(cmd, sizeof(cmd), "ip -n %s -o link", pod);
	cr_expect_null(strstr(output(cmd), "runvm"));
}

Test(pod_net, a_missing_namespace_is_named)
{
	struct pod_net pn;
	struct rv_err err;

	cr_assert_eq(pod_net_attach("/run/netns/rvut-no-such-pod", &pn, &err), -1);
	cr_expect_eq(err.code, ENOENT);
	cr_expect_not_null(strstr(err.msg, "/run/netns/rvut-no-such-pod"), "%s", err.msg);
	pod_net_detach(&pn);
}

Test(pod_net, a_file_that_is_not_a_namespace_is_named)
{
	struct pod_net pn;
	struct rv_err err;

	cr_assert_eq(pod_net_attach("/etc/hostname", &pn, &err), -1);
	cr_expect_not_null(strstr(err.msg, "not a network namespace"), "%s", err.msg);
}

Test(pod_net, release_removes_what_a_killed_vmm_left)
{
	struct pod_net pn;
	struct rv_err err;
	char cmd[128];

	/* A killed VMM: its tap went with its fd, its redirect stayed. */
	cr_assert_eq(pod_net_attach(pod_path, &pn, &err), 0, "%s", err.msg);
	close(pn.tap_fd);
	pn.tap_fd = -1;
	cr_assert_eq(pod_net_release(pod_path, &err), 0, "%s", err.msg);
	snprintf(cmd, sizeof(cmd), "tc -n %s qdisc show dev eth0", pod);
	cr_expect_null(strstr(output(cmd), "ingress"));
	cr_expect_eq(pod_net_release(pod_path, &err), 0, "nothing left is fine: %s", err.msg);
	cr_expect_eq(pod_net_release("/run/netns/rvut-no-such-pod", &err), -1);
	cr_expect_eq(err.code, ENOENT);
	pod_net_detach(&pn);
}
