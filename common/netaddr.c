#include "common/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int net_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		static const char hex[] = "0123456789abcdef";
		const char *hi = s[0] ? strchr(hex, s[0] | 0x20) : NULL;
		const char *lo = hi && s[1] ? strchr(hex, s[1] | 0x20) : NULL;
		if (!hi || !lo || (s[2] != (i < 5 ? ':' : '\0')))
			return -1;
		mac[i] = (uint8_t)((hi - hex) << 4 | (lo - hex));
		s += 3;
	}
	return 0;
}

void net_format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* An address alone, of either family: its family, or 0. */
static uint8_t parse_ip(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, 16);
	if (inet_pton(AF_INET, buf, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, buf, out) == 1)
		return AF_INET6;
	return 0;
}

static int parse_prefix(const char *s, uint8_t family, uint8_t *len)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v > (family == AF_INET ? 32u : 128u) || (s[0] == '0' && s[1]))
		return -1;
	*len = (uint8_t)v;
	return 0;
}

int net_parse_cidr(const char *s, struct nl_addr *a)
{
	const char *slash = strchr(s, '/');

	memset(a, 0, sizeof(*a));
	if (!slash || !(a->family = parse_ip(s, (size_t)(slash - s), a->addr)))
		return -1;
	return parse_prefix(slash + 1, a->family, &a->prefix);
}

int net_format_cidr(const struct nl_addr *a, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(a->family, a->addr, ip, sizeof(ip)))
		return -1;
	int n = snprintf(out, size, "%s/%u", ip, a->prefix);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int net_parse_route(const char *s, struct nl_route *r)
{
	const char *via = strstr(s, " via ");
	size_t dst_n = via ? (size_t)(via - s) : strlen(s);

	memset(r, 0, sizeof(*r));
	if (via) {
		const char *gw = via + 5;
		if (!(r->family = parse_ip(gw, strlen(gw), r->gw)))
			return -1;
		r->has_gw = true;
	}
	if (dst_n == 7 && !strncmp(s, "default", 7))
		return r->has_gw ? 0 : -1;         /* a default route needs its gateway */
	const char *slash = memchr(s, '/', dst_n);
	char prefix[8];
	if (!slash || (size_t)(s + dst_n - slash - 1) >= sizeof(prefix))
		return -1;
	uint8_t family = parse_ip(s, (size_t)(slash - s), r->dst);
	if (!family || (r->has_gw && family != r->family))
		return -1;
	r->family = family;
	memcpy(prefix, slash + 1, (size_t)(s + dst_n - slash - 1));
	prefix[s + dst_n - slash - 1] = '\0';
	return parse_prefix(prefix, family, &r->dst_len);
}

int net_format_route(const struct nl_route *r, char *out, size_t size)
{
	char dst[INET6_ADDRSTRLEN + 4] = "default", gw[INET6_ADDRSTRLEN];
	struct nl_addr d = { .family = r->family, .prefix = r->dst_len };

	memcpy(d.addr, r->dst, sizeof(d.addr));
	if (!r->dst_len && !r->has_gw)
		return -1;                          /* "default" alone would not parse back */
	if (r->dst_len && net_format_cidr(&d, dst, sizeof(dst)) < 0)
		return -1;
	if (r->has_gw && !inet_ntop(r->family, r->gw, gw, sizeof(gw)))
		return -1;
	int n = r->has_gw ? snprintf(out, size, "%s via %s", dst, gw) : snprintf(out, size, "%s", dst);
	return n > 0 && (size_t)n < size ? 0 : -1;
}
