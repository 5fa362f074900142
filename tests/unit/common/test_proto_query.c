/* The protocol's messages about the container as a whole (common/proto.h,
 * version 3): SIGNAL_ALL, PS / PS_REPLY, STATS / STATS_REPLY. PS_REPLY and
 * STATS_REPLY come from the guest: their decoder is the host's defence. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

/* --- helpers -------------------------------------------------------------------- */

static const struct proto_proc three[] = {
	{ .pid = 7, .ppid = 1, .uid = 0, .state = 'S', .utime_ticks = 12, .stime_ticks = 3,
	  .start_ticks = 250, .comm = "sh", .cmdline = "sh -c sleep 1000 & wait" },
	{ .pid = 8, .ppid = 7, .uid = 65534, .state = 'R', .utime_ticks = 1ull << 40,
	  .stime_ticks = 0, .start_ticks = 251, .comm = "sleep (a) b", .cmdline = "sleep 1000" },
	{ .pid = 9, .ppid = 7, .uid = 1000, .state = 'Z', .comm = "123456789012345",
	  .cmdline = "" },
};

static struct proto_msg ps_reply(const struct proto_proc *procs, uint32_t n)
{
	return (struct proto_msg){ .type = PROTO_PS_REPLY, .id = 21, .ps = {
		.clk_tck = 100, .boot_time_s = 1700000000, .uptime_ns = 5000000000ull,
		.total = n, .nprocs = n, .procs = procs } };
}

static const uint64_t two_cpus[] = { 700, 300 };

static struct proto_msg stats_reply(void)
{
	return (struct proto_msg){ .type = PROTO_STATS_REPLY, .id = 22, .stats = {
		.cpu_total_ns = 1000, .cpu_user_ns = 600, .cpu_kernel_ns = 350, .ncpus = 2,
		.npercpu = 2, .percpu_ns = two_cpus, .mem_total_bytes = 256ull << 20,
		.mem_used_bytes = 40ull << 20, .mem_cache_bytes = 10ull << 20, .pids_current = 3 } };
}

/* A PS_REPLY frame's fields before its entries. */
static void wps_head(struct wire *w, uint32_t clk_tck, uint32_t total, uint32_t count)
{
	whdr(w, PROTO_PS_REPLY, 0, 21);
	w32(w, clk_tck);
	w64(w, 1700000000);        /* boot_time */
	w64(w, 5000000000ull);     /* uptime */
	w32(w, total);
	w32(w, count);
}

static void wproc(struct wire *w, uint32_t state, const char *comm, size_t comm_len,
		  const char *cmdline, size_t cmdline_len)
{
	w32(w, 7);                 /* pid */
	w32(w, 1);                 /* ppid */
	w32(w, 0);                 /* uid */
	w32(w, state);
	w64(w, 1);                 /* utime */
	w64(w, 2);                 /* stime */
	w64(w, 3);                 /* start */
	wstr(w, comm, comm_len);
	wstr(w, cmdline, cmdline_len);
}

/* A STATS_REPLY frame with these CPU figures and a sane rest. */
static void wstats(struct wire *w, uint32_t ncpus, uint32_t npercpu, uint64_t used)
{
	whdr(w, PROTO_STATS_REPLY, 0, 22);
	w64(w, 1000);              /* total */
	w64(w, 600);               /* user */
	w64(w, 400);               /* kernel */
	w32(w, ncpus);
	w32(w, npercpu);
	for (uint32_t i = 0; i < npercpu && i < 200; i++)
		w64(w, 10);
	w64(w, 1000);              /* mem_total */
	w64(w, used);              /* mem_used */
	w64(w, 10);                /* mem_cache */
	w32(w, 2);                 /* pids_current */
}

static void wsignal_all(struct wire *w, uint32_t signo)
{
	whdr(w, PROTO_SIGNAL_ALL, 0, 20);
	w32(w, signo);
	wseal(w);
}

/* --- round trips ------------------------------------------------------------------ */

Test(proto_query, type_names)
{
	cr_assert_str_eq(proto_type_name(PROTO_SIGNAL_ALL), "SIGNAL_ALL");
	cr_assert_str_eq(proto_type_name(PROTO_PS), "PS");
	cr_assert_str_eq(proto_type_name(PROTO_PS_REPLY), "PS_REPLY");
	cr_assert_str_eq(proto_type_name(PROTO_STATS), "STATS");
	cr_assert_str_eq(proto_type_name(PROTO_STATS_REPLY), "STATS_REPLY");
	cr_assert_geq(PROTO_VERSION, 3, "these messages came with version 3");
}

Test(proto_query, round_trips_signal_all_at_both_ends_of_the_range)
{
	for (uint32_t signo = 1; signo <= PROTO_MAX_SIGNO; signo += PROTO_MAX_SIGNO - 1) {
		struct proto_msg m = { .type = PROTO_SIGNAL_ALL, .id = 20, .signal_all.signo = signo }, d;
		round_trip(&m, &d);
		cr_assert_eq(d.signal_all.signo, signo);
		proto_msg_free(&d);
	}
}

Test(proto_query, round_trips_ps_and_stats_requests)
{
	const enum proto_type types[] = { PROTO_PS, PROTO_STATS };

	for (size_t i = 0; i < 2; i++) {
		struct proto_msg m = { .type = types[i], .id = 5 }, d;
		uint8_t *buf;
		size_t len;
		encode_ok(&m, &buf, &len);
		cr_assert_eq(len, PROTO_HDR_BYTES, "no fields");
		free(buf);
		round_trip(&m, &d);
		proto_msg_free(&d);
	}
}

Test(proto_query, round_trips_ps_reply)
{
	struct proto_msg m = ps_reply(three, 3), d;

	m.ps.total = 5;
	round_trip(&m, &d);
	cr_assert_eq(d.ps.clk_tck, 100);
	cr_assert_eq(d.ps.boot_time_s, 1700000000);
	cr_assert_eq(d.ps.uptime_ns, 5000000000ull);
	cr_assert_eq(d.ps.total, 5);
	cr_assert_eq(d.ps.nprocs, 3);
	for (int i = 0; i < 3; i++) {
		const struct proto_proc *a = &three[i], *b = &d.ps.procs[i];
		cr_assert_eq(b->pid, a->pid);
		cr_assert_eq(b->ppid, a->ppid);
		cr_assert_eq(b->uid, a->uid);
		cr_assert_eq(b->state, a->state);
		cr_assert_eq(b->utime_ticks, a->utime_ticks);
		cr_assert_eq(b->stime_ticks, a->stime_ticks);
		cr_assert_eq(b->start_ticks, a->start_ticks);
		cr_assert_str_eq(b->comm, a->comm);
		cr_assert_str_eq(b->cmdline, a->cmdline);
	}
	proto_msg_free(&d);
}

Test(proto_query, round_trips_an_empty_ps_reply)
{
	struct proto_msg m = ps_reply(NULL, 0), d;

	round_trip(&m, &d);
	cr_assert_eq(d.ps.nprocs, 0);
	proto_msg_free(&d);
}

/* What the agent counts on (proto.h's static assert): the most entries, each
 * with the longest comm, fit in one frame with room for cmdlines left. */
Test(proto_query, round_trips_the_largest_process_list)
{
	struct proto_proc *procs = calloc(PROTO_MAX_PROCS, sizeof(*procs));
	struct proto_msg m, d;
	uint8_t *buf;
	size_t len;

	cr_assert_not_null(procs);
	for (uint32_t i = 0; i < PROTO_MAX_PROCS; i++)
		procs[i] = (struct proto_proc){ .pid = i + 2, .ppid = 1, .state = 'S',
						.comm = "123456789012345", .cmdline = "" };
	m = ps_reply(procs, PROTO_MAX_PROCS);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, PROTO_HDR_BYTES + PROTO_PS_HEAD_BYTES +
			  PROTO_MAX_PROCS * (PROTO_PROC_FIXED_BYTES + PROTO_MAX_COMM_BYTES));
	free(buf);
	round_trip(&m, &d);
	cr_assert_eq(d.ps.nprocs, PROTO_MAX_PROCS);
	cr_assert_eq(d.ps.procs[PROTO_MAX_PROCS - 1].pid, PROTO_MAX_PROCS + 1);
	proto_msg_free(&d);
	free(procs);
}

Test(proto_query, round_trips_stats_reply)
{
	struct proto_msg m = stats_reply(), d;

	round_trip(&m, &d);
	cr_assert_eq(d.stats.cpu_total_ns, 1000);
	cr_assert_eq(d.stats.cpu_user_ns, 600);
	cr_assert_eq(d.stats.cpu_kernel_ns, 350);
	cr_assert_eq(d.stats.ncpus, 2);
	cr_assert_eq(d.stats.npercpu, 2);
	cr_assert_eq(d.stats.percpu_ns[0], 700);
	cr_assert_eq(d.stats.percpu_ns[1], 300);
	cr_assert_eq(d.stats.mem_total_bytes, 256ull << 20);
	cr_assert_eq(d.stats.mem_used_bytes, 40ull << 20);
	cr_assert_eq(d.stats.mem_cache_bytes, 10ull << 20);
	cr_assert_eq(d.stats.pids_current, 3);
	proto_msg_free(&d);
}

Test(proto_query, round_trips_stats_of_more_cpus_than_are_listed)
{
	uint64_t percpu[PROTO_MAX_CPUS];
	struct proto_msg m = stats_reply(), d;

	for (uint32_t i = 0; i < PROTO_MAX_CPUS; i++)
		percpu[i] = i;
	m.stats.ncpus = 200;
	m.stats.npercpu = PROTO_MAX_CPUS;
	m.stats.percpu_ns = percpu;
	round_trip(&m, &d);
	cr_assert_eq(d.stats.ncpus, 200);
	cr_assert_eq(d.stats.npercpu, PROTO_MAX_CPUS);
	cr_assert_eq(d.stats.percpu_ns[PROTO_MAX_CPUS - 1], PROTO_MAX_CPUS - 1);
	proto_msg_free(&d);
}

Test(proto_query, encodes_stats_fields_in_wire_order)
{
	struct proto_msg m = stats_reply();
	struct wire w;
	uint8_t *buf;
	size_t len;

	wstats(&w, 2, 2, 40ull << 20);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, w.n);
	cr_assert_eq(buf[PROTO_HDR_BYTES], 1000 & 0xff);                  /* total first */
	cr_assert_eq(buf[PROTO_HDR_BYTES + 8], 600 & 0xff);               /* then user */
	cr_assert_eq(buf[PROTO_HDR_BYTES + 24], 2);                       /* ncpus */
	cr_assert_eq(buf[PROTO_HDR_BYTES + 28], 2);                       /* the u64v's count */
	cr_assert_eq(buf[PROTO_HDR_BYTES + 32], 700 & 0xff);              /* cpu0 */
	free(buf);
}

/* --- decoder rejections ----------------------------------------------------------- */

Test(proto_query, rejects_signal_all_outside_1_to_64)
{
	const uint32_t bad[] = { 0, PROTO_MAX_SIGNO + 1, 0xffffffffu };
	struct wire w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wsignal_all(&w, bad[i]);
		decode_fails(&w, EPROTO, "is not one of 1..64");
	}
	wsignal_all(&w, 64);
	struct proto_msg m;
	struct rv_err err;
	cr_assert_eq(proto_decode(w.b, w.n, &m, &err), 0, "%s", err.msg);
	proto_msg_free(&m);
}

Test(proto_query, rejects_signal_all_without_its_signal)
{
	struct wire w;

	whdr(&w, PROTO_SIGNAL_ALL, 0, 20);
	w16(&w, 9);
	wseal(&w);
	decode_fails(&w, EPROTO, "signo needs 4 bytes, only 2 are left");
}

Test(proto_query, rejects_a_ps_request_with_fields)
{
	struct wire w;

	whdr(&w, PROTO_PS, 0, 5);
	w32(&w, 1);
	wseal(&w);
	decode_fails(&w, EPROTO, "4 bytes after the last field");
}

Test(proto_query, rejects_more_processes_than_the_limit)
{
	struct wire w;

	wps_head(&w, 100, PROTO_MAX_PROCS + 1, PROTO_MAX_PROCS + 1);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "procs has 4097 entries, the limit is 4096");
}

Test(proto_query, rejects_a_process_count_beyond_the_bytes_left)
{
	struct wire w;

	wps_head(&w, 100, 3, 3);
	wproc(&w, 'S', "sh", 2, "", 0);
	wproc(&w, 'S', "sh", 2, "", 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "procs has 3 entries, but only");
}

Test(proto_query, rejects_a_ps_reply_cut_inside_an_entry)
{
	struct wire w;

	wps_head(&w, 100, 2, 2);
	wproc(&w, 'S', "sh", 2, "sh -c x", 7);
	wproc(&w, 'S', "sleep", 5, "sleep 1", 7);
	w.n -= 3;                  /* the last cmdline loses its tail */
	wseal(&w);
	decode_fails(&w, EPROTO, "procs.cmdline[1] needs 7 bytes, only 4 are left");
}

Test(proto_query, rejects_a_comm_longer_than_the_kernels)
{
	struct wire w;

	wps_head(&w, 100, 1, 1);
	wproc(&w, 'S', "1234567890123456", 16, "", 0);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "procs.comm[0] is 16 bytes, the limit is 15");
}

Test(proto_query, rejects_a_cmdline_beyond_4_kib)
{
	struct wire w;
	char *big = malloc(PROTO_MAX_CMDLINE_BYTES + 1);

	cr_assert_not_null(big);
	memset(big, 'x', PROTO_MAX_CMDLINE_BYTES + 1);
	wps_head(&w, 100, 1, 1);
	wproc(&w, 'S', "sh", 2, big, PROTO_MAX_CMDLINE_BYTES + 1);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "procs.cmdline[0] is 4097 bytes, the limit is 4096");
	free(big);
}

Test(proto_query, rejects_nul_in_a_cmdline)
{
	struct wire w;

	wps_head(&w, 100, 1, 1);
	wproc(&w, 'S', "sh", 2, "sh\0-c", 5);
	wseal(&w);
	decode_fails(&w, EPROTO, "procs.cmdline[0] has a NUL byte at offset 2");
}

Test(proto_query, rejects_a_state_that_is_no_letter)
{
	const uint32_t bad[] = { 0, '1', '?', 'S' | 0x100 };
	struct wire w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wps_head(&w, 100, 1, 1);
		wproc(&w, bad[i], "sh", 2, "", 0);
		wseal(&w);
		decode_fails(&w, EPROTO, "procs[0].state");
	}
}

Test(proto_query, rejects_a_clock_of_zero_ticks)
{
	struct wire w;

	wps_head(&w, 0, 0, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "clk_tck is 0");
}

Test(proto_query, rejects_more_processes_listed_than_found)
{
	struct wire w;

	wps_head(&w, 100, 0, 1);
	wproc(&w, 'S', "sh", 2, "", 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "1 processes listed, but only 0 found");
}

Test(proto_query, rejects_per_cpu_figures_that_do_not_match_the_cpus)
{
	struct wire w;

	wstats(&w, 2, 1, 10);
	wseal(&w);
	decode_fails(&w, EPROTO, "1 per-CPU figures for 2 CPUs (want 2)");
	wstats(&w, 0, 0, 10);
	wseal(&w);
	decode_fails(&w, EPROTO, "0 per-CPU figures for 0 CPUs");
	wstats(&w, 100, 63, 10);
	wseal(&w);
	decode_fails(&w, EPROTO, "63 per-CPU figures for 100 CPUs (want 64)");
}

Test(proto_query, rejects_more_per_cpu_figures_than_the_limit)
{
	struct wire w;

	wstats(&w, 65, 65, 10);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "percpu has 65 entries, the limit is 64");
}

Test(proto_query, rejects_cpu_parts_beyond_the_total)
{
	struct wire w;

	wstats(&w, 1, 1, 10);
	wseal(&w);
	/* user 600 + kernel 400 = total 1000: accepted; one more ns is not */
	struct proto_msg m;
	struct rv_err err;
	cr_assert_eq(proto_decode(w.b, w.n, &m, &err), 0, "%s", err.msg);
	proto_msg_free(&m);
	w.b[PROTO_HDR_BYTES + 16] = (uint8_t)(400 + 1);   /* kernel's low byte: 0x90 -> 0x91 */
	decode_fails(&w, EPROTO, "cpu user 600 + kernel 401 ns are more than the total 1000");
}

Test(proto_query, rejects_memory_used_beyond_the_total)
{
	struct wire w;

	wstats(&w, 1, 1, 1001);
	wseal(&w);
	decode_fails(&w, EPROTO, "memory used 1001 or cache 10 is more than the total 1000");
}

Test(proto_query, rejects_a_stats_reply_cut_short)
{
	struct wire w;

	wstats(&w, 1, 1, 10);
	w.n -= 4;                  /* no pids_current */
	wseal(&w);
	decode_fails(&w, EPROTO, "pids_current needs 4 bytes, only 0 are left");
}

/* --- encoder refusals ------------------------------------------------------------- */

Test(proto_query, encoder_refuses_signal_all_outside_1_to_64)
{
	struct proto_msg m = { .type = PROTO_SIGNAL_ALL, .id = 20 };

	encode_fails(&m, EINVAL, "signal 0 is not one of 1..64");
	m.signal_all.signo = 65;
	encode_fails(&m, EINVAL, "signal 65 is not one of 1..64");
}

Test(proto_query, encoder_refuses_a_process_list_it_could_not_send)
{
	struct proto_proc bad = three[0];
	struct proto_msg m = ps_reply(NULL, 1);

	encode_fails(&m, EINVAL, "procs is NULL, but its count is 1");
	bad.comm = "1234567890123456";
	m = ps_reply(&bad, 1);
	encode_fails(&m, EMSGSIZE, "procs.comm[0] is over the limit of 15 bytes");
	bad = three[0];
	bad.state = '-';
	m = ps_reply(&bad, 1);
	encode_fails(&m, EINVAL, "procs[0].state 0x2d is no letter");
	m = ps_reply(three, 3);
	m.ps.clk_tck = 0;
	encode_fails(&m, EINVAL, "clk_tck is 0");
	m = ps_reply(three, 3);
	m.ps.total = 2;
	encode_fails(&m, EINVAL, "3 processes listed, but only 2 found");
}

Test(proto_query, encoder_refuses_more_processes_than_the_limit)
{
	struct proto_msg m = ps_reply(three, PROTO_MAX_PROCS + 1);

	encode_fails(&m, EMSGSIZE, "procs has 4097 entries, the limit is 4096");
}

/* Long cmdlines are the agent's to cut short; the encoder only refuses. */
Test(proto_query, encoder_refuses_a_list_whose_cmdlines_pass_the_frame_limit)
{
	enum { N = 100 };
	struct proto_proc procs[N];
	char *big = malloc(PROTO_MAX_CMDLINE_BYTES + 1);

	cr_assert_not_null(big);
	memset(big, 'x', PROTO_MAX_CMDLINE_BYTES);
	big[PROTO_MAX_CMDLINE_BYTES] = '\0';
	for (int i = 0; i < N; i++)
		procs[i] = (struct proto_proc){ .pid = 2, .state = 'S', .comm = "x", .cmdline = big };
	struct proto_msg m = ps_reply(procs, N);
	encode_fails(&m, EMSGSIZE, "the payload passes the limit of 262144 bytes at procs.cmdline[");
	free(big);
}

Test(proto_query, encoder_refuses_stats_that_cannot_be)
{
	struct proto_msg m = stats_reply();

	m.stats.npercpu = 1;
	encode_fails(&m, EINVAL, "1 per-CPU figures for 2 CPUs (want 2)");
	m = stats_reply();
	m.stats.percpu_ns = NULL;
	encode_fails(&m, EINVAL, "percpu is NULL, but its count is 2");
	m = stats_reply();
	m.stats.cpu_kernel_ns = 401;
	encode_fails(&m, EINVAL, "are more than the total");
	m = stats_reply();
	m.stats.mem_cache_bytes = m.stats.mem_total_bytes + 1;
	encode_fails(&m, EINVAL, "is more than the total");
}
