/* MKNOD (protocol version 6): a device node of OCI linux.devices, each field
 * refused out of its range by the encoder and the decoder alike. */
#include <criterion/criterion.h>
#include <errno.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

static struct proto_msg fuse_node(void)
{
	return (struct proto_msg){ .type = PROTO_MKNOD, .id = 4, .mknod = {
		.root = "/run/runvm/fs/rootfs", .target = "/dev/fuse", .kind = 'c', .major = 10,
		.minor = 229,
		.mode = 0660, .uid = 100000, .gid = 5 } };
}

Test(proto_mknod, round_trips)
{
	struct proto_msg m = fuse_node(), d;

	round_trip(&m, &d);
	cr_expect_str_eq(d.mknod.root, "/run/runvm/fs/rootfs");
	cr_expect_str_eq(d.mknod.target, "/dev/fuse");
	cr_expect_eq(d.mknod.kind, 'c');
	cr_expect_eq(d.mknod.major, 10);
	cr_expect_eq(d.mknod.minor, 229);
	cr_expect_eq(d.mknod.mode, 0660);
	cr_expect_eq(d.mknod.uid, 100000);
	cr_expect_eq(d.mknod.gid, 5);
	proto_msg_free(&d);
	m.mknod = (struct proto_mknod){ .root = "/", .target = "/p", .kind = 'p', .mode = 07777 };
	round_trip(&m, &d);
	cr_expect_eq(d.mknod.kind, 'p');
	proto_msg_free(&d);
}

Test(proto_mknod, out_of_range_fields_are_refused)
{
	struct proto_msg m;

	m = fuse_node(); m.mknod.kind = 'u';
	encode_fails(&m, EINVAL, "kind 117 is none of 'c', 'b', 'p'");
	m = fuse_node(); m.mknod.mode = 010000;
	encode_fails(&m, EINVAL, "mode 010000 is more than 07777");
	m = fuse_node(); m.mknod.major = PROTO_MAX_DEV_MAJOR + 1;
	encode_fails(&m, EINVAL, "device 4096:229");
	m = fuse_node(); m.mknod.minor = PROTO_MAX_DEV_MINOR + 1;
	encode_fails(&m, EINVAL, "beyond 4095:1048575");
	m = fuse_node(); m.mknod.kind = 'p';
	encode_fails(&m, EINVAL, "or given for a FIFO");
	m = fuse_node(); m.mknod.target = "dev/fuse";
	encode_fails(&m, EINVAL, "target 'dev/fuse' is not an absolute path");
	m = fuse_node(); m.mknod.root = "";
	encode_fails(&m, EINVAL, "root '' is not an absolute path");
}

Test(proto_mknod, the_decoder_refuses_them_too)
{
	struct wire w;

	whdr(&w, PROTO_MKNOD, 0, 1);
	wstr(&w, "/", 1);
	wstr(&w, "/dev/x", 6);
	w32(&w, 'b'); w32(&w, 8); w32(&w, 0); w32(&w, 0600); w32(&w, 0); w32(&w, 0);
	wseal(&w);
	struct proto_msg d;
	struct rv_err err = { 0 };
	cr_assert_eq(proto_decode(w.b, w.n, &d, &err), 0, "%s", err.msg);
	proto_msg_free(&d);
	w.n -= 8;                      /* no uid, no gid */
	wseal(&w);
	decode_fails(&w, EPROTO, "MKNOD frame: uid needs 4 bytes, only 0 are left");
	whdr(&w, PROTO_MKNOD, 0, 1);
	wstr(&w, "/", 1);
	wstr(&w, "/dev/x", 6);
	w32(&w, 'p'); w32(&w, 1); w32(&w, 2); w32(&w, 0600); w32(&w, 0); w32(&w, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "MKNOD frame: device 1:2: beyond 4095:1048575, or given for a FIFO");
}
