/* A pod's network handed to the guest (DESIGN §1, issue 9): the network
 * namespace an OCI spec names (set up by CNI, with a veth and its address
 * and routes) gets a tap, joined to the veth by tc redirects both ways (the
 * model Kata calls tcfilter), so the guest's virtio-net interface stands in
 * for the veth: same MAC, MTU, addresses and routes, which the agent gives it
 * (NETCONF). The namespace's own stack no longer sees the veth's traffic. */
#ifndef RV_POD_NET_H
#define RV_POD_NET_H

#include <stdint.h>

#include "common/err.h"
#include "common/netaddr.h"
#include "common/netlink.h"
#include "common/proto.h"
#include "vmm/vm.h"

#define POD_NET_TAP_NAME "runvm%d"

struct pod_net {
	int tap_fd;                  /* -1: the namespace has no interface but lo */
	uint8_t mac[6];
	unsigned mtu;
	char veth[NL_IFNAME_MAX], tap[NL_IFNAME_MAX];
	unsigned naddrs, nroutes;
	char addrs[NL_MAX_ADDRS][NETADDR_TEXT_MAX];
	char routes[NL_MAX_ROUTES][NETADDR_TEXT_MAX];
	/* A netlink socket opened inside the namespace, which it keeps talking
	 * to: detaching needs no setns. */
	struct nl nl;
	int veth_index;
};

/* Enters the namespace at netns_path on the calling thread, reads its
 * interface, makes the tap and the redirects, and returns to the caller's
 * namespace, also on failure (no thread may be started meanwhile: it would
 * be born in the pod's). One interface besides lo is supported: more is an
 * error naming them; so is a namespace another runvm sandbox already uses
 * (EBUSY). On failure nothing is left in the namespace. */
int pod_net_attach(const char *netns_path, struct pod_net *pn, struct rv_err *err);

/* The redirect on the veth and the tap go. Safe on a pod_net that never
 * attached, and twice. */
void pod_net_detach(struct pod_net *pn);

/* What pod_net_detach does to the veth, for a VMM that could not (killed
 * outright, or crashed): from any process. Nothing is done while a sandbox
 * still runs there; a namespace with no interface is not an error. */
int pod_net_release(const char *netns_path, struct rv_err *err);

/* What the VM and its agent are told of pn: the device (its tap, MAC and
 * MTU) and NETCONF, whose strings point into pn and the struct itself. */
struct pod_net_conf {
	const char *veth;            /* pn's, for errors */
	struct vm_net vnet;
	struct proto_netconf nc;
	char mac[18];
	const char *addrs[NL_MAX_ADDRS], *routes[NL_MAX_ROUTES];
};
void pod_net_conf(const struct pod_net *pn, struct pod_net_conf *out);

/* fn(arg) on this thread inside the network namespace at netns_path, and
 * back, also when fn fails; failing to come back is the error then. No
 * thread may be started by fn: it would be born in that namespace. */
int pod_net_in_netns(const char *netns_path, int (*fn)(void *arg, struct rv_err *err), void *arg,
		     struct rv_err *err);

#endif
