/* The guest's network interfaces. Without a network device the container
 * still has its loopback, as a runc container in a fresh network namespace
 * has, once it is up: services that talk to themselves over 127.0.0.1 work.
 * With one, NETCONF gives it what the pod's interface has on the host. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/netaddr.h"
#include "common/netlink.h"
#include "guest/agent/agent.h"

void netif_loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		agent_warn("loopback: socket: %s", strerror(errno));
		return;
	}
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0))
		agent_warn("loopback: bring lo up: %s", strerror(errno));
	close(fd);
}

/* The link whose MAC is mac, in the agent's network namespace. */
static int link_by_mac(struct nl *nl, const uint8_t mac[6], struct nl_link *out, struct rv_err *err)
{
	struct nl_link links[16];
	unsigned n;

	if (nl_links(nl, links, 16, &n, err) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (links[i].has_mac && !memcmp(links[i].mac, mac, 6)) {
			*out = links[i];
			return 0;
		}
	}
	char text[18];
	net_format_mac(mac, text);
	return rv_failx(err, ENODEV, "no interface with MAC %s", text);
}

/* The decoder checked every line (proto_check); parsing cannot fail here. */
static int apply(struct nl *nl, const struct proto_netconf *x, struct rv_err *err)
{
	uint8_t mac[6];
	struct nl_link link;

	net_parse_mac(x->mac, mac);
	if (link_by_mac(nl, mac, &link, err) < 0 ||
	    nl_link_set(nl, link.index, true, x->mtu, NULL, err) < 0)
		return -1;
	for (uint32_t i = 0; i < x->naddrs; i++) {
		struct nl_addr a;
		net_parse_cidr(x->addrs[i], &a);
		if (nl_addr_add(nl, link.index, &a, err) < 0)
			return rv_wrap(err, "%s on %s", x->addrs[i], link.name);
	}
	/* Routes through a gateway need the on-link ones first: the caller
	 * lists them in that order, as a routing table dump does. */
	for (uint32_t i = 0; i < x->nroutes; i++) {
		struct nl_route r;
		net_parse_route(x->routes[i], &r);
		r.oif = link.index;
		if (nl_route_add(nl, &r, err) < 0)
			return rv_wrap(err, "route %s on %s", x->routes[i], link.name);
	}
	return 0;
}

void netif_on_netconf(struct conn *c, const struct proto_msg *req)
{
	struct nl nl;
	struct rv_err err = { 0 };
	int rc = nl_open(&nl, &err);

	if (rc == 0) {
		rc = apply(&nl, &req->netconf, &err);
		nl_close(&nl);
	}
	if (rc < 0)
		conn_reply_error(c, req->id, err.code, "network: %s", err.msg);
	else
		conn_reply_ok(c, req->id);
}
