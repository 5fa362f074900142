/* Addresses and routes as text, the way ip(8) writes them: how the host
 * tells the agent what the guest's interface gets (NETCONF), checked on
 * both ends with the same parser. */
#ifndef RV_NETADDR_H
#define RV_NETADDR_H

#include <stddef.h>
#include <stdint.h>

#include "common/netlink.h"

#define NETADDR_TEXT_MAX 96u     /* "dst/len via gw" of two IPv6 addresses, with room */

/* "52:54:00:12:34:56": 0, or -1 for anything else. */
int net_parse_mac(const char *s, uint8_t mac[6]);
void net_format_mac(const uint8_t mac[6], char out[18]);

/* "10.0.0.2/24", "fd00::2/64": the prefix length is required. 0 or -1. */
int net_parse_cidr(const char *s, struct nl_addr *a);
int net_format_cidr(const struct nl_addr *a, char *out, size_t size);

/* "default via GW", "DST/LEN via GW", "DST/LEN" (on the link itself): one
 * family throughout. oif is left 0. 0 or -1. */
int net_parse_route(const char *s, struct nl_route *r);
int net_format_route(const struct nl_route *r, char *out, size_t size);

#endif
