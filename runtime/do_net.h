/* `runvm do --ip ADDR`: a network of the VM's own, as `runsc do` makes it.
 * A network namespace that lives only as long as its fd (so nothing named is
 * left behind, whatever ends us), a veth pair from here into it (ADDR/24
 * inside, the next address on our side, the default route through us), the
 * guest's virtio-net interface standing in for the inner end (vmm/pod_net.h),
 * and, when this host has a default route and iptables, masquerading of
 * ADDR's traffic out through that route, with forwarding on. do_net_down
 * undoes all of it (forwarding once no other runvm do needs it); `runvm do`
 * has its keeper (runtime/do_keeper.h) call it, also after a SIGKILL. */
#ifndef RV_DO_NET_H
#define RV_DO_NET_H

#include <stdbool.h>

#include "common/err.h"
#include "vmm/pod_net.h"

#define DO_NET_DEFAULT_IP "192.168.10.2"

struct do_net {
	char ip[16], peer_ip[16];   /* dotted quads */
	char host_if[NL_IFNAME_MAX];
	char out_if[NL_IFNAME_MAX]; /* the host's default route's link: "" without NAT */
	int netns_fd;               /* the VM's namespace; -1 */
	char netns_path[32];        /* /proc/self/fd/N of netns_fd */
	struct pod_net pod;
	bool veth_made, nat_made;
	bool forwarding_was_off;    /* net.ipv4.ip_forward was 0 before us */
	const char *no_nat_why;     /* set when there is no NAT, for the user */
};

/* --ip as do_net_up takes it: 0, or -1 with err naming the flag. */
int do_net_check_ip(const char *ip, struct rv_err *err);

/* The VM's network, for the VMM in this process: dn->pod's tap and config. */
int do_net_up(struct do_net *dn, const char *ip, struct rv_err *err);
/* Safe after a failed or no do_net_up (dn zeroed with netns_fd -1). */
void do_net_down(struct do_net *dn);

#endif
