/* A container root's PID namespace (protocol version 8): MOUNT's PIDNS opt,
 * a container root's only, and EXEC's INIT flag, which names a root's init
 * and so needs a root. The encoder and the decoder refuse the same. */
#include <criterion/criterion.h>
#include <errno.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

static const char *sh_argv[] = { "sh" };

static struct proto_msg root_mount(uint32_t opts)
{
	return (struct proto_msg){ .type = PROTO_MOUNT, .id = 4, .mount = {
		.source = "/r", .target = "/r", .fstype = "", .flags = 0x5000 /* MS_BIND | MS_REC */,
		.data = "", .opts = opts } };
}

/* A bind MOUNT of /r onto itself with opts. */
static void wroot(struct wire *w, uint32_t opts)
{
	whdr(w, PROTO_MOUNT, 0, 4);
	wstr(w, "/r", 2);
	wstr(w, "/r", 2);
	wstr(w, "", 0);
	w32(w, 0x5000);
	wstr(w, "", 0);
	w32(w, opts);
	w32(w, 0);                 /* propagation */
	wseal(w);
}

/* An EXEC of sh with root and flags. */
static void wexec_root(struct wire *w, const char *root, size_t root_len, uint32_t flags)
{
	whdr(w, PROTO_EXEC, 0, 5);
	w32(w, 9);                 /* exec_id */
	w32(w, 0);                 /* streams */
	w32(w, 0);                 /* uid */
	w32(w, 0);                 /* gid */
	wstr(w, root, root_len);
	wstr(w, "", 0);            /* cwd */
	w32(w, 1);
	wstr(w, "sh", 2);
	w32(w, 0);                 /* envc */
	w32(w, 0);                 /* ngroups */
	wexec_tail(w, flags, 0, 0);
	wseal(w);
}

Test(proto_pidns, a_root_with_a_pid_namespace_round_trips)
{
	struct proto_msg m = root_mount(PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS), d;
	struct wire w;

	round_trip(&m, &d);
	cr_assert_eq(d.mount.opts, PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS);
	proto_msg_free(&d);
	wroot(&w, PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS);
	cr_assert_eq(proto_decode(w.b, w.n, &d, &(struct rv_err){ 0 }), 0);
	proto_msg_free(&d);
}

Test(proto_pidns, pidns_is_a_roots_opt_only)
{
	struct proto_msg m = root_mount(PROTO_MOUNT_PIDNS);
	struct wire w;

	encode_fails(&m, EINVAL, "opts 0x10: PIDNS (0x10) is a container root's (0x8) opt");
	wroot(&w, PROTO_MOUNT_PIDNS);
	decode_fails(&w, EPROTO, "MOUNT frame: opts 0x10: PIDNS (0x10) is a container root's (0x8) opt");
	m = root_mount(PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS | PROTO_MOUNT_MASK);
	encode_fails(&m, EINVAL, "opts 0x1a: a container's root (0x8) takes no other opt than PIDNS");
	wroot(&w, PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS | PROTO_MOUNT_MASK);
	decode_fails(&w, EPROTO, "MOUNT frame: opts 0x1a: a container's root (0x8) takes no other "
		     "opt than PIDNS (0x10)");
}

Test(proto_pidns, an_init_with_its_root_round_trips)
{
	struct proto_msg m = { .type = PROTO_EXEC, .id = 5, .exec = {
		.exec_id = 9, .argc = 1, .argv = sh_argv, .root = "/r",
		.flags = PROTO_EXEC_INIT } }, d;
	struct wire w;

	round_trip(&m, &d);
	cr_assert_eq(d.exec.flags, PROTO_EXEC_INIT);
	cr_assert_str_eq(d.exec.root, "/r");
	proto_msg_free(&d);
	wexec_root(&w, "/r", 2, PROTO_EXEC_INIT | PROTO_EXEC_NO_NEW_PRIVS);
	cr_assert_eq(proto_decode(w.b, w.n, &d, &(struct rv_err){ 0 }), 0);
	cr_assert_eq(d.exec.flags, PROTO_EXEC_INIT | PROTO_EXEC_NO_NEW_PRIVS);
	proto_msg_free(&d);
}

Test(proto_pidns, an_init_needs_a_root)
{
	struct proto_msg m = { .type = PROTO_EXEC, .id = 5, .exec = {
		.exec_id = 9, .argc = 1, .argv = sh_argv, .flags = PROTO_EXEC_INIT } };
	struct wire w;

	encode_fails(&m, EINVAL, "EXEC message: INIT (flag 0x8) without a root: an init is a "
		     "container root's");
	m.exec.root = "";
	encode_fails(&m, EINVAL, "INIT (flag 0x8) without a root");
	wexec_root(&w, "", 0, PROTO_EXEC_INIT);
	decode_fails(&w, EPROTO, "EXEC frame: INIT (flag 0x8) without a root");
}
