#include "vmm/pod_net.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "devices/net/net.h"

#define POD_NET_MAX_LINKS 64u
#define POD_NET_TAP_GONE_POLLS 30u
#define POD_NET_TAP_GONE_POLL_NS 100000000L

/* A tap of ours (POD_NET_TAP_NAME): a running VMM's, or the one being made. */
static bool is_our_tap(const char *name)
{
	size_t prefix = strcspn(POD_NET_TAP_NAME, "%");

	return !strncmp(name, POD_NET_TAP_NAME, prefix) && name[prefix] &&
	       strspn(name + prefix, "0123456789") == strlen(name + prefix);
}

/* The one Ethernet interface besides lo and our taps: 1, 0 when there is
 * none, -1 with err when there are several (sit0 and friends have no MAC and
 * do not count). A tap of ours lives exactly as long as its VMM: one there
 * names a live sandbox, in *busy. */
static int find_veth(struct nl *nl, struct nl_link *veth, char busy[NL_IFNAME_MAX],
		     struct rv_err *err)
{
	struct nl_link links[POD_NET_MAX_LINKS];
	unsigned n, found = 0;
	char names[128] = "";

	busy[0] = '\0';
	if (nl_links(nl, links, POD_NET_MAX_LINKS, &n, err) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (is_our_tap(links[i].name))
			snprintf(busy, NL_IFNAME_MAX, "%s", links[i].name);
		if (links[i].loopback || !links[i].has_mac || is_our_tap(links[i].name))
			continue;
		if (found++ == 0)
			*veth = links[i];
		size_t used = strlen(names);
		snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", links[i].name);
	}
	if (found > 1)
		return rv_failx(err, ENOTSUP, "%u interfaces besides lo (%s): runvm gives the guest "
				"one; leave one in the namespace", found, names);
	return found == 1;
}

/* What the guest's interface gets: the veth's addresses and routes, as text. */
static int read_config(struct pod_net *pn, const struct nl_link *veth, struct rv_err *err)
{
	struct nl_addr addrs[NL_MAX_ADDRS];
	struct nl_route routes[NL_MAX_ROUTES];
	unsigned n;

	if (nl_addrs(&pn->nl, veth->index, addrs, NL_MAX_ADDRS, &n, err) < 0)
		return rv_wrap(err, "%s", veth->name);
	for (unsigned i = 0; i < n; i++)
		if (net_format_cidr(&addrs[i], pn->addrs[pn->naddrs], NETADDR_TEXT_MAX) == 0)
			pn->naddrs++;
	if (nl_routes(&pn->nl, veth->index, routes, NL_MAX_ROUTES, &n, err) < 0)
		return rv_wrap(err, "%s", veth->name);
	/* On-link routes first: a gateway outside the address's subnet (Calico's
	 * 169.254.1.1) is reachable only once its own route is in. */
	for (int gw = 0; gw <= 1; gw++)
		for (unsigned i = 0; i < n; i++)
			if (routes[i].has_gw == gw &&
			    net_format_route(&routes[i], pn->routes[pn->nroutes], NETADDR_TEXT_MAX) == 0)
				pn->nroutes++;
	memcpy(pn->mac, veth->mac, sizeof(pn->mac));
	pn->mtu = veth->mtu;
	snprintf(pn->veth, sizeof(pn->veth), "%s", veth->name);
	return 0;
}

/* Inside the namespace: the tap, up with the veth's MTU, and the redirects. */
static int attach_inside(struct pod_net *pn, struct rv_err *err)
{
	struct nl_link veth, tap;

	char busy[NL_IFNAME_MAX];

	if (nl_open(&pn->nl, err) < 0)
		return -1;
	int found = find_veth(&pn->nl, &veth, busy, err);
	if (found <= 0)
		return found;
	/* Two guests on one veth would take each other's traffic and, the
	 * first to end, the other's redirect: one sandbox per pod network. */
	if (busy[0])
		return rv_failx(err, EBUSY, "%s is already another runvm sandbox's (its tap %s is "
				"there): runvm gives each network namespace one sandbox", veth.name,
				busy);
	if (read_config(pn, &veth, err) < 0)
		return -1;
	pn->tap_fd = net_tap_open(POD_NET_TAP_NAME, pn->tap, err);
	if (pn->tap_fd < 0 || nl_link_by_name(&pn->nl, pn->tap, &tap, err) < 0 ||
	    nl_link_set(&pn->nl, tap.index, true, pn->mtu, NULL, err) < 0)
		return rv_wrap(err, "tap %s", pn->tap);
	/* A VMM killed outright leaves its redirect on the veth. */
	if (nl_redirect_remove(&pn->nl, veth.index, err) < 0)
		return rv_wrap(err, "%s", veth.name);
	pn->veth_index = veth.index;
	if (nl_redirect(&pn->nl, veth.index, tap.index, err) < 0 ||
	    nl_redirect(&pn->nl, tap.index, veth.index, err) < 0)
		return rv_wrap(err, "join %s and %s", veth.name, pn->tap);
	return 0;
}

int pod_net_in_netns(const char *netns_path, int (*fn)(void *arg, struct rv_err *err), void *arg,
		     struct rv_err *err)
{
	_cleanup_close_ int target = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return rv_fail(err, errno, "network namespace %s", netns_path);
	_cleanup_close_ int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		return rv_fail(err, errno, "open this thread's network namespace");
	if (setns(target, CLONE_NEWNET) < 0)
		return rv_fail(err, errno, "enter network namespace %s%s", netns_path,
			       errno == EINVAL ? " (not a network namespace)" :
			       errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	int rc = fn(arg, err);
	/* Staying in the pod's namespace would be worse than any error of fn's:
	 * this one wins. */
	if (setns(home, CLONE_NEWNET) < 0)
		return rv_fail(err, errno, "return from network namespace %s to our own", netns_path);
	return rc < 0 ? rv_wrap(err, "network namespace %s", netns_path) : 0;
}

static int attach_fn(void *arg, struct rv_err *err)
{
	return attach_inside(arg, err);
}

/* A pod's namespace is one made for it (by CNI); ours is the host's. Given
 * ours, the guest would take the host's one interface besides lo, or
 * fail on many: a spec that names /proc/PID/ns/net of a pod's other
 * container, which in runvm is a VMM in the host's namespace, does that. */
static int check_not_ours(const char *netns_path, struct rv_err *err)
{
	struct stat pod, ours;

	if (stat(netns_path, &pod) < 0)
		return rv_fail(err, errno, "network namespace %s", netns_path);
	if (stat("/proc/thread-self/ns/net", &ours) < 0)
		return rv_fail(err, errno, "this thread's network namespace");
	if (pod.st_dev == ours.st_dev && pod.st_ino == ours.st_ino)
		return rv_failx(err, EINVAL, "network namespace %s is runvm's own (the host's), not a "
				"pod's: the guest would take its interface. Give the path of the namespace "
				"made for the pod (e.g. /var/run/netns/NAME); a path under /proc of another "
				"container's runvm process names the host's", netns_path);
	return 0;
}

int pod_net_attach(const char *netns_path, struct pod_net *pn, struct rv_err *err)
{
	memset(pn, 0, sizeof(*pn));
	pn->tap_fd = -1;
	pn->nl.fd = -1;
	if (check_not_ours(netns_path, err) < 0)
		return -1;
	if (pod_net_in_netns(netns_path, attach_fn, pn, err) < 0) {
		pod_net_detach(pn);
		return -1;
	}
	return 0;
}

static int release_fn(void *arg, struct rv_err *err)
{
	struct nl nl;
	struct nl_link veth;
	char busy[NL_IFNAME_MAX];

	(void)arg;
	if (nl_open(&nl, err) < 0)
		return -1;
	int found = find_veth(&nl, &veth, busy, err);
	/* A VMM just killed: its tap goes once the kernel has closed the last
	 * fd and unregistered the device, a moment after the process is gone. */
	for (unsigned i = 0; found > 0 && busy[0] && i < POD_NET_TAP_GONE_POLLS; i++) {
		nanosleep(&(struct timespec){ .tv_nsec = POD_NET_TAP_GONE_POLL_NS }, NULL);
		found = find_veth(&nl, &veth, busy, err);
	}
	/* A live sandbox's redirect is its own to remove. */
	int rc = found > 0 && !busy[0] ? nl_redirect_remove(&nl, veth.index, err) : found < 0 ? -1 : 0;
	nl_close(&nl);
	return rc;
}

int pod_net_release(const char *netns_path, struct rv_err *err)
{
	return pod_net_in_netns(netns_path, release_fn, NULL, err);
}

void pod_net_detach(struct pod_net *pn)
{
	struct rv_err ignored;

	if (pn->nl.fd >= 0 && pn->veth_index > 0)
		nl_redirect_remove(&pn->nl, pn->veth_index, &ignored);
	pn->veth_index = 0;
	nl_close(&pn->nl);
	if (pn->tap_fd >= 0)
		close(pn->tap_fd);
	pn->tap_fd = -1;
}

void pod_net_conf(const struct pod_net *pn, struct pod_net_conf *out)
{
	out->veth = pn->veth;
	out->vnet = (struct vm_net){ .tap_fd = pn->tap_fd, .mtu = (uint16_t)pn->mtu };
	memcpy(out->vnet.mac, pn->mac, sizeof(out->vnet.mac));
	net_format_mac(pn->mac, out->mac);
	for (unsigned i = 0; i < pn->naddrs; i++)
		out->addrs[i] = pn->addrs[i];
	for (unsigned i = 0; i < pn->nroutes; i++)
		out->routes[i] = pn->routes[i];
	out->nc = (struct proto_netconf){ .mac = out->mac, .mtu = pn->mtu, .naddrs = pn->naddrs,
					  .addrs = out->addrs, .nroutes = pn->nroutes,
					  .routes = out->routes };
}
