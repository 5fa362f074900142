#include "common/netlink.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define NL_BUF_BYTES 8192u
#define NL_RECV_BYTES 32768u
#define REDIRECT_PRIO 1u
#define NL_TIMEOUT_S 5

struct nl_msg {
	union {
		struct nlmsghdr h;
		uint8_t buf[NL_BUF_BYTES];
	};
};

int nl_open(struct nl *nl, struct rv_err *err)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	nl->seq = 1;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return rv_fail(err, errno, "netlink socket");
	/* The kernel answers at once; a missing answer must not hang a VMM. */
	struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(nl->fd);
		nl->fd = -1;
		return rv_fail(err, e, "netlink bind");
	}
	return 0;
}

void nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

/* --- building ------------------------------------------------------------------ */

static void *msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, size_t fixed)
{
	memset(m->buf, 0, NLMSG_SPACE(fixed));
	m->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(fixed);
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	return NLMSG_DATA(&m->h);
}

/* Our own requests: sized by us, far below the buffer. */
static struct rtattr *attr_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(m->buf + NLMSG_ALIGN(m->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len));
	return a;
}

/* A fixed header inside an attribute (VETH_INFO_PEER's ifinfomsg). */
static void *raw_put(struct nl_msg *m, size_t len)
{
	uint8_t *p = m->buf + NLMSG_ALIGN(m->h.nlmsg_len);

	memset(p, 0, NLMSG_ALIGN(len));
	m->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(m->h.nlmsg_len) + NLMSG_ALIGN(len));
	return p;
}

static void nest_end(struct nl_msg *m, struct rtattr *nest)
{
	nest->rta_len = (uint16_t)(m->buf + m->h.nlmsg_len - (uint8_t *)nest);
}

/* --- talking ------------------------------------------------------------------- */

typedef int (*nl_each_fn)(void *ctx, const struct nlmsghdr *h);

/* NLMSG_OK and NLMSG_NEXT without their signed arithmetic. */
static bool msg_ok(const struct nlmsghdr *h, size_t left)
{
	return left >= sizeof(*h) && h->nlmsg_len >= sizeof(*h) && h->nlmsg_len <= left;
}

static const struct nlmsghdr *msg_next(const struct nlmsghdr *h, size_t *left)
{
	size_t step = NLMSG_ALIGN(h->nlmsg_len);

	*left = step < *left ? *left - step : 0;
	return (const struct nlmsghdr *)((const uint8_t *)h + step);
}

/* Sends m and reads the answer: every message of a dump to each(), or the
 * kernel's ack. A negative errno from the kernel becomes err with `what`. */
/* How one answer message ends the transaction: 1 not yet, 0 done, -1 err. */
static int on_answer(const struct nlmsghdr *h, nl_each_fn each, void *ctx, int *overflow,
		     bool *intr, const char *what, struct rv_err *err)
{
	if (h->nlmsg_flags & NLM_F_DUMP_INTR)
		*intr = true;
	if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
		/* Both carry an errno: DONE's a dump the kernel cut short. */
		int code = 0;
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
			return rv_failx(err, EPROTO, "%s: a short netlink answer", what);
		memcpy(&code, NLMSG_DATA(h), sizeof(code));
		if (code)
			return rv_fail(err, -code, "%s", what);
		if (*overflow)
			return rv_failx(err, EOVERFLOW, "%s: more than runvm handles", what);
		if (*intr)
			return rv_failx(err, EAGAIN, "%s: the namespace changed while it was read", what);
		return 0;
	}
	if (each && !*overflow && each(ctx, h) < 0)
		*overflow = 1;          /* read on to the end: the socket stays usable */
	return 1;
}

/* Sends m and reads the answer: every message of a dump to each(), or the
 * kernel's ack. A negative errno from the kernel becomes err with `what`. */
static int transact(struct nl *nl, struct nl_msg *m, nl_each_fn each, void *ctx, const char *what,
		    struct rv_err *err)
{
	static __thread uint8_t rbuf[NL_RECV_BYTES];
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	int overflow = 0;
	bool intr = false;

	m->h.nlmsg_seq = ++nl->seq;
	/* NLM_F_DUMP is two bits, one of them NLM_F_REPLACE's on a NEW request. */
	bool dump = each && (m->h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	if (!dump)
		m->h.nlmsg_flags |= NLM_F_ACK;     /* the end of a single answer */
	if (sendto(nl->fd, m->buf, m->h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return rv_fail(err, errno, "%s: netlink send", what);
	for (;;) {
		ssize_t n = recv(nl->fd, rbuf, sizeof(rbuf), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return rv_fail(err, errno, "%s: netlink receive", what);
		if ((size_t)n > sizeof(rbuf))
			return rv_failx(err, EMSGSIZE, "%s: a netlink answer of %zd bytes", what, n);
		size_t len = (size_t)n;
		for (const struct nlmsghdr *h = (struct nlmsghdr *)rbuf; msg_ok(h, len);
		     h = msg_next(h, &len)) {
			if (h->nlmsg_seq != nl->seq)
				continue;       /* an answer to an earlier request */
			int rc = on_answer(h, each, ctx, &overflow, &intr, what, err);
			if (rc <= 0)
				return rc;
		}
	}
}

/* The attributes after a message's fixed header, each bounds-checked. */
#define FOR_ATTRS(a, h, fixed, left)                                                  \
	for (int left = (int)(h)->nlmsg_len - (int)NLMSG_LENGTH(fixed),               \
	     _once = left >= 0;                                                           \
	     _once; _once = 0)                                                            \
		for (const struct rtattr *a = (const struct rtattr *)((const uint8_t *)NLMSG_DATA(h) + \
								    NLMSG_ALIGN(fixed));   \
		     RTA_OK(a, left); a = RTA_NEXT(a, left))

/* --- links --------------------------------------------------------------------- */

struct link_list {
	struct nl_link *out;
	unsigned max, n;
};

static int on_link(void *ctx, const struct nlmsghdr *h)
{
	struct link_list *l = ctx;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return 0;
	if (l->n == l->max)
		return -1;
	struct nl_link *k = &l->out[l->n++];
	memset(k, 0, sizeof(*k));
	k->index = ifi->ifi_index;
	k->flags = ifi->ifi_flags;
	k->loopback = ifi->ifi_type == ARPHRD_LOOPBACK;
	FOR_ATTRS(a, h, sizeof(*ifi), left) {
		size_t len = RTA_PAYLOAD(a);
		if (a->rta_type == IFLA_IFNAME && len > 0)
			snprintf(k->name, sizeof(k->name), "%.*s", (int)len, (const char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_MTU && len >= 4)
			memcpy(&k->mtu, RTA_DATA(a), 4);
		else if (a->rta_type == IFLA_ADDRESS && len == 6) {
			memcpy(k->mac, RTA_DATA(a), 6);
			k->has_mac = true;
		}
	}
	return 0;
}

int nl_links(struct nl *nl, struct nl_link *out, unsigned max, unsigned *n, struct rv_err *err)
{
	struct nl_msg m;
	struct link_list l = { out, max, 0 };

	msg_init(&m, RTM_GETLINK, NLM_F_DUMP, sizeof(struct ifinfomsg));
	int rc = transact(nl, &m, on_link, &l, "list links", err);
	*n = l.n;
	return rc;
}

int nl_link_by_name(struct nl *nl, const char *name, struct nl_link *out, struct rv_err *err)
{
	struct nl_msg m;
	struct link_list l = { out, 1, 0 };

	if (strlen(name) >= NL_IFNAME_MAX)
		return rv_failx(err, EINVAL, "interface name '%s': at most %u characters", name,
				NL_IFNAME_MAX - 1);
	msg_init(&m, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
	attr_put(&m, IFLA_IFNAME, name, strlen(name) + 1);
	if (transact(nl, &m, on_link, &l, "interface", err) < 0)
		return rv_wrap(err, "%s", name);
	if (l.n != 1)
		return rv_failx(err, EPROTO, "interface %s: no link in the answer", name);
	return 0;
}

int nl_veth_add(struct nl *nl, const char *name, const char *peer, int peer_netns,
		struct rv_err *err)
{
	struct nl_msg m;
	struct ifinfomsg *ifi = msg_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
	char what[64];

	if (strlen(name) >= NL_IFNAME_MAX || strlen(peer) >= NL_IFNAME_MAX)
		return rv_failx(err, ENAMETOOLONG, "veth %s/%s: names have at most %u characters",
				name, peer, NL_IFNAME_MAX - 1);
	ifi->ifi_family = AF_UNSPEC;
	attr_put(&m, IFLA_IFNAME, name, strlen(name) + 1);
	struct rtattr *info = attr_put(&m, IFLA_LINKINFO, NULL, 0);
	attr_put(&m, IFLA_INFO_KIND, "veth", strlen("veth"));
	struct rtattr *data = attr_put(&m, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *peer_info = attr_put(&m, VETH_INFO_PEER, NULL, 0);
	((struct ifinfomsg *)raw_put(&m, sizeof(struct ifinfomsg)))->ifi_family = AF_UNSPEC;
	attr_put(&m, IFLA_IFNAME, peer, strlen(peer) + 1);
	if (peer_netns >= 0) {
		uint32_t fd = (uint32_t)peer_netns;
		attr_put(&m, IFLA_NET_NS_FD, &fd, sizeof(fd));
	}
	nest_end(&m, peer_info);
	nest_end(&m, data);
	nest_end(&m, info);
	snprintf(what, sizeof(what), "add veth %s (peer %s)", name, peer);
	return transact(nl, &m, NULL, NULL, what, err);
}

int nl_link_del(struct nl *nl, int index, struct rv_err *err)
{
	struct nl_msg m;
	struct ifinfomsg *ifi = msg_init(&m, RTM_DELLINK, 0, sizeof(*ifi));
	char what[32];

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	snprintf(what, sizeof(what), "delete link %d", index);
	return transact(nl, &m, NULL, NULL, what, err);
}

int nl_link_set(struct nl *nl, int index, bool up, unsigned mtu, const uint8_t *mac,
		struct rv_err *err)
{
	struct nl_msg m;
	struct ifinfomsg *ifi = msg_init(&m, RTM_NEWLINK, 0, sizeof(*ifi));
	char what[32];

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	if (mtu)
		attr_put(&m, IFLA_MTU, &mtu, sizeof(mtu));
	if (mac)
		attr_put(&m, IFLA_ADDRESS, mac, 6);
	snprintf(what, sizeof(what), "set link %d", index);
	return transact(nl, &m, NULL, NULL, what, err);
}

/* --- addresses and routes ----------------------------------------------------- */

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static bool has_attr(const struct nlmsghdr *h, size_t fixed, unsigned short type)
{
	FOR_ATTRS(a, h, fixed, left)
		if (a->rta_type == type)
			return true;
	return false;
}

struct addr_list {
	int index;
	struct nl_addr *out;
	unsigned max, n;
};

static int on_addr(void *ctx, const struct nlmsghdr *h)
{
	struct addr_list *l = ctx;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)) ||
	    (int)ifa->ifa_index != l->index || ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
	    !addr_len(ifa->ifa_family))
		return 0;
	FOR_ATTRS(a, h, sizeof(*ifa), left) {
		/* IFA_LOCAL is the link's own address; IFA_ADDRESS is the peer's on
		 * a point-to-point link, and the only one IPv6 gives. */
		if ((a->rta_type != IFA_LOCAL && a->rta_type != IFA_ADDRESS) ||
		    RTA_PAYLOAD(a) != addr_len(ifa->ifa_family))
			continue;
		if (a->rta_type == IFA_ADDRESS && has_attr(h, sizeof(*ifa), IFA_LOCAL))
			continue;
		if (l->n == l->max)
			return -1;
		struct nl_addr *x = &l->out[l->n++];
		memset(x, 0, sizeof(*x));
		x->family = ifa->ifa_family;
		x->prefix = ifa->ifa_prefixlen;
		memcpy(x->addr, RTA_DATA(a), RTA_PAYLOAD(a));
	}
	return 0;
}

int nl_addrs(struct nl *nl, int index, struct nl_addr *out, unsigned max, unsigned *n,
	     struct rv_err *err)
{
	struct nl_msg m;
	struct addr_list l = { index, out, max, 0 };

	msg_init(&m, RTM_GETADDR, NLM_F_DUMP, sizeof(struct ifaddrmsg));
	int rc = transact(nl, &m, on_addr, &l, "list addresses", err);
	*n = l.n;
	return rc;
}

int nl_addr_add(struct nl *nl, int index, const struct nl_addr *a, struct rv_err *err)
{
	struct nl_msg m;
	struct ifaddrmsg *ifa = msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*ifa));
	size_t len = addr_len(a->family);

	if (!len || a->prefix > len * 8)
		return rv_failx(err, EINVAL, "address of family %u/%u: not IPv4 or IPv6", a->family,
				a->prefix);
	ifa->ifa_family = a->family;
	ifa->ifa_prefixlen = a->prefix;
	ifa->ifa_index = (uint32_t)index;
	attr_put(&m, IFA_LOCAL, a->addr, len);
	attr_put(&m, IFA_ADDRESS, a->addr, len);
	return transact(nl, &m, NULL, NULL, "add address", err);
}

struct route_list {
	int oif;
	struct nl_route *out;
	unsigned max, n;
};

static int on_route(void *ctx, const struct nlmsghdr *h)
{
	struct route_list *l = ctx;
	const struct rtmsg *rt = NLMSG_DATA(h);
	struct nl_route r = { 0 };

	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(*rt)) ||
	    rt->rtm_table != RT_TABLE_MAIN || rt->rtm_type != RTN_UNICAST || !addr_len(rt->rtm_family))
		return 0;
	r.family = rt->rtm_family;
	r.dst_len = rt->rtm_dst_len;
	size_t alen = addr_len(r.family);
	FOR_ATTRS(a, h, sizeof(*rt), left) {
		if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) == alen)
			memcpy(r.dst, RTA_DATA(a), alen);
		else if (a->rta_type == RTA_GATEWAY && RTA_PAYLOAD(a) == alen) {
			memcpy(r.gw, RTA_DATA(a), alen);
			r.has_gw = true;
		} else if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4)
			memcpy(&r.oif, RTA_DATA(a), 4);
	}
	if ((l->oif && r.oif != l->oif) || r.dst_len > alen * 8)
		return 0;
	if (l->n == l->max)
		return -1;
	l->out[l->n++] = r;
	return 0;
}

int nl_routes(struct nl *nl, int oif, struct nl_route *out, unsigned max, unsigned *n,
	      struct rv_err *err)
{
	struct nl_msg m;
	struct route_list l = { oif, out, max, 0 };

	msg_init(&m, RTM_GETROUTE, NLM_F_DUMP, sizeof(struct rtmsg));
	int rc = transact(nl, &m, on_route, &l, "list routes", err);
	*n = l.n;
	return rc;
}

int nl_route_add(struct nl *nl, const struct nl_route *r, struct rv_err *err)
{
	struct nl_msg m;
	struct rtmsg *rt = msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rt));
	size_t len = addr_len(r->family);

	if (!len || r->dst_len > len * 8)
		return rv_failx(err, EINVAL, "route of family %u/%u: not IPv4 or IPv6", r->family,
				r->dst_len);
	rt->rtm_family = r->family;
	rt->rtm_dst_len = r->dst_len;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = r->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	if (r->dst_len)
		attr_put(&m, RTA_DST, r->dst, len);
	if (r->has_gw)
		attr_put(&m, RTA_GATEWAY, r->gw, len);
	attr_put(&m, RTA_OIF, &r->oif, sizeof(r->oif));
	return transact(nl, &m, NULL, NULL, "add route", err);
}

/* --- tc: the tap and the veth as one wire --------------------------------------- */

int nl_redirect(struct nl *nl, int from, int to, struct rv_err *err)
{
	struct nl_msg m;
	struct tcmsg *tc = msg_init(&m, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, sizeof(*tc));

	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = from;
	tc->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
	tc->tcm_parent = TC_H_INGRESS;
	attr_put(&m, TCA_KIND, "ingress", sizeof("ingress"));
	if (transact(nl, &m, NULL, NULL, "add an ingress qdisc", err) < 0 && err->code != EEXIST)
		return -1;

	tc = msg_init(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, sizeof(*tc));
	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = from;
	tc->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
	tc->tcm_info = TC_H_MAKE(REDIRECT_PRIO << 16, htons(ETH_P_ALL));
	/* u32 with one key that matches anything: matchall is newer and not
	 * in every kernel (this one's hosts lack it); Kata uses the same. */
	attr_put(&m, TCA_KIND, "u32", sizeof("u32"));
	struct rtattr *opts = attr_put(&m, TCA_OPTIONS, NULL, 0);
	struct tc_u32_sel sel = { .flags = TC_U32_TERMINAL, .nkeys = 1 };
	uint8_t any[sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key)] = { 0 };
	memcpy(any, &sel, sizeof(sel));        /* then one key of all zeros */
	attr_put(&m, TCA_U32_SEL, any, sizeof(any));
	struct rtattr *acts = attr_put(&m, TCA_U32_ACT, NULL, 0);
	struct rtattr *act = attr_put(&m, 1, NULL, 0);
	attr_put(&m, TCA_ACT_KIND, "mirred", sizeof("mirred"));
	struct rtattr *aopts = attr_put(&m, TCA_ACT_OPTIONS, NULL, 0);
	struct tc_mirred p = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR,
			       .ifindex = (uint32_t)to };
	attr_put(&m, TCA_MIRRED_PARMS, &p, sizeof(p));
	nest_end(&m, aopts);
	nest_end(&m, act);
	nest_end(&m, acts);
	nest_end(&m, opts);
	return transact(nl, &m, NULL, NULL, "add a redirect filter", err);
}

int nl_redirect_remove(struct nl *nl, int from, struct rv_err *err)
{
	struct nl_msg m;
	struct tcmsg *tc = msg_init(&m, RTM_DELQDISC, 0, sizeof(*tc));

	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = from;
	tc->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
	tc->tcm_parent = TC_H_INGRESS;
	/* ENOENT: no qdisc; EINVAL: the link has none of that kind. */
	if (transact(nl, &m, NULL, NULL, "remove the ingress qdisc", err) < 0 &&
	    err->code != ENOENT && err->code != EINVAL)
		return -1;
	return 0;
}
