/* The protocol's terminal (common/proto.h, version 4): EXEC's flags and size,
 * which close its frame, and RESIZE. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

/* --- helpers -------------------------------------------------------------------- */

static const char *sh_argv[] = { "sh" };

static struct proto_msg tty_exec(uint16_t rows, uint16_t cols)
{
	return (struct proto_msg){ .type = PROTO_EXEC, .id = 30, .exec = {
		.exec_id = 7, .streams = PROTO_WANT_STDIN | PROTO_WANT_STDOUT, .argc = 1,
		.argv = sh_argv, .flags = PROTO_EXEC_TTY, .rows = rows, .cols = cols } };
}

/* A whole EXEC of `sh` with these streams, flags and size. */
static void wexec(struct wire *w, uint32_t streams, uint32_t flags, uint16_t rows, uint16_t cols)
{
	whdr(w, PROTO_EXEC, 0, 30);
	w32(w, 7);                 /* exec_id */
	w32(w, streams);
	w32(w, 0);                 /* uid */
	w32(w, 0);                 /* gid */
	wstr(w, "", 0);            /* root */
	wstr(w, "", 0);            /* cwd */
	w32(w, 1);
	wstr(w, "sh", 2);
	w32(w, 0);                 /* envc */
	w32(w, 0);                 /* ngroups */
	wexec_tail(w, flags, rows, cols);
	wseal(w);
}

static void wresize(struct wire *w, uint32_t exec_id, uint16_t rows, uint16_t cols)
{
	whdr(w, PROTO_RESIZE, 0, 31);
	w32(w, exec_id);
	w16(w, rows);
	w16(w, cols);
	wseal(w);
}

/* --- round trips ------------------------------------------------------------------ */

Test(proto_tty, version_and_name)
{
	cr_assert_geq(PROTO_VERSION, 8, "EXEC's path, MOUNT's ROOT opt: a new version");
	cr_assert_str_eq(proto_type_name(PROTO_RESIZE), "RESIZE");
	cr_assert_str_eq(proto_type_name(PROTO_NETCONF), "NETCONF");
}

Test(proto_tty, round_trips_exec_on_a_terminal_at_every_size_extreme)
{
	const uint16_t sizes[][2] = { { 0, 0 }, { 24, 80 }, { 0xffff, 0xffff }, { 0, 0xffff } };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct proto_msg m = tty_exec(sizes[i][0], sizes[i][1]), d;
		round_trip(&m, &d);
		cr_assert_eq(d.exec.flags, PROTO_EXEC_TTY);
		cr_assert_eq(d.exec.rows, sizes[i][0]);
		cr_assert_eq(d.exec.cols, sizes[i][1]);
		cr_assert_eq(d.exec.streams, PROTO_WANT_STDIN | PROTO_WANT_STDOUT);
		cr_assert_str_eq(d.exec.argv[0], "sh");
		proto_msg_free(&d);
	}
}

Test(proto_tty, round_trips_exec_without_a_terminal)
{
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 1, .argv = sh_argv,
							     .streams = PROTO_WANT_STDERR } }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.exec.flags, 0);
	cr_assert_eq(d.exec.rows, 0);
	cr_assert_eq(d.exec.cols, 0);
	proto_msg_free(&d);
}

Test(proto_tty, round_trips_resize)
{
	struct proto_msg m = { .type = PROTO_RESIZE, .id = 31,
			       .resize = { .exec_id = 0xfffffffeu, .rows = 0xffff, .cols = 0 } }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.resize.exec_id, 0xfffffffeu);
	cr_assert_eq(d.resize.rows, 0xffff);
	cr_assert_eq(d.resize.cols, 0);
	cr_assert_null(d.arena);
	proto_msg_free(&d);
}

/* --- wire format ------------------------------------------------------------------ */

Test(proto_tty, encodes_resize_as_u32_u16_u16)
{
	struct proto_msg m = { .type = PROTO_RESIZE, .id = 2,
			       .resize = { .exec_id = 0x11223344, .rows = 0x0102, .cols = 0x0a0b } };
	const uint8_t want[] = { 8, 0, 0, 0,  PROTO_RESIZE, 0,  0, 0,  2, 0, 0, 0,
				 0x44, 0x33, 0x22, 0x11,  0x02, 0x01,  0x0b, 0x0a };
	uint8_t *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	free(buf);
}

/* Version 3's EXEC is a prefix of version 4's: its fields follow the groups,
 * and version 5's nine fields (36 bytes for a process without attributes),
 * version 6's two maps (8 bytes without) and version 8's path (4 bytes
 * without) follow them. */
Test(proto_tty, exec_ends_with_flags_rows_cols)
{
	struct proto_msg m = tty_exec(0x0102, 0x0304);
	const uint8_t tail[] = { 1, 0, 0, 0,  0x02, 0x01,  0x04, 0x03 };
	struct rv_err err = { 0 };
	struct proto_msg d;
	struct wire w;
	uint8_t *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	cr_assert_arr_eq(buf + len - 48 - sizeof(tail), tail, sizeof(tail));
	wexec(&w, PROTO_WANT_STDIN | PROTO_WANT_STDOUT, PROTO_EXEC_TTY, 0x0102, 0x0304);
	cr_assert_eq(proto_decode(w.b, w.n, &d, &err), 0, "%s", err.msg);
	cr_assert_eq(d.exec.rows, 0x0102);
	cr_assert_eq(d.exec.cols, 0x0304);
	proto_msg_free(&d);
	free(buf);
}

/* --- decoder rejections ----------------------------------------------------------- */

Test(proto_tty, rejects_a_version_3_to_7_exec)
{
	struct wire w;

	wexec(&w, 0, 0, 0, 0);
	w.n -= 48 + 8;             /* no flags, rows, cols, nor version 5's, 6's and 8's fields */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: flags needs 4 bytes, only 0 are left");
	wexec(&w, 0, 0, 0, 0);
	w.n -= 48 + 2;             /* no cols */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: cols needs 2 bytes, only 0 are left");
	wexec(&w, 0, 0, 0, 0);
	w.n -= 48;                 /* version 4's */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: umask needs 4 bytes, only 0 are left");
	wexec(&w, 0, 0, 0, 0);
	w.n -= 12;                 /* version 5's */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: uid_map needs 4 bytes, only 0 are left");
	wexec(&w, 0, 0, 0, 0);
	w.n -= 4;                  /* version 6's and 7's */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: path needs 4 bytes, only 0 are left");
}

Test(proto_tty, rejects_unknown_exec_flags)
{
	const uint32_t bad[] = { 16, 0x80000000u, PROTO_EXEC_TTY | 32 };
	char want[64];
	struct wire w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wexec(&w, PROTO_WANT_STDOUT, bad[i], 0, 0);
		snprintf(want, sizeof(want), "EXEC frame: flags 0x%x has unknown bits (known: 0xf)",
			 bad[i]);
		decode_fails(&w, EPROTO, want);
	}
}

Test(proto_tty, rejects_a_terminal_with_a_stderr_stream)
{
	struct wire w;

	wexec(&w, PROTO_WANT_STDOUT | PROTO_WANT_STDERR, PROTO_EXEC_TTY, 24, 80);
	decode_fails(&w, EPROTO, "EXEC frame: a process on a terminal has no stderr stream");
}

Test(proto_tty, rejects_a_terminal_without_stdout)
{
	struct wire w;

	wexec(&w, PROTO_WANT_STDIN, PROTO_EXEC_TTY, 24, 80);
	decode_fails(&w, EPROTO, "EXEC frame: a process on a terminal needs its stdout stream");
}

Test(proto_tty, rejects_a_size_without_a_terminal)
{
	struct wire w;

	wexec(&w, PROTO_WANT_STDOUT, 0, 0, 80);
	decode_fails(&w, EPROTO, "EXEC frame: a terminal size (0x80) without a terminal");
}

Test(proto_tty, rejects_resize_cut_short_or_with_trailing_bytes)
{
	struct wire w;

	wresize(&w, 1, 24, 80);
	w.n -= 1;
	wseal(&w);
	decode_fails(&w, EPROTO, "RESIZE frame: cols needs 2 bytes, only 1 are left");
	wresize(&w, 1, 24, 80);
	w16(&w, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "RESIZE frame: 2 bytes after the last field");
}

/* The types after them: test_proto_reseed.c. */
Test(proto_tty, frame_check_knows_resize_mknod_netconf)
{
	struct rv_err err;
	struct wire w;

	wresize(&w, 1, 24, 80);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), (long)w.n);
	whdr(&w, PROTO_MKNOD, 0, 1);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), (long)w.n);
	whdr(&w, PROTO_NETCONF, 0, 1);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), (long)w.n);
}

/* --- encoder refusals ------------------------------------------------------------- */

Test(proto_tty, encoder_refuses_what_the_decoder_refuses)
{
	struct proto_msg m = tty_exec(24, 80);

	m.exec.flags = 16;
	encode_fails(&m, EINVAL, "EXEC message: flags 0x10 has unknown bits");
	m = tty_exec(24, 80);
	m.exec.streams |= PROTO_WANT_STDERR;
	encode_fails(&m, EINVAL, "EXEC message: a process on a terminal has no stderr stream");
	m = tty_exec(24, 80);
	m.exec.streams = PROTO_WANT_STDIN;
	encode_fails(&m, EINVAL, "EXEC message: a process on a terminal needs its stdout stream");
	m = tty_exec(24, 80);
	m.exec.flags = 0;
	encode_fails(&m, EINVAL, "EXEC message: a terminal size (24x80) without a terminal");
}
