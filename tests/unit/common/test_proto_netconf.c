/* NETCONF through the codec: a round trip, and the lines the decoder
 * refuses before the agent sees them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

static const char *addrs[] = { "10.0.0.2/24", "fd00::2/64" };
static const char *routes[] = { "10.1.0.0/16", "default via 10.0.0.1" };

static int encode(const struct proto_netconf *n, uint8_t **buf, size_t *len, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_NETCONF, .id = 9, .netconf = *n };
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	return proto_encode(&m, buf, len, &cap, err);
}

Test(proto_netconf, round_trips)
{
	struct proto_netconf n = { .mac = "52:54:00:12:34:56", .mtu = 1450, .naddrs = 2, .addrs = addrs,
				   .nroutes = 2, .routes = routes };
	struct proto_msg d;
	struct rv_err err;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(encode(&n, &buf, &len, &err), 0, "%s", err.msg);
	cr_assert_eq(proto_decode(buf, len, &d, &err), 0, "%s", err.msg);
	cr_expect_eq(d.type, PROTO_NETCONF);
	cr_expect_str_eq(d.netconf.mac, n.mac);
	cr_expect_eq(d.netconf.mtu, 1450);
	cr_assert_eq(d.netconf.naddrs, 2);
	cr_expect_str_eq(d.netconf.addrs[1], "fd00::2/64");
	cr_assert_eq(d.netconf.nroutes, 2);
	cr_expect_str_eq(d.netconf.routes[1], "default via 10.0.0.1");
	proto_msg_free(&d);
	free(buf);
}

Test(proto_netconf, refuses_what_the_agent_could_not_apply)
{
	static const char *bad_addr[] = { "10.0.0.2" };
	static const char *bad_route[] = { "default" };
	static const char *many[17] = { [0 ... 16] = "10.0.0.2/24" };
	const struct { struct proto_netconf n; const char *why; } cases[] = {
		{ { .mac = "52:54:00:12:34" }, "mac '52:54:00:12:34'" },
		{ { .mac = "52:54:00:12:34:56", .mtu = 67 }, "mtu 67" },
		{ { .mac = "52:54:00:12:34:56", .naddrs = 1, .addrs = bad_addr }, "addrs[0] '10.0.0.2'" },
		{ { .mac = "52:54:00:12:34:56", .nroutes = 1, .routes = bad_route }, "routes[0] 'default'" },
		{ { .mac = "52:54:00:12:34:56", .naddrs = 17, .addrs = many }, "17 addresses" },
	};
	struct rv_err err;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(encode(&cases[i].n, &buf, &len, &err), -1, "case %zu", i);
		cr_expect_not_null(strstr(err.msg, cases[i].why), "case %zu: %s", i, err.msg);
		free(buf);
	}
}
