/* EXEC's OCI process attributes (protocol version 5): umask, oom_score_adj,
 * capabilities, rlimits and the hostname; and its user namespace maps
 * (version 6); each refused out of its range by the decoder and by the
 * encoder alike. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

static const char *sh_argv[] = { "sh" };
static const uint64_t caps[PROTO_CAP_SETS] = { 0x3, 0x2, 0, 0x2, 0x1ull << 40 };
static const uint64_t rlimits[] = { RLIMIT_NOFILE, 1024, 4096, RLIMIT_CORE, 0, ~0ull };
static const char *sysctls[] = { "net.ipv4.ip_forward=1", "kernel.msgmax=8192" };
static const uint64_t filter[] = { 0x7fff000000000006ull };   /* ret ALLOW */
static const uint32_t uid_map[] = { 0, 100000, 65536, 65536, 1000, 1 };
static const uint32_t gid_map[] = { 0, 200000, 10 };

static struct proto_msg attrs_exec(void)
{
	return (struct proto_msg){ .type = PROTO_EXEC, .id = 9, .exec = {
		.argc = 1, .argv = sh_argv, .umask = 027,
		.flags = PROTO_EXEC_NO_NEW_PRIVS | PROTO_EXEC_OOM_SCORE, .oom_score_adj = -999,
		.ncaps = PROTO_CAP_SETS, .caps = caps, .nrlimit_vals = 6, .rlimit_vals = rlimits,
		.hostname = "box-1", .domainname = "example", .nsysctls = 2, .sysctls = sysctls,
		.seccomp_flags = 1, .nseccomp = 1, .seccomp = filter,
		.nuid_map = 6, .uid_map = uid_map, .ngid_map = 3, .gid_map = gid_map } };
}

Test(proto_attrs, round_trip_every_attribute)
{
	struct proto_msg m = attrs_exec(), d;

	round_trip(&m, &d);
	cr_expect_eq(d.exec.umask, 027);
	cr_expect_eq(d.exec.oom_score_adj, -999);
	cr_expect_eq(d.exec.flags, PROTO_EXEC_NO_NEW_PRIVS | PROTO_EXEC_OOM_SCORE);
	cr_assert_eq(d.exec.ncaps, PROTO_CAP_SETS);
	cr_expect_arr_eq(d.exec.caps, caps, sizeof(caps));
	cr_assert_eq(d.exec.nrlimit_vals, 6);
	cr_expect_arr_eq(d.exec.rlimit_vals, rlimits, sizeof(rlimits));
	cr_expect_str_eq(d.exec.hostname, "box-1");
	cr_expect_str_eq(d.exec.domainname, "example");
	cr_assert_eq(d.exec.nsysctls, 2);
	cr_expect_str_eq(d.exec.sysctls[1], "kernel.msgmax=8192");
	cr_expect_eq(d.exec.seccomp_flags, 1);
	cr_assert_eq(d.exec.nseccomp, 1);
	cr_expect_eq(d.exec.seccomp[0], filter[0]);
	cr_assert_eq(d.exec.nuid_map, 6);
	cr_expect_arr_eq(d.exec.uid_map, uid_map, sizeof(uid_map));
	cr_assert_eq(d.exec.ngid_map, 3);
	cr_expect_arr_eq(d.exec.gid_map, gid_map, sizeof(gid_map));
	proto_msg_free(&d);
}

/* Each broken message is refused by the encoder and, sent anyway, by the
 * decoder, with the same words. */
static void refused(struct proto_msg m, const char *want)
{
	encode_fails(&m, EINVAL, want);
}

Test(proto_attrs, out_of_range_attributes_are_refused)
{
	static const uint64_t dup[] = { RLIMIT_NOFILE, 1, 2, RLIMIT_NOFILE, 1, 2 };
	static const uint64_t soft_over[] = { RLIMIT_NOFILE, 5, 4 };
	static const uint64_t unknown[] = { 16, 1, 2 };
	static const uint64_t partial[] = { RLIMIT_NOFILE, 1 };
	struct proto_msg m;

	m = attrs_exec(); m.exec.umask = 01000;
	refused(m, "umask 01000 is more than 0777");
	m = attrs_exec(); m.exec.oom_score_adj = 1001;
	refused(m, "oom_score_adj 1001");
	m = attrs_exec(); m.exec.flags = 0; m.exec.oom_score_adj = 5;
	refused(m, "only with its flag");
	m = attrs_exec(); m.exec.ncaps = 3;
	refused(m, "caps: 3 sets, want 0 or 5");
	m = attrs_exec(); m.exec.rlimit_vals = dup;
	refused(m, "rlimits[1]: resource 7 unknown or repeated");
	m = attrs_exec(); m.exec.rlimit_vals = soft_over; m.exec.nrlimit_vals = 3;
	refused(m, "rlimits[0]: soft limit over the hard one");
	m = attrs_exec(); m.exec.rlimit_vals = unknown; m.exec.nrlimit_vals = 3;
	refused(m, "resource 16 unknown");
	m = attrs_exec(); m.exec.rlimit_vals = partial; m.exec.nrlimit_vals = 2;
	refused(m, "rlimits: 2 values, not resource/soft/hard triples");
	static const char *bad_sysctls[][1] = { { "net/ipv4/ip_forward=1" }, { "a..b=1" },
						 { "noequals" }, { "=1" }, { ".a=1" } };
	for (size_t i = 0; i < sizeof(bad_sysctls) / sizeof(bad_sysctls[0]); i++) {
		m = attrs_exec();
		m.exec.nsysctls = 1;
		m.exec.sysctls = bad_sysctls[i];
		refused(m, "sysctls[0]");
	}
	m = attrs_exec(); m.exec.seccomp_flags = 8;
	refused(m, "seccomp_flags 0x8");
	m = attrs_exec(); m.exec.nseccomp = 0;
	refused(m, "seccomp_flags 0x1: unknown bits, or no filter");
	static const uint32_t empty[] = { 0, 0, 0 }, past_end[] = { 0, 4294967295u, 2 };
	m = attrs_exec(); m.exec.ngid_map = 0;
	refused(m, "uid_map and gid_map: both or neither");
	m = attrs_exec(); m.exec.nuid_map = 4;
	refused(m, "uid_map: 4 values, not up to 340 (inside, outside, count) lines");
	m = attrs_exec(); m.exec.ngid_map = 3 * 341;
	refused(m, "gid_map: 1023 values");
	m = attrs_exec(); m.exec.gid_map = empty;
	refused(m, "gid_map[0]: 0 ids from 0 or 0: empty, or past the last id");
	m = attrs_exec(); m.exec.uid_map = past_end; m.exec.nuid_map = 3;
	refused(m, "uid_map[0]: 2 ids from 0 or 4294967295");
	m = attrs_exec();
	m.exec.hostname = "a-hostname-longer-than-sixty-four-bytes-is-more-than-the-kernel-takes";
	encode_fails(&m, EMSGSIZE, "hostname is over the limit of 64 bytes");
}

Test(proto_attrs, the_decoder_refuses_them_too)
{
	struct wire w;

	whdr(&w, PROTO_EXEC, 0, 1);
	w32(&w, 1); w32(&w, 0); w32(&w, 0); w32(&w, 0);   /* exec_id streams uid gid */
	wstr(&w, "", 0); wstr(&w, "/", 1);                  /* root cwd */
	w32(&w, 1); wstr(&w, "sh", 2);                     /* argv */
	w32(&w, 0); w32(&w, 0);                            /* envp groups */
	w32(&w, 0); w16(&w, 0); w16(&w, 0);                /* flags rows cols */
	w32(&w, 0); w32(&w, 0);                            /* umask oom */
	w32(&w, 0);                                        /* caps */
	w32(&w, 3); w64(&w, RLIMIT_NOFILE); w64(&w, 9); w64(&w, 8);
	w32(&w, 0);                                        /* hostname */
	w32(&w, 0); w32(&w, 0);                            /* domainname sysctls */
	w32(&w, 0); w32(&w, 0);                            /* seccomp_flags seccomp */
	size_t maps_at = w.n;
	w32(&w, 0); w32(&w, 0);                            /* uid_map gid_map */
	w32(&w, 0);                                        /* path */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: rlimits[0]: soft limit over the hard one");
	w.n = maps_at - 48;                                /* back to the rlimits */
	w32(&w, 0);
	w32(&w, 0); w32(&w, 0); w32(&w, 0); w32(&w, 0); w32(&w, 0);
	w32(&w, 3); w32(&w, 0); w32(&w, 1); w32(&w, 0);   /* uid_map 0 1 0: empty */
	w32(&w, 3); w32(&w, 0); w32(&w, 1); w32(&w, 1);
	w32(&w, 0);                                        /* path */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: uid_map[0]: 0 ids from 0 or 1: empty");
}
