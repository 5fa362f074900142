/* rtnetlink, as little of it as runvm needs: read a network namespace's
 * links, addresses and routes (a pod's, set up by CNI), give the guest's
 * interface the same, and join a tap to a veth with tc redirects (the model
 * Kata calls tcfilter). One socket in the caller's network namespace, one
 * request at a time; every reply is bounds-checked like any input (a pod's
 * namespace is its owner's to fill). */
#ifndef RV_NETLINK_H
#define RV_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define NL_IFNAME_MAX 16u
#define NL_MAX_ADDRS 16u
#define NL_MAX_ROUTES 32u

struct nl {
	int fd;
	uint32_t seq;
};

struct nl_link {
	int index;
	char name[NL_IFNAME_MAX];
	unsigned mtu;
	unsigned flags;              /* IFF_* */
	bool has_mac;
	uint8_t mac[6];
	bool loopback;
};

struct nl_addr {
	uint8_t family;              /* AF_INET or AF_INET6 */
	uint8_t prefix;
	uint8_t addr[16];
};

struct nl_route {
	uint8_t family;
	uint8_t dst_len;             /* 0: the default route */
	uint8_t dst[16];
	bool has_gw;
	uint8_t gw[16];
	int oif;
};

int nl_open(struct nl *nl, struct rv_err *err);
void nl_close(struct nl *nl);

/* Every link of the namespace, up to max. */
int nl_links(struct nl *nl, struct nl_link *out, unsigned max, unsigned *n, struct rv_err *err);
int nl_link_by_name(struct nl *nl, const char *name, struct nl_link *out, struct rv_err *err);
/* A veth pair: `name` here and `peer` in the network namespace of the fd
 * peer_netns (-1: here too). EEXIST when either name is taken. */
int nl_veth_add(struct nl *nl, const char *name, const char *peer, int peer_netns,
		struct rv_err *err);
/* Deletes a link (a veth takes its peer along). */
int nl_link_del(struct nl *nl, int index, struct rv_err *err);
/* Up (or down), and mtu/mac when given (0/NULL: unchanged). */
int nl_link_set(struct nl *nl, int index, bool up, unsigned mtu, const uint8_t *mac,
		struct rv_err *err);

/* The global-scope addresses of a link (IPv6 link-local ones are the
 * kernel's to make). */
int nl_addrs(struct nl *nl, int index, struct nl_addr *out, unsigned max, unsigned *n,
	     struct rv_err *err);
int nl_addr_add(struct nl *nl, int index, const struct nl_addr *a, struct rv_err *err);

/* Unicast routes of the main table through link oif (0: through any). */
int nl_routes(struct nl *nl, int oif, struct nl_route *out, unsigned max, unsigned *n,
	      struct rv_err *err);
int nl_route_add(struct nl *nl, const struct nl_route *r, struct rv_err *err);

/* Everything arriving on link `from` leaves by link `to`: an ingress qdisc
 * on `from` and a match-anything u32 filter whose mirred action redirects
 * to `to`. */
int nl_redirect(struct nl *nl, int from, int to, struct rv_err *err);
/* Undoes nl_redirect on `from` (its ingress qdisc, and the filter with it);
 * none there is not an error. */
int nl_redirect_remove(struct nl *nl, int from, struct rv_err *err);

#endif
