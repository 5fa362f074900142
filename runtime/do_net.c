#include "runtime/do_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

#define DO_NET_PREFIX 24u
#define DO_NET_INNER_IF "eth0"
#define DO_NET_HOST_IF_PREFIX "rvdo"   /* + our pid: the host's end of a veth */
#define DO_NET_MAX_LINKS 1024u
#define IP_FORWARD_SYSCTL "/proc/sys/net/ipv4/ip_forward"

extern char **environ;

/* ADDR and the address of our end: the next one up, or the one below for
 * .254, inside the same /24. */
static int parse_ip(const char *arg, struct do_net *dn, struct rv_err *err)
{
	struct in_addr a;

	if (inet_pton(AF_INET, arg, &a) != 1)
		return rv_failx(err, EINVAL, "do: --ip '%s': an IPv4 address, as %s", arg,
				DO_NET_DEFAULT_IP);
	uint32_t host = ntohl(a.s_addr), last = host & 0xff;
	if (last == 0 || last == 255)
		return rv_failx(err, EINVAL, "do: --ip %s: the VM's /%u names its network or "
				"broadcast address; pick .1 to .254", arg, DO_NET_PREFIX);
	struct in_addr peer = { htonl(last == 254 ? host - 1 : host + 1) };
	inet_ntop(AF_INET, &a, dn->ip, sizeof(dn->ip));
	inet_ntop(AF_INET, &peer, dn->peer_ip, sizeof(dn->peer_ip));
	return 0;
}

int do_net_check_ip(const char *ip, struct rv_err *err)
{
	struct do_net dn;

	return parse_ip(ip, &dn, err);
}

static struct nl_addr cidr(const char *ip)
{
	struct nl_addr a = { .family = AF_INET, .prefix = DO_NET_PREFIX };

	inet_pton(AF_INET, ip, a.addr);
	return a;
}

/* An address of this host in the VM's /24 (another runvm do's, a LAN's)
 * would make two routes to it, and one of the two networks unreachable. */
static int check_clash(struct nl *nl, const struct do_net *dn, struct rv_err *err)
{
	static __thread struct nl_link links[DO_NET_MAX_LINKS];
	struct nl_addr addrs[NL_MAX_ADDRS];
	struct nl_addr want = cidr(dn->ip);
	unsigned n, na;
	char have[INET_ADDRSTRLEN];

	if (nl_links(nl, links, DO_NET_MAX_LINKS, &n, err) < 0)
		return rv_wrap(err, "do: this host's links");
	for (unsigned i = 0; i < n; i++) {
		if (nl_addrs(nl, links[i].index, addrs, NL_MAX_ADDRS, &na, err) < 0)
			return rv_wrap(err, "do: the addresses of %s", links[i].name);
		for (unsigned k = 0; k < na; k++) {
			if (addrs[k].family != AF_INET || memcmp(addrs[k].addr, want.addr, 3))
				continue;
			inet_ntop(AF_INET, addrs[k].addr, have, sizeof(have));
			return rv_failx(err, EADDRINUSE, "do: --ip %s: this host already has %s on %s, "
					"in the same /%u (another runvm do?): pick another --ip",
					dn->ip, have, links[i].name, DO_NET_PREFIX);
		}
	}
	return 0;
}

/* A namespace held by an fd only: it goes when we do. */
static int make_netns(struct do_net *dn, struct rv_err *err)
{
	_cleanup_close_ int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (home < 0)
		return rv_fail(err, errno, "do: open this thread's network namespace");
	if (unshare(CLONE_NEWNET) < 0)
		return rv_fail(err, errno, "do: create a network namespace%s",
			       errno == EPERM ? " (--ip needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)" : "");
	dn->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int code = errno;
	if (setns(home, CLONE_NEWNET) < 0)
		return rv_fail(err, errno, "do: return to our network namespace");
	if (dn->netns_fd < 0)
		return rv_fail(err, code, "do: open the new network namespace");
	snprintf(dn->netns_path, sizeof(dn->netns_path), "/proc/self/fd/%d", dn->netns_fd);
	return 0;
}

static int open_nl(void *nl, struct rv_err *err)
{
	return nl_open(nl, err);
}

/* Inside: the inner end gets ADDR/24 and the default route through us. */
static int setup_inside(struct do_net *dn, struct rv_err *err)
{
	struct nl nl = { .fd = -1 };
	struct nl_link lo, inner;
	struct nl_addr addr = cidr(dn->ip);
	struct nl_route def = { .family = AF_INET, .has_gw = true };

	inet_pton(AF_INET, dn->peer_ip, def.gw);
	/* A socket made inside keeps talking to the namespace from outside. */
	int rc = pod_net_in_netns(dn->netns_path, open_nl, &nl, err);
	if (rc == 0 && nl_link_by_name(&nl, "lo", &lo, err) == 0 &&
	    nl_link_set(&nl, lo.index, true, 0, NULL, err) == 0 &&
	    nl_link_by_name(&nl, DO_NET_INNER_IF, &inner, err) == 0) {
		def.oif = inner.index;
		rc = nl_addr_add(&nl, inner.index, &addr, err) < 0 ||
		     nl_link_set(&nl, inner.index, true, 0, NULL, err) < 0 ||
		     nl_route_add(&nl, &def, err) < 0 ? -1 : 0;
	} else {
		rc = -1;
	}
	nl_close(&nl);
	return rc < 0 ? rv_wrap(err, "do: the VM's side of the veth") : 0;
}

static int setup_outside(struct nl *nl, struct do_net *dn, struct rv_err *err)
{
	struct nl_link host;
	struct nl_addr addr = cidr(dn->peer_ip);

	snprintf(dn->host_if, sizeof(dn->host_if), DO_NET_HOST_IF_PREFIX "%d", (int)getpid());
	if (nl_veth_add(nl, dn->host_if, DO_NET_INNER_IF, dn->netns_fd, err) < 0)
		return rv_wrap(err, "do");
	dn->veth_made = true;
	if (nl_link_by_name(nl, dn->host_if, &host, err) < 0 ||
	    nl_addr_add(nl, host.index, &addr, err) < 0 ||
	    nl_link_set(nl, host.index, true, 0, NULL, err) < 0)
		return rv_wrap(err, "do: %s", dn->host_if);
	return 0;
}

/* argv[0] from PATH, waited for; its status, or -1 with err. It takes
 * signals again (ours are blocked while the VM runs), and with quiet its
 * output goes to /dev/null. */
static int spawn_wait(const char *const argv[], bool quiet, struct rv_err *err)
{
	pid_t pid;
	int status;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none;

	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	}
	int rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc)
		return rv_fail(err, rc, "run %s", argv[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return rv_fail(err, errno, "wait for %s", argv[0]);
	return status;
}

/* iptables ARGS...; 0 when it exits 0. It waits 5 s at most for the
 * xtables lock: a stuck rule change must not hold `runvm do` at exit. */
static int iptables(const char *const args[], struct rv_err *err)
{
	const char *argv[16] = { "iptables", "-w", "5" };
	unsigned n = 3;
	char line[256] = "";

	for (; *args && n < 15; args++) {
		argv[n++] = *args;
		size_t used = strlen(line);
		snprintf(line + used, sizeof(line) - used, " %s", *args);
	}
	int status = spawn_wait(argv, false, err);
	if (status < 0)
		return rv_wrap(err, "do: iptables%s", line);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return rv_failx(err, EIO, "do: iptables%s: failed (status %d)", line,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

/* The three rules runsc do adds, with op "-A" or "-D". */
static int nat_rules(const struct do_net *dn, const char *op, struct rv_err *err)
{
	const char *masq[] = { "-t", "nat", op, "POSTROUTING", "-s", dn->ip, "-o", dn->out_if,
			       "-j", "MASQUERADE", NULL };
	const char *in[] = { op, "FORWARD", "-i", dn->out_if, "-o", dn->host_if, "-j", "ACCEPT", NULL };
	const char *out[] = { op, "FORWARD", "-o", dn->out_if, "-i", dn->host_if, "-j", "ACCEPT", NULL };
	int rc = iptables(masq, err);

	if (iptables(in, err) < 0)
		rc = -1;
	if (iptables(out, err) < 0)
		rc = -1;
	return rc;
}

static bool have_iptables(void)
{
	const char *argv[] = { "iptables", "--version", NULL };
	struct rv_err ignored;
	int status = spawn_wait(argv, true, &ignored);

	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* net.ipv4.ip_forward: "0\n" or "1\n"; -1 with err. */
static int forwarding(char *val, const char *set, struct rv_err *err)
{
	errno = 0;
	FILE *f = fopen(IP_FORWARD_SYSCTL, set ? "we" : "re");

	if (!f)
		return rv_fail(err, errno, "do: %s", IP_FORWARD_SYSCTL);
	bool ok = set ? fputs(set, f) >= 0 : fgets(val, 4, f) != NULL;
	if (fclose(f) != 0 || !ok)
		return rv_fail(err, errno ? errno : EIO, "do: %s", IP_FORWARD_SYSCTL);
	return 0;
}

/* On, as NAT needs; do_net_down puts back a 0 it found, once no other
 * runvm do's veth is left to need it. */
static int set_forwarding(struct do_net *dn, struct rv_err *err)
{
	char was[4] = "";

	if (forwarding(was, NULL, err) < 0)
		return -1;
	dn->forwarding_was_off = was[0] == '0';
	return forwarding(NULL, "1\n", err);
}

static bool other_do_veths(struct nl *nl, const struct do_net *dn)
{
	static __thread struct nl_link links[DO_NET_MAX_LINKS];
	struct rv_err ignored;
	unsigned n;

	if (nl_links(nl, links, DO_NET_MAX_LINKS, &n, &ignored) < 0)
		return true;      /* unknown: leave forwarding on */
	for (unsigned i = 0; i < n; i++)
		if (!strncmp(links[i].name, DO_NET_HOST_IF_PREFIX, strlen(DO_NET_HOST_IF_PREFIX)) &&
		    strcmp(links[i].name, dn->host_if))
			return true;
	return false;
}

/* Out through the host's default route, when there is one and iptables. */
static int setup_nat(struct nl *nl, struct do_net *dn, struct rv_err *err)
{
	struct nl_route routes[NL_MAX_ROUTES];
	static __thread struct nl_link links[DO_NET_MAX_LINKS];
	unsigned n, nl_n;
	int oif = 0;

	if (nl_routes(nl, 0, routes, NL_MAX_ROUTES, &n, err) < 0)
		return rv_wrap(err, "do: the host's default route");
	for (unsigned i = 0; i < n && !oif; i++)
		if (routes[i].family == AF_INET && routes[i].dst_len == 0)
			oif = routes[i].oif;
	if (!oif) {
		dn->no_nat_why = "this host has no default route";
		return 0;
	}
	if (!have_iptables()) {
		dn->no_nat_why = "iptables is not installed (Debian package iptables)";
		return 0;
	}
	if (nl_links(nl, links, DO_NET_MAX_LINKS, &nl_n, err) < 0)
		return -1;
	for (unsigned i = 0; i < nl_n; i++)
		if (links[i].index == oif)
			snprintf(dn->out_if, sizeof(dn->out_if), "%s", links[i].name);
	if (!dn->out_if[0]) {
		dn->no_nat_why = "this host's default route leaves by a link it does not list";
		return 0;
	}
	if (set_forwarding(dn, err) < 0)
		return -1;
	dn->nat_made = true;
	return nat_rules(dn, "-A", err);
}

int do_net_up(struct do_net *dn, const char *ip, struct rv_err *err)
{
	struct nl nl = { .fd = -1 };
	*dn = (struct do_net){ .netns_fd = -1, .pod = { .tap_fd = -1, .nl = { .fd = -1 } } };
	if (parse_ip(ip, dn, err) < 0)
		return -1;
	int rc = nl_open(&nl, err);
	if (rc == 0)
		rc = check_clash(&nl, dn, err);
	if (rc == 0)
		rc = make_netns(dn, err);
	if (rc == 0)
		rc = setup_outside(&nl, dn, err);
	if (rc == 0)
		rc = setup_inside(dn, err);
	if (rc == 0)
		rc = pod_net_attach(dn->netns_path, &dn->pod, err);
	if (rc == 0)
		rc = setup_nat(&nl, dn, err);
	nl_close(&nl);
	if (rc < 0)
		do_net_down(dn);
	return rc;
}

void do_net_down(struct do_net *dn)
{
	struct rv_err ignored;
	struct nl nl;
	struct nl_link host;

	if (dn->nat_made)
		nat_rules(dn, "-D", &ignored);
	dn->nat_made = false;
	pod_net_detach(&dn->pod);
	if (nl_open(&nl, &ignored) == 0) {
		if (dn->forwarding_was_off && !other_do_veths(&nl, dn))
			forwarding(NULL, "0\n", &ignored);
		if (dn->veth_made && nl_link_by_name(&nl, dn->host_if, &host, &ignored) == 0)
			nl_link_del(&nl, host.index, &ignored);
		nl_close(&nl);
	}
	dn->forwarding_was_off = false;
	dn->veth_made = false;
	if (dn->netns_fd >= 0)
		close(dn->netns_fd);
	dn->netns_fd = -1;
}
