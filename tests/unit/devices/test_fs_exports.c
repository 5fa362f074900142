/* Exports of their own kind. One regular file (an OCI bind of /etc/hosts):
 * the guest reads and writes that file and reaches nothing beside it;
 * anything but a directory or a regular file is refused as an export. A
 * host's whole root (`runvm do`): the kernel's filesystems mounted in it
 * are not there for the guest. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/fs/server.h"

#define OUT_BYTES (64u * 1024)

static struct fs_server *srv;
static char top[64], file[96];
static uint8_t out[OUT_BYTES];
static uint64_t next_unique = 100;

/* One request with an argument and up to one name; the reply's error
 * (positive errno) and body. */
static int call(uint32_t opcode, uint64_t nodeid, const void *arg, size_t arg_len,
		const char *name, const uint8_t **body, size_t *body_len)
{
	uint8_t buf[4096];
	size_t len = sizeof(struct fuse_in_header);
	struct fuse_out_header oh;

	if (arg_len)
		memcpy(buf + len, arg, arg_len);
	len += arg_len;
	if (name) {
		memcpy(buf + len, name, strlen(name) + 1);
		len += strlen(name) + 1;
	}
	struct fuse_in_header h = { .len = (uint32_t)len, .opcode = opcode, .unique = next_unique++,
				    .nodeid = nodeid };
	memcpy(buf, &h, sizeof(h));
	struct iovec in_iov = { buf, len }, out_iov = { out, OUT_BYTES };
	size_t n = fs_server_handle(srv, (struct fs_iov){ &in_iov, 1, len },
				    (struct fs_iov){ &out_iov, 1, OUT_BYTES });
	cr_assert_geq(n, sizeof(oh));
	memcpy(&oh, out, sizeof(oh));
	if (body) {
		*body = out + sizeof(oh);
		*body_len = n - sizeof(oh);
	}
	return -oh.error;
}

static void setup(void)
{
	struct rv_err err;
	struct fuse_init_in init = { .major = 7, .minor = 38, .max_readahead = 1 << 20 };

	snprintf(top, sizeof(top), "/tmp/runvm-fs-file.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(file, sizeof(file), "%s/hosts", top);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("127.0.0.1 localhost\n", f);
	fclose(f);
	char secret[128];
	snprintf(secret, sizeof(secret), "%s/secret", top);
	cr_assert_eq(close(open(secret, O_CREAT | O_WRONLY, 0600)), 0);
	struct fs_options opt = { 0 };
	srv = fs_server_new(&opt, NULL, &err);
	cr_assert_not_null(srv, "%s", err.msg);
	struct fs_export_cfg hosts = { .name = "vol0", .path = file };
	cr_assert_eq(fs_server_add_export(srv, &hosts, &err), 0, "%s", err.msg);
	cr_assert_eq(call(FUSE_INIT, 0, &init, sizeof(init), NULL, NULL, NULL), 0);
}

static void teardown(void)
{
	char cmd[128];

	fs_server_free(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(fs_file_export, .init = setup, .fini = teardown);

Test(fs_file_export, is_a_regular_file_the_guest_reads_and_writes)
{
	const uint8_t *body;
	size_t len;
	struct fuse_entry_out e;

	cr_assert_eq(call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "vol0", &body, &len), 0);
	memcpy(&e, body, sizeof(e));
	cr_expect(S_ISREG(e.attr.mode), "mode 0%o", e.attr.mode);
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct fuse_open_out oo;
	cr_assert_eq(call(FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, &body, &len), 0);
	memcpy(&oo, body, sizeof(oo));
	struct fuse_read_in ri = { .fh = oo.fh, .size = 100 };
	cr_assert_eq(call(FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL, &body, &len), 0);
	cr_expect_eq(len, 20);
	cr_expect_eq(memcmp(body, "127.0.0.1 localhost\n", 20), 0);
	struct fuse_write_in wi = { .fh = oo.fh, .offset = 20, .size = 4 };
	uint8_t wr[sizeof(wi) + 4];
	memcpy(wr, &wi, sizeof(wi));
	memcpy(wr + sizeof(wi), "x y\n", 4);
	cr_assert_eq(call(FUSE_WRITE, e.nodeid, wr, sizeof(wr), NULL, NULL, NULL), 0);
	struct stat st;
	cr_assert_eq(stat(file, &st), 0);
	cr_expect_eq(st.st_size, 24, "the write reached the host's file");
}

Test(fs_file_export, nothing_beside_it_can_be_looked_up)
{
	const uint8_t *body;
	size_t len;
	struct fuse_entry_out e;

	cr_assert_eq(call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "vol0", &body, &len), 0);
	memcpy(&e, body, sizeof(e));
	cr_expect_eq(call(FUSE_LOOKUP, e.nodeid, NULL, 0, "secret", NULL, NULL), ENOTDIR);
	cr_expect_eq(call(FUSE_LOOKUP, e.nodeid, NULL, 0, "..", NULL, NULL), EINVAL);
	struct fuse_mkdir_in mi = { .mode = 0755 };
	cr_expect_neq(call(FUSE_MKDIR, e.nodeid, &mi, sizeof(mi), "d", NULL, NULL), 0);
}

Test(fs_file_export, a_socket_is_no_export)
{
	struct rv_err err;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", top);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct fs_export_cfg sock = { .name = "vol1", .path = sa.sun_path };
	cr_expect_eq(fs_server_add_export(srv, &sock, &err), -1);
	cr_expect_not_null(strstr(err.msg, "is neither a directory nor a regular file"), "%s",
			   err.msg);
	close(fd);
}

/* A pod's next container: its rootfs comes as an fd (a detached copy of
 * its mounts, open_tree), added while the server serves, and the caller's
 * fd may close at once. */
Test(fs_file_export, an_export_given_as_an_fd_is_served_at_once_and_read_only_holds)
{
	struct rv_err err;
	const uint8_t *body;
	size_t len;
	struct fuse_entry_out e;
	int fd = open_tree(AT_FDCWD, top, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (fd < 0 && (errno == EPERM || errno == ENOSYS))
		fd = open(top, O_PATH | O_CLOEXEC);     /* the same to the server */
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	struct fs_export_cfg pod = { .name = "pod0", .path = top, .readonly = true };
	cr_assert_eq(fs_server_add_export_fd(srv, &pod, fd, &err), 0, "%s", err.msg);
	close(fd);
	cr_assert_eq(call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "pod0", &body, &len), 0);
	memcpy(&e, body, sizeof(e));
	cr_expect(S_ISDIR(e.attr.mode), "mode 0%o", e.attr.mode);
	cr_assert_eq(call(FUSE_LOOKUP, e.nodeid, NULL, 0, "hosts", &body, &len), 0);
	struct fuse_mkdir_in mi = { .mode = 0755 };
	cr_expect_eq(call(FUSE_MKDIR, e.nodeid, &mi, sizeof(mi), "d", NULL, NULL), EROFS);
	int again = open(top, O_PATH | O_CLOEXEC);
	cr_expect_eq(fs_server_add_export_fd(srv, &pod, again, &err), -1, "a name is taken once");
	cr_expect_eq(err.code, EEXIST, "%s", err.msg);
	struct fs_export_cfg bad = { .name = "../x", .path = top };
	cr_expect_eq(fs_server_add_export_fd(srv, &bad, again, &err), -1);
	cr_expect_eq(err.code, EINVAL, "%s", err.msg);
	close(again);
}

/* --- hide_kernel_fs ----------------------------------------------------------- */

/* top holds data/ (a plain directory), proc/ (a procfs) and sys/ (a sysfs),
 * mounted in a mount namespace of this test's own; exported twice, hiding
 * and not. */
static void setup_root(void)
{
	struct rv_err err;
	struct fuse_init_in init = { .major = 7, .minor = 38, .max_readahead = 1 << 20 };
	char path[128];

	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(top, sizeof(top), "/tmp/runvm-fs-root.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	const char *dirs[] = { "data", "proc", "sys" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", top, dirs[i]);
		cr_assert_eq(mkdir(path, 0755), 0);
	}
	snprintf(path, sizeof(path), "%s/proc", top);
	cr_assert_eq(mount("proc", path, "proc", 0, NULL), 0, "mount proc: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/sys", top);
	cr_assert_eq(mount("sysfs", path, "sysfs", 0, NULL), 0, "mount sysfs: %s", strerror(errno));
	struct fs_options opt = { 0 };
	srv = fs_server_new(&opt, NULL, &err);
	cr_assert_not_null(srv, "%s", err.msg);
	struct fs_export_cfg hiding = { .name = "root", .path = top, .readonly = true,
					.hide_kernel_fs = true };
	struct fs_export_cfg plain = { .name = "plain", .path = top, .readonly = true };
	cr_assert_eq(fs_server_add_export(srv, &hiding, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_server_add_export(srv, &plain, &err), 0, "%s", err.msg);
	cr_assert_eq(call(FUSE_INIT, 0, &init, sizeof(init), NULL, NULL, NULL), 0);
}

static void teardown_root(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/proc", top);
	umount2(path, MNT_DETACH);
	snprintf(path, sizeof(path), "%s/sys", top);
	umount2(path, MNT_DETACH);
	teardown();       /* frees the server, removes top */
}

static uint64_t lookup_export(const char *name)
{
	const uint8_t *body;
	size_t len;
	struct fuse_entry_out e;

	cr_assert_eq(call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, name, &body, &len), 0);
	memcpy(&e, body, sizeof(e));
	return e.nodeid;
}

TestSuite(fs_hide_kernel_fs, .init = setup_root, .fini = teardown_root);

Test(fs_hide_kernel_fs, proc_and_sysfs_are_not_there)
{
	uint64_t root = lookup_export("root");

	cr_expect_eq(call(FUSE_LOOKUP, root, NULL, 0, "data", NULL, NULL), 0);
	cr_expect_eq(call(FUSE_LOOKUP, root, NULL, 0, "proc", NULL, NULL), ENOENT);
	cr_expect_eq(call(FUSE_LOOKUP, root, NULL, 0, "sys", NULL, NULL), ENOENT);
}

Test(fs_hide_kernel_fs, only_where_the_export_asks)
{
	uint64_t plain = lookup_export("plain");

	cr_expect_eq(call(FUSE_LOOKUP, plain, NULL, 0, "proc", NULL, NULL), 0);
	cr_expect_eq(call(FUSE_LOOKUP, plain, NULL, 0, "sys", NULL, NULL), 0);
}

Test(fs_hide_kernel_fs, a_kernel_fs_is_no_such_export)
{
	struct rv_err err;
	char path[128];

	snprintf(path, sizeof(path), "%s/proc", top);
	struct fs_export_cfg proc = { .name = "proc", .path = path, .hide_kernel_fs = true };
	cr_expect_eq(fs_server_add_export(srv, &proc, &err), -1);
	cr_expect_not_null(strstr(err.msg, "one of the kernel's own filesystems"), "%s", err.msg);
}
