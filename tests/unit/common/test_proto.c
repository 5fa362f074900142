#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

/* --- helpers -------------------------------------------------------------------- */

/* The EXEC fields before argv, as a hand-made payload. */
static void wexec_head(struct wire *w)
{
	whdr(w, PROTO_EXEC, 0, 9);
	w32(w, 1);                 /* exec_id */
	w32(w, PROTO_WANT_STDOUT); /* streams */
	w32(w, 0);                 /* uid */
	w32(w, 0);                 /* gid */
	wstr(w, "", 0);            /* root */
	wstr(w, "/", 1);           /* cwd */
}

/* A MOUNT frame, whole, with the given target. */
static void wmount(struct wire *w, const char *target, size_t target_len)
{
	whdr(w, PROTO_MOUNT, 0, 12);
	wstr(w, "runvm", 5);        /* source */
	wstr(w, target, target_len);
	wstr(w, "virtiofs", 8);     /* fstype */
	w32(w, 0);                  /* flags */
	wstr(w, "", 0);             /* data */
	w32(w, 0);                  /* opts (version 5) */
	w32(w, 0);                  /* propagation (version 6) */
	wseal(w);
}

static char *filled(size_t n)
{
	char *s = malloc(n + 1);
	cr_assert_not_null(s);
	memset(s, 'a', n);
	s[n] = '\0';
	return s;
}

/* --- round trips, one per type ---------------------------------------------------- */

Test(proto, round_trips_hello)
{
	struct proto_msg m = { .type = PROTO_HELLO, .id = 0, .hello.version = PROTO_VERSION }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.hello.version, PROTO_VERSION);
	cr_assert_null(d.arena, "a frame without strings needs no arena");
	proto_msg_free(&d);
}

Test(proto, round_trips_ok)
{
	struct proto_msg m = { .type = PROTO_OK, .id = 42 }, d;

	round_trip(&m, &d);
	proto_msg_free(&d);
}

Test(proto, round_trips_error)
{
	struct proto_msg m = { .type = PROTO_ERROR, .id = 7,
			       .error = { .code = ENOENT, .message = "exec /bin/nope: not found" } };
	struct proto_msg d;

	round_trip(&m, &d);
	cr_assert_eq(d.error.code, ENOENT);
	cr_assert_str_eq(d.error.message, "exec /bin/nope: not found");
	proto_msg_free(&d);
}

Test(proto, round_trips_exec)
{
	const char *argv[] = { "/bin/sh", "-c", "echo hi", "" };
	const char *envp[] = { "PATH=/usr/bin:/bin", "HOME=/root" };
	const uint32_t groups[] = { 10, 0xffffffffu, 27 };
	struct proto_msg m = { .type = PROTO_EXEC, .id = 0x01020304,
			       .exec = { .exec_id = 5, .streams = PROTO_WANT_STDIN | PROTO_WANT_STDERR,
					 .uid = 1000, .gid = 1001, .root = "/run/runvm/fs/rootfs",
					 .cwd = "/srv/app",
					 .argc = 4, .argv = argv, .envc = 2, .envp = envp,
					 .ngroups = 3, .groups = groups } };
	struct proto_msg d;

	round_trip(&m, &d);
	const struct proto_exec *x = &d.exec;
	cr_assert_eq(x->exec_id, 5);
	cr_assert_eq(x->streams, PROTO_WANT_STDIN | PROTO_WANT_STDERR);
	cr_assert_eq(x->uid, 1000);
	cr_assert_eq(x->gid, 1001);
	cr_assert_str_eq(x->root, "/run/runvm/fs/rootfs");
	cr_assert_str_eq(x->cwd, "/srv/app");
	cr_assert_eq(x->argc, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_str_eq(x->argv[i], argv[i]);
	cr_assert_null(x->argv[4], "argv must be NULL-terminated for execve");
	cr_assert_eq(x->envc, 2);
	cr_assert_str_eq(x->envp[0], envp[0]);
	cr_assert_str_eq(x->envp[1], envp[1]);
	cr_assert_null(x->envp[2]);
	cr_assert_eq(x->ngroups, 3);
	cr_assert_arr_eq(x->groups, groups, sizeof(groups));
	proto_msg_free(&d);
}

Test(proto, round_trips_minimal_exec)
{
	const char *argv[] = { "true" };
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 1, .argv = argv } }, d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.exec.cwd, "", "an unset cwd travels as \"\"");
	cr_assert_str_eq(d.exec.root, "", "an unset root travels as \"\": no chroot");
	cr_assert_str_eq(d.exec.argv[0], "true");
	cr_assert_eq(d.exec.envc, 0);
	cr_assert_not_null(d.exec.envp);
	cr_assert_null(d.exec.envp[0]);
	cr_assert_eq(d.exec.ngroups, 0);
	proto_msg_free(&d);
}

Test(proto, round_trips_attach)
{
	struct proto_msg m = { .type = PROTO_ATTACH, .id = 3,
			       .attach = { .exec_id = 5, .stream = PROTO_STDERR } }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.attach.exec_id, 5);
	cr_assert_eq(d.attach.stream, PROTO_STDERR);
	proto_msg_free(&d);
}

Test(proto, round_trips_start)
{
	struct proto_msg m = { .type = PROTO_START, .id = 4, .start.exec_id = 5 }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.start.exec_id, 5);
	proto_msg_free(&d);
}

Test(proto, round_trips_started)
{
	struct proto_msg m = { .type = PROTO_STARTED, .id = 4, .started.pid = 31337 }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.started.pid, 31337);
	proto_msg_free(&d);
}

Test(proto, round_trips_signal)
{
	struct proto_msg m = { .type = PROTO_SIGNAL, .id = 8,
			       .signal = { .exec_id = 5, .signo = SIGTERM } }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.signal.exec_id, 5);
	cr_assert_eq(d.signal.signo, SIGTERM);
	proto_msg_free(&d);
}

Test(proto, round_trips_exit)
{
	struct proto_msg m = { .type = PROTO_EXIT, .id = 2,
			       .exit = { .exec_id = 5, .code = 0, .signo = SIGKILL } }, d;

	round_trip(&m, &d);
	cr_assert_eq(d.exit.exec_id, 5);
	cr_assert_eq(d.exit.code, 0);
	cr_assert_eq(d.exit.signo, SIGKILL);
	proto_msg_free(&d);
}

Test(proto, round_trips_shutdown)
{
	struct proto_msg m = { .type = PROTO_SHUTDOWN, .id = 99 }, d;

	round_trip(&m, &d);
	proto_msg_free(&d);
}

Test(proto, round_trips_mount)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .id = 13,
			       .mount = { .source = "/run/runvm/fs/vol0",
					  .target = "/run/runvm/fs/rootfs/data", .fstype = "",
					  .flags = MS_BIND | MS_REC | MS_RDONLY, .data = "" } };
	struct proto_msg d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.mount.source, "/run/runvm/fs/vol0");
	cr_assert_str_eq(d.mount.target, "/run/runvm/fs/rootfs/data");
	cr_assert_str_eq(d.mount.fstype, "");
	cr_assert_eq(d.mount.flags, MS_BIND | MS_REC | MS_RDONLY);
	cr_assert_str_eq(d.mount.data, "");
	proto_msg_free(&d);
}

Test(proto, round_trips_mount_with_options)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .id = 14,
			       .mount = { .source = "tmpfs", .target = "/tmp", .fstype = "tmpfs",
					  .flags = MS_NOSUID | MS_NODEV, .data = "mode=1777,size=64m" } };
	struct proto_msg d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.mount.source, "tmpfs");
	cr_assert_str_eq(d.mount.fstype, "tmpfs");
	cr_assert_eq(d.mount.flags, MS_NOSUID | MS_NODEV);
	cr_assert_str_eq(d.mount.data, "mode=1777,size=64m");
	proto_msg_free(&d);
}

Test(proto, round_trips_largest_string)
{
	char *big = filled(PROTO_MAX_STR_BYTES);
	struct proto_msg m = { .type = PROTO_ERROR, .error = { .code = 1, .message = big } }, d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.error.message, big);
	proto_msg_free(&d);
	free(big);
}

/* --- wire format ------------------------------------------------------------------ */

Test(proto, encodes_little_endian_header_and_fields)
{
	struct proto_msg m = { .type = PROTO_ATTACH, .id = 0x0a0b0c0d,
			       .attach = { .exec_id = 0x11223344, .stream = 1 } };
	const uint8_t want[] = { 8, 0, 0, 0,  4 + 1, 0,  0, 0,  0x0d, 0x0c, 0x0b, 0x0a,
				 0x44, 0x33, 0x22, 0x11,  1, 0, 0, 0 };
	uint8_t *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	free(buf);
}

Test(proto, encodes_mount_fields_in_wire_order)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .id = 1,
			       .mount = { .source = "s", .target = "/t", .fstype = "f",
					  .flags = 0x1001, .data = "d",
					  .opts = PROTO_MOUNT_IF_EXISTS, .propagation = 0x104000 } };
	const uint8_t want[] = { 33, 0, 0, 0,  11, 0,  0, 0,  1, 0, 0, 0,
				 1, 0, 0, 0, 's',  2, 0, 0, 0, '/', 't',  1, 0, 0, 0, 'f',
				 0x01, 0x10, 0, 0,  1, 0, 0, 0, 'd',  1, 0, 0, 0,
				 0x00, 0x40, 0x10, 0x00 };
	uint8_t *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	free(buf);
}

Test(proto, a_container_root_takes_no_other_mount_opt)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .id = 2,
			       .mount = { .source = "/r", .target = "/r", .fstype = "",
					  .flags = 0x5000 /* MS_BIND | MS_REC */, .data = "",
					  .opts = PROTO_MOUNT_ROOT, .propagation = 0x104000 } }, d;
	struct wire w;

	round_trip(&m, &d);
	cr_assert_eq(d.mount.opts, PROTO_MOUNT_ROOT);
	cr_assert_eq(d.mount.propagation, 0x104000, "a root's propagation travels with it");
	proto_msg_free(&d);
	static const uint32_t with[] = { PROTO_MOUNT_IF_EXISTS, PROTO_MOUNT_MASK, PROTO_MOUNT_DEVICES };
	for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++) {
		m.mount.opts = PROTO_MOUNT_ROOT | with[i];
		encode_fails(&m, EINVAL, "a container's root (0x8) takes no other opt than PIDNS");
		wmount(&w, "/mnt", 4);
		w.n -= 8;
		w32(&w, PROTO_MOUNT_ROOT | with[i]);
		w32(&w, 0);
		wseal(&w);
		char want[96];
		snprintf(want, sizeof(want), "MOUNT frame: opts 0x%x: a container's root (0x8) takes "
			 "no other opt than PIDNS (0x10)", PROTO_MOUNT_ROOT | with[i]);
		decode_fails(&w, EPROTO, want);
	}
}

Test(proto, encoder_appends_frames_one_after_another)
{
	struct proto_msg a = { .type = PROTO_START, .id = 1, .start.exec_id = 1 };
	struct proto_msg b = { .type = PROTO_OK, .id = 2 };
	struct rv_err err;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	cr_assert_eq(proto_encode(&a, &buf, &len, &cap, &err), 0);
	cr_assert_eq(proto_encode(&b, &buf, &len, &cap, &err), 0);
	cr_assert_eq(len, 16 + 12);
	cr_assert_eq(proto_frame_check(buf, len, &err), 16, "the first frame ends at 16");
	cr_assert_eq(proto_frame_check(buf + 16, len - 16, &err), 12);
	free(buf);
}

Test(proto, type_names)
{
	cr_assert_str_eq(proto_type_name(PROTO_HELLO), "HELLO");
	cr_assert_str_eq(proto_type_name(PROTO_EXEC), "EXEC");
	cr_assert_str_eq(proto_type_name(PROTO_SHUTDOWN), "SHUTDOWN");
	cr_assert_str_eq(proto_type_name(PROTO_MOUNT), "MOUNT");
	cr_assert_str_eq(proto_type_name(0), "unknown");
	cr_assert_str_eq(proto_type_name(PROTO_TYPE_MAX + 1), "unknown");
	cr_assert_str_eq(proto_type_name(0xffffffffu), "unknown");
}

/* --- frame_check ------------------------------------------------------------------ */

Test(proto, frame_check_needs_more_bytes)
{
	const char *argv[] = { "ls", "-l" };
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 2, .argv = argv } };
	struct rv_err err;
	uint8_t *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	for (size_t n = 0; n < len; n++)
		cr_assert_eq(proto_frame_check(buf, n, &err), 0, "%zu of %zu bytes", n, len);
	cr_assert_eq(proto_frame_check(buf, len, &err), (long)len);
	free(buf);
}

Test(proto, frame_check_rejects_oversized_length_from_four_bytes)
{
	const uint8_t b[4] = { 0x01, 0x00, 0x04, 0x00 };   /* 256 KiB + 1 */
	struct rv_err err;

	cr_assert_eq(proto_frame_check(b, sizeof(b), &err), -1);
	cr_assert_eq(err.code, EMSGSIZE);
	cr_assert(strstr(err.msg, "payload of 262145 bytes"), "%s", err.msg);
}

/* --- decoder rejections ----------------------------------------------------------- */

Test(proto, rejects_oversized_length)
{
	struct wire w;

	whdr(&w, PROTO_OK, 0, 0);
	w.b[0] = 0xff, w.b[1] = 0xff, w.b[2] = 0xff, w.b[3] = 0xff;
	decode_fails(&w, EMSGSIZE, "limit is 262144");
}

Test(proto, rejects_unknown_type)
{
	const uint16_t bad[] = { 0, PROTO_TYPE_MAX + 1, 0xffff };
	struct wire w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		whdr(&w, bad[i], 0, 0);
		decode_fails(&w, EPROTO, "unknown message type");
	}
}

Test(proto, rejects_reserved_bits)
{
	struct wire w;

	whdr(&w, PROTO_OK, 0x8000, 0);
	decode_fails(&w, EPROTO, "reserved field is 0x8000");
}

Test(proto, rejects_trailing_bytes)
{
	struct wire w;

	whdr(&w, PROTO_START, 0, 1);
	w32(&w, 5);
	w.b[w.n++] = 0;
	wseal(&w);
	decode_fails(&w, EPROTO, "START frame: 1 bytes after the last field");
}

Test(proto, rejects_bytes_after_the_frame)
{
	struct wire w;

	whdr(&w, PROTO_OK, 0, 1);
	w.b[w.n++] = 0;   /* not covered by payload_len */
	decode_fails(&w, EPROTO, "1 bytes after its end");
}

Test(proto, rejects_frame_shorter_than_its_header_says)
{
	struct wire w;

	whdr(&w, PROTO_START, 0, 1);
	w32(&w, 5);
	wseal(&w);
	w.n -= 1;
	decode_fails(&w, EPROTO, "cut short");
	w.n = 5;
	decode_fails(&w, EPROTO, "shorter than a 12-byte header");
}

Test(proto, rejects_missing_field)
{
	struct wire w;

	whdr(&w, PROTO_EXIT, 0, 1);
	w32(&w, 5);
	w32(&w, 0);   /* no signo */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXIT frame: signo needs 4 bytes, only 0 are left");
}

Test(proto, rejects_nul_in_string)
{
	struct wire w;

	whdr(&w, PROTO_ERROR, 0, 1);
	w32(&w, EIO);
	wstr(&w, "bad\0news", 8);
	wseal(&w);
	decode_fails(&w, EPROTO, "ERROR frame: message has a NUL byte at offset 3");
}

Test(proto, rejects_truncated_string)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 1);       /* argc */
	w32(&w, 10);      /* argv[0] claims 10 bytes ... */
	memcpy(w.b + w.n, "abc", 3);
	w.n += 3;         /* ... and has 3 */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: argv[0] needs 10 bytes, only 3 are left");
}

Test(proto, rejects_string_beyond_limit)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 4);
	for (int i = 0; i < 3; i++)
		wstr(&w, "x", 1);
	w32(&w, PROTO_MAX_STR_BYTES + 1);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "EXEC frame: argv[3] is 131073 bytes, the limit is 131072");
}

Test(proto, rejects_strv_count_beyond_limit)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 1);
	wstr(&w, "sh", 2);
	w32(&w, PROTO_MAX_STRV + 1);   /* envp */
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "EXEC frame: envp has 4097 entries, the limit is 4096");
}

Test(proto, rejects_strv_count_beyond_bytes_left)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 1000);
	wstr(&w, "sh", 2);
	wseal(&w);
	decode_fails(&w, EPROTO, "argv has 1000 entries, but only 6 bytes are left");
}

Test(proto, rejects_groups_count_beyond_limit)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 1);
	wstr(&w, "sh", 2);
	w32(&w, 0);
	w32(&w, 0xffffffffu);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "groups has 4294967295 entries");
}

Test(proto, rejects_exec_without_argv)
{
	struct wire w;

	wexec_head(&w);
	w32(&w, 0);   /* argc */
	w32(&w, 0);   /* envc */
	w32(&w, 0);   /* ngroups */
	wexec_tail(&w, 0, 0, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: argv is empty");
}

Test(proto, rejects_exec_streams_beyond_stdio)
{
	struct wire w;

	whdr(&w, PROTO_EXEC, 0, 9);
	w32(&w, 1);
	w32(&w, 0x8);
	w32(&w, 0);
	w32(&w, 0);
	wstr(&w, "", 0);
	wstr(&w, "", 0);
	w32(&w, 1);
	wstr(&w, "sh", 2);
	w32(&w, 0);
	w32(&w, 0);
	wexec_tail(&w, 0, 0, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "streams 0x8");
}

Test(proto, rejects_exec_with_relative_root)
{
	struct wire w;

	whdr(&w, PROTO_EXEC, 0, 9);
	w32(&w, 1);
	w32(&w, 0);
	w32(&w, 0);
	w32(&w, 0);
	wstr(&w, "rootfs", 6);     /* root: relative */
	wstr(&w, "/", 1);
	w32(&w, 1);
	wstr(&w, "sh", 2);
	w32(&w, 0);
	w32(&w, 0);
	wexec_tail(&w, 0, 0, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: root 'rootfs' is not an absolute path");
}

Test(proto, rejects_nul_in_exec_root)
{
	struct wire w;

	whdr(&w, PROTO_EXEC, 0, 9);
	w32(&w, 1);
	w32(&w, 0);
	w32(&w, 0);
	w32(&w, 0);
	wstr(&w, "/a\0b", 4);
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: root has a NUL byte at offset 2");
}

Test(proto, rejects_mount_with_relative_or_empty_target)
{
	struct wire w;

	wmount(&w, "mnt", 3);
	decode_fails(&w, EPROTO, "MOUNT frame: target 'mnt' is not an absolute path");
	wmount(&w, "", 0);
	decode_fails(&w, EPROTO, "MOUNT frame: target '' is not an absolute path");
}

Test(proto, rejects_nul_in_mount_target)
{
	struct wire w;

	wmount(&w, "/mnt\0/etc", 9);
	decode_fails(&w, EPROTO, "MOUNT frame: target has a NUL byte at offset 4");
}

Test(proto, rejects_mount_without_data)
{
	struct wire w;

	whdr(&w, PROTO_MOUNT, 0, 12);
	wstr(&w, "proc", 4);
	wstr(&w, "/proc", 5);
	wstr(&w, "proc", 4);
	w32(&w, 0);                 /* flags, then no data */
	wseal(&w);
	decode_fails(&w, EPROTO, "MOUNT frame: data needs 4 bytes, only 0 are left");
}

Test(proto, rejects_an_old_mount_and_unknown_opts_or_propagation)
{
	struct wire w;

	wmount(&w, "/mnt", 4);
	w.n -= 8;                   /* version 4's: no opts, no propagation */
	wseal(&w);
	decode_fails(&w, EPROTO, "MOUNT frame: opts needs 4 bytes, only 0 are left");
	wmount(&w, "/mnt", 4);
	w.n -= 4;                   /* version 5's */
	wseal(&w);
	decode_fails(&w, EPROTO, "MOUNT frame: propagation needs 4 bytes, only 0 are left");
	wmount(&w, "/mnt", 4);
	w.n -= 8;
	w32(&w, 0x20);
	w32(&w, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "MOUNT frame: opts 0x20 has unknown bits (known: 0x1f)");
	static const uint32_t bad[] = { 0x1 /* MS_RDONLY */, 0x40000 | 0x100000 /* private+shared */,
					0x4000 /* MS_REC alone */ };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wmount(&w, "/mnt", 4);
		w.n -= 4;
		w32(&w, bad[i]);
		wseal(&w);
		decode_fails(&w, EPROTO, "propagation 0x");
	}
}

Test(proto, rejects_mount_with_trailing_bytes)
{
	struct wire w;

	wmount(&w, "/mnt", 4);
	w32(&w, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "MOUNT frame: 4 bytes after the last field");
}

Test(proto, rejects_mount_string_beyond_limit)
{
	struct wire w;

	whdr(&w, PROTO_MOUNT, 0, 12);
	w32(&w, PROTO_MAX_STR_BYTES + 1);
	wseal(&w);
	decode_fails(&w, EMSGSIZE, "MOUNT frame: source is 131073 bytes, the limit is 131072");
}

Test(proto, accepts_a_well_formed_mount_frame)
{
	struct rv_err err = { 0 };
	struct proto_msg m;
	struct wire w;

	wmount(&w, "/run/runvm/fs", 13);
	cr_assert_eq(proto_decode(w.b, w.n, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(m.type, PROTO_MOUNT);
	cr_assert_eq(m.id, 12);
	cr_assert_str_eq(m.mount.source, "runvm");
	cr_assert_str_eq(m.mount.target, "/run/runvm/fs");
	cr_assert_str_eq(m.mount.fstype, "virtiofs");
	proto_msg_free(&m);
}

Test(proto, rejects_attach_stream_out_of_range)
{
	struct wire w;

	whdr(&w, PROTO_ATTACH, 0, 1);
	w32(&w, 1);
	w32(&w, 3);
	wseal(&w);
	decode_fails(&w, EPROTO, "ATTACH frame: stream 3");
}

/* --- encoder refusals ------------------------------------------------------------- */

Test(proto, encoder_refuses_oversized_payload)
{
	char *big = filled(PROTO_MAX_STR_BYTES);
	const char *argv[] = { big, big };
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 2, .argv = argv } };

	encode_fails(&m, EMSGSIZE, "EXEC message: the payload passes the limit of 262144 bytes "
		     "at argv[1]");
	free(big);
}

Test(proto, encoder_refuses_oversized_string)
{
	char *big = filled(PROTO_MAX_STR_BYTES + 1);
	struct proto_msg m = { .type = PROTO_ERROR, .error.message = big };

	encode_fails(&m, EMSGSIZE, "ERROR message: message is over the limit of 131072 bytes");
	free(big);
}

Test(proto, encoder_refuses_strv_count_beyond_limit)
{
	static const char *argv[PROTO_MAX_STRV + 1];
	struct proto_msg m = { .type = PROTO_EXEC,
			       .exec = { .argc = PROTO_MAX_STRV + 1, .argv = argv } };

	for (size_t i = 0; i <= PROTO_MAX_STRV; i++)
		argv[i] = "x";
	encode_fails(&m, EMSGSIZE, "argv has 4097 entries, the limit is 4096");
}

Test(proto, encoder_refuses_exec_without_argv)
{
	struct proto_msg m = { .type = PROTO_EXEC };

	encode_fails(&m, EINVAL, "argv is empty");
}

Test(proto, encoder_refuses_count_without_vector)
{
	const char *argv[] = { "sh", NULL };
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 2, .argv = argv } };

	encode_fails(&m, EINVAL, "argv[1] is NULL, but the count is 2");
	m.exec.argc = 1;
	m.exec.ngroups = 2;
	encode_fails(&m, EINVAL, "groups is NULL, but its count is 2");
}

Test(proto, encoder_refuses_unknown_type)
{
	struct proto_msg m = { .type = (enum proto_type)(PROTO_TYPE_MAX + 1) };
	char want[48];

	snprintf(want, sizeof(want), "unknown message type %d", PROTO_TYPE_MAX + 1);
	encode_fails(&m, EINVAL, want);
}

Test(proto, encoder_refuses_relative_paths)
{
	const char *argv[] = { "sh" };
	struct proto_msg x = { .type = PROTO_EXEC,
			       .exec = { .argc = 1, .argv = argv, .root = "rootfs" } };
	struct proto_msg m = { .type = PROTO_MOUNT, .mount = { .source = "proc", .target = "proc",
							       .fstype = "proc" } };

	encode_fails(&x, EINVAL, "EXEC message: root 'rootfs' is not an absolute path");
	encode_fails(&m, EINVAL, "MOUNT message: target 'proc' is not an absolute path");
	m.mount.target = NULL;
	encode_fails(&m, EINVAL, "MOUNT message: target '' is not an absolute path");
}

Test(proto, encoder_sends_unset_mount_strings_as_empty)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .mount = { .target = "/mnt" } }, d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.mount.source, "");
	cr_assert_str_eq(d.mount.fstype, "");
	cr_assert_str_eq(d.mount.data, "");
	proto_msg_free(&d);
}

Test(proto, encoder_refuses_attach_stream_out_of_range)
{
	struct proto_msg m = { .type = PROTO_ATTACH, .attach.stream = 7 };

	encode_fails(&m, EINVAL, "stream 7");
}

/* --- ownership -------------------------------------------------------------------- */

Test(proto, msg_free_is_safe_on_zeroed_and_freed_msgs)
{
	const char *argv[] = { "sh" };
	struct proto_msg m = { .type = PROTO_EXEC, .exec = { .argc = 1, .argv = argv } }, d;
	struct proto_msg zero = { 0 };

	proto_msg_free(&zero);
	round_trip(&m, &d);
	cr_assert_not_null(d.arena);
	proto_msg_free(&d);
	cr_assert_null(d.arena);
	cr_assert_null(d.exec.argv, "no pointer into the freed arena may survive");
	proto_msg_free(&d);
}

/* --- proto_send / proto_recv ------------------------------------------------------ */

static void stream_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

Test(proto, send_and_recv_over_a_socketpair)
{
	const char *argv[] = { "/bin/echo", "hi" };
	struct proto_msg hello = { .type = PROTO_HELLO, .id = 1, .hello.version = PROTO_VERSION };
	struct proto_msg exec = { .type = PROTO_EXEC, .id = 2,
				  .exec = { .exec_id = 3, .argc = 2, .argv = argv } };
	struct rv_err err;
	struct proto_msg got;
	int sv[2];

	stream_pair(sv);
	cr_assert_eq(proto_send(sv[0], &hello, &err), 0, "%s", err.msg);
	cr_assert_eq(proto_send(sv[0], &exec, &err), 0, "%s", err.msg);
	cr_assert_eq(proto_recv(sv[1], &got, &err), 0, "%s", err.msg);
	cr_assert_eq(got.type, PROTO_HELLO);
	cr_assert_eq(got.hello.version, PROTO_VERSION);
	proto_msg_free(&got);
	cr_assert_eq(proto_recv(sv[1], &got, &err), 0, "%s", err.msg);
	cr_assert_eq(got.type, PROTO_EXEC);
	cr_assert_eq(got.id, 2);
	cr_assert_str_eq(got.exec.argv[1], "hi");
	proto_msg_free(&got);
	close(sv[0]);
	close(sv[1]);
}

Test(proto, send_and_recv_a_frame_larger_than_the_socket_buffer)
{
	char *big = filled(PROTO_MAX_STR_BYTES);
	const char *argv[] = { big };
	struct proto_msg m = { .type = PROTO_EXEC, .id = 5, .exec = { .argc = 1, .argv = argv } };
	struct rv_err err;
	struct proto_msg got;
	int sv[2], status;

	stream_pair(sv);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		_exit(proto_send(sv[0], &m, &err) == 0 ? 0 : 1);
	cr_assert_eq(proto_recv(sv[1], &got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got.exec.argv[0], big);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the sender failed");
	proto_msg_free(&got);
	free(big);
}

Test(proto, send_falls_back_to_write_on_a_pipe)
{
	struct proto_msg m = { .type = PROTO_STARTED, .id = 6, .started.pid = 77 }, got;
	struct rv_err err;
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(proto_send(p[1], &m, &err), 0, "%s", err.msg);
	cr_assert_eq(proto_recv(p[0], &got, &err), 0, "%s", err.msg);
	cr_assert_eq(got.started.pid, 77);
	proto_msg_free(&got);
	close(p[0]);
	close(p[1]);
}

Test(proto, send_to_a_closed_peer_fails_without_sigpipe)
{
	struct proto_msg m = { .type = PROTO_OK, .id = 1 };
	struct rv_err err;
	int sv[2];

	stream_pair(sv);
	close(sv[1]);
	cr_assert_eq(proto_send(sv[0], &m, &err), -1);
	cr_assert_eq(err.code, EPIPE, "%s", err.msg);
	cr_assert(strstr(err.msg, "send OK frame"), "%s", err.msg);
	close(sv[0]);
}

Test(proto, recv_returns_1_on_eof_before_a_frame)
{
	struct proto_msg got;
	struct rv_err err;
	int sv[2];

	stream_pair(sv);
	close(sv[0]);
	cr_assert_eq(proto_recv(sv[1], &got, &err), 1);
	cr_assert_null(got.arena);
	proto_msg_free(&got);
	close(sv[1]);
}

Test(proto, recv_fails_on_eof_inside_the_header)
{
	struct proto_msg got;
	struct rv_err err;
	int sv[2];

	stream_pair(sv);
	cr_assert_eq(write(sv[0], "\x04\x00\x00\x00\x01", 5), 5);
	close(sv[0]);
	cr_assert_eq(proto_recv(sv[1], &got, &err), -1);
	cr_assert_eq(err.code, EPROTO);
	cr_assert_str_eq(err.msg, "connection closed 5 bytes into a frame header");
	close(sv[1]);
}

Test(proto, recv_fails_on_eof_inside_the_payload)
{
	struct proto_msg m = { .type = PROTO_EXIT, .id = 1, .exit = { .exec_id = 1, .code = 3 } };
	struct proto_msg got;
	struct rv_err err;
	uint8_t *buf;
	size_t len;
	int sv[2];

	encode_ok(&m, &buf, &len);
	stream_pair(sv);
	cr_assert_eq(write(sv[0], buf, len - 2), (ssize_t)(len - 2));
	close(sv[0]);
	cr_assert_eq(proto_recv(sv[1], &got, &err), -1);
	cr_assert_eq(err.code, EPROTO);
	cr_assert_str_eq(err.msg, "EXIT frame: connection closed 10 bytes into its 12-byte "
			 "payload");
	close(sv[1]);
	free(buf);
}

Test(proto, recv_refuses_a_bad_header_before_reading_its_payload)
{
	struct proto_msg got;
	struct rv_err err;
	struct wire w;
	int sv[2];

	whdr(&w, PROTO_OK, 1, 0);
	stream_pair(sv);
	cr_assert_eq(write(sv[0], w.b, w.n), (ssize_t)w.n);
	cr_assert_eq(proto_recv(sv[1], &got, &err), -1);
	cr_assert_eq(err.code, EPROTO);
	cr_assert(strstr(err.msg, "reserved field"), "%s", err.msg);
	close(sv[0]);
	close(sv[1]);
}
