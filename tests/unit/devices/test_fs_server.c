/* The FUSE request server, called the way both transports call it, with the
 * requests a hostile guest would send: malformed headers, bad names, node ids
 * and handles never given out, escapes out of an export, changes to a
 * read-only export. Each gets its FUSE error; nothing reaches outside. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "devices/fs/server.h"

#define OUT_BYTES (64u * 1024)

static struct fs_server *srv;
static char top[64], rw_dir[96], ro_dir[96], outside[96];
static uint8_t out[OUT_BYTES];
static uint64_t next_unique = 100;

struct reply {
	int error;            /* positive errno, 0 for success */
	size_t len;           /* body bytes */
	const uint8_t *body;
	bool none;            /* no reply at all */
};

static struct reply send_raw(const void *req, size_t len, size_t out_len)
{
	struct iovec in_iov = { (void *)req, len }, out_iov = { out, out_len };
	size_t n = fs_server_handle(srv, (struct fs_iov){ &in_iov, 1, len },
				    (struct fs_iov){ &out_iov, 1, out_len });
	struct fuse_out_header oh;

	if (n == 0)
		return (struct reply){ .none = true };
	cr_assert_geq(n, sizeof(oh));
	memcpy(&oh, out, sizeof(oh));
	cr_assert_eq(oh.len, n);
	return (struct reply){ .error = -oh.error, .len = n - sizeof(oh), .body = out + sizeof(oh) };
}

/* header + fixed argument + up to two NUL-terminated strings */
static struct reply req(uint32_t opcode, uint64_t nodeid, const void *arg, size_t arg_len,
			const char *s1, const char *s2)
{
	uint8_t buf[8192];
	size_t len = sizeof(struct fuse_in_header);

	if (arg_len)
		memcpy(buf + len, arg, arg_len);
	len += arg_len;
	for (const char *s = s1; s; s = s == s1 ? s2 : NULL) {
		memcpy(buf + len, s, strlen(s) + 1);
		len += strlen(s) + 1;
	}
	struct fuse_in_header h = { .len = (uint32_t)len, .opcode = opcode, .unique = next_unique++,
				    .nodeid = nodeid };
	memcpy(buf, &h, sizeof(h));
	return send_raw(buf, len, OUT_BYTES);
}

static uint64_t lookup(uint64_t parent, const char *name, int *err)
{
	struct reply r = req(FUSE_LOOKUP, parent, NULL, 0, name, NULL);
	struct fuse_entry_out e;

	*err = r.error;
	if (r.error)
		return 0;
	cr_assert_eq(r.len, sizeof(e));
	memcpy(&e, r.body, sizeof(e));
	return e.nodeid;
}

static uint64_t must_lookup(uint64_t parent, const char *name)
{
	int err;
	uint64_t id = lookup(parent, name, &err);

	cr_assert_eq(err, 0, "lookup %s: %s", name, strerror(err));
	return id;
}

static uint64_t open_node(uint64_t nodeid, uint32_t flags, int *err)
{
	struct fuse_open_in in = { .flags = flags };
	struct reply r = req(FUSE_OPEN, nodeid, &in, sizeof(in), NULL, NULL);
	struct fuse_open_out o;

	*err = r.error;
	if (r.error)
		return 0;
	memcpy(&o, r.body, sizeof(o));
	return o.fh;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	struct rv_err err;
	char p[160];

	snprintf(top, sizeof(top), "/tmp/runvm-fs-test.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(rw_dir, sizeof(rw_dir), "%s/rw", top);
	snprintf(ro_dir, sizeof(ro_dir), "%s/ro", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	mkdir(rw_dir, 0755);
	mkdir(ro_dir, 0755);
	mkdir(outside, 0755);
	write_file(outside, "secret", "host secret\n");
	write_file(ro_dir, "file", "read me\n");
	write_file(rw_dir, "file", "hello\n");
	snprintf(p, sizeof(p), "%s/secret", outside);
	char link[160];
	snprintf(link, sizeof(link), "%s/abs-link", rw_dir);
	cr_assert_eq(symlink(p, link), 0);
	snprintf(link, sizeof(link), "%s/rel-link", rw_dir);
	cr_assert_eq(symlink("../outside/secret", link), 0);
	snprintf(link, sizeof(link), "%s/fifo", rw_dir);
	cr_assert_eq(mkfifo(link, 0644), 0);

	struct fs_options opt = { 0 };
	srv = fs_server_new(&opt, NULL, &err);
	cr_assert_not_null(srv, "%s", err.msg);
	struct fs_export_cfg rw = { .name = "rootfs", .path = rw_dir };
	struct fs_export_cfg ro = { .name = "vol0", .path = ro_dir, .readonly = true };
	cr_assert_eq(fs_server_add_export(srv, &rw, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_server_add_export(srv, &ro, &err), 0, "%s", err.msg);
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 1 << 20 };
	cr_assert_eq(req(FUSE_INIT, 0, &in, sizeof(in), NULL, NULL).error, 0);
}

static void teardown(void)
{
	char cmd[128];

	fs_server_free(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(fs_server, .init = setup, .fini = teardown);

/* --- framing ------------------------------------------------------------------- */

Test(fs_server, a_request_shorter_than_its_header_gets_no_reply)
{
	uint8_t buf[16] = { 0 };
	cr_assert(send_raw(buf, sizeof(buf), OUT_BYTES).none);
}

Test(fs_server, a_length_that_disagrees_with_the_buffer_is_einval)
{
	struct fuse_in_header h = { .len = 4096, .opcode = FUSE_GETATTR, .unique = 7, .nodeid = 1 };
	struct reply r = send_raw(&h, sizeof(h), OUT_BYTES);
	cr_assert_eq(r.error, EINVAL);
}

Test(fs_server, unknown_opcodes_are_enosys)
{
	cr_assert_eq(req(9999, 1, NULL, 0, NULL, NULL).error, ENOSYS);
	cr_assert_eq(req(FUSE_IOCTL, 1, NULL, 0, NULL, NULL).error, ENOSYS);
}

Test(fs_server, requests_before_init_are_refused)
{
	struct rv_err err;
	struct fs_options opt = { 0 };
	struct fs_server *fresh = fs_server_new(&opt, NULL, &err);
	struct fs_server *saved = srv;
	srv = fresh;
	struct fuse_getattr_in in = { 0 };
	cr_assert_eq(req(FUSE_GETATTR, 1, &in, sizeof(in), NULL, NULL).error, EIO);
	srv = saved;
	fs_server_free(fresh);
}

Test(fs_server, an_old_protocol_minor_is_eproto)
{
	struct fuse_init_in in = { .major = 7, .minor = 20 };
	cr_assert_eq(req(FUSE_INIT, 0, &in, sizeof(in), NULL, NULL).error, EPROTO);
}

Test(fs_server, a_reply_buffer_too_small_for_the_reply_is_einval)
{
	uint8_t buf[64];
	struct fuse_in_header h = { .len = sizeof(h) + sizeof(struct fuse_getattr_in), .opcode = FUSE_GETATTR,
				    .unique = 9, .nodeid = 1 };
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	cr_assert_eq(send_raw(buf, h.len, sizeof(struct fuse_out_header) + 8).error, EINVAL);
}

/* --- names ---------------------------------------------------------------------- */

Test(fs_server, the_root_lists_the_exports)
{
	int err;
	cr_assert_neq(lookup(1, "rootfs", &err), 0);
	cr_assert_neq(lookup(1, "vol0", &err), 0);
	lookup(1, "etc", &err);
	cr_assert_eq(err, ENOENT);
}

Test(fs_server, names_with_a_slash_dot_dot_or_no_nul_are_einval)
{
	uint64_t root = must_lookup(1, "rootfs");
	int err;

	lookup(root, "../outside", &err);
	cr_assert_eq(err, EINVAL);
	lookup(root, "..", &err);
	cr_assert_eq(err, EINVAL);
	lookup(root, ".", &err);
	cr_assert_eq(err, EINVAL);
	lookup(root, "", &err);
	cr_assert_eq(err, EINVAL);
	/* no terminating NUL: the request ends inside the name */
	uint8_t buf[sizeof(struct fuse_in_header) + 4];
	struct fuse_in_header h = { .len = sizeof(buf), .opcode = FUSE_LOOKUP, .unique = 3, .nodeid = root };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "file", 4);
	cr_assert_eq(send_raw(buf, sizeof(buf), OUT_BYTES).error, EINVAL);
}

Test(fs_server, node_ids_never_given_out_or_forgotten_are_ebadf)
{
	struct fuse_getattr_in in = { 0 };
	cr_assert_eq(req(FUSE_GETATTR, 123456, &in, sizeof(in), NULL, NULL).error, EBADF);
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	struct fuse_forget_in f = { .nlookup = 1 };
	cr_assert(req(FUSE_FORGET, file, &f, sizeof(f), NULL, NULL).none, "FORGET has no reply");
	cr_assert_eq(req(FUSE_GETATTR, file, &in, sizeof(in), NULL, NULL).error, EBADF);
}

Test(fs_server, forget_and_release_free_what_lookup_and_open_took)
{
	size_t i0, h0, i1, h1;
	uint64_t root = must_lookup(1, "rootfs");
	fs_server_counts(srv, &i0, &h0);
	uint64_t file = must_lookup(root, "file");
	must_lookup(root, "file");
	int err;
	uint64_t fh = open_node(file, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	fs_server_counts(srv, &i1, &h1);
	cr_assert_eq(i1, i0 + 1, "two lookups of one file are one inode");
	cr_assert_eq(h1, h0 + 1);
	struct fuse_release_in rel = { .fh = fh };
	cr_assert_eq(req(FUSE_RELEASE, file, &rel, sizeof(rel), NULL, NULL).error, 0);
	cr_assert_eq(req(FUSE_RELEASE, file, &rel, sizeof(rel), NULL, NULL).error, EBADF,
		     "a released handle is gone");
	struct fuse_forget_in f = { .nlookup = 2 };
	req(FUSE_FORGET, file, &f, sizeof(f), NULL, NULL);
	fs_server_counts(srv, &i1, &h1);
	cr_assert_eq(i1, i0);
	cr_assert_eq(h1, h0);
}

Test(fs_server, batch_forget_with_a_count_beyond_its_entries_stops_at_the_end)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	struct { struct fuse_batch_forget_in b; struct fuse_forget_one one; } in = {
		.b = { .count = 1000000 }, .one = { .nodeid = file, .nlookup = 1 } };
	cr_assert(req(FUSE_BATCH_FORGET, 0, &in, sizeof(in), NULL, NULL).none);
	struct fuse_getattr_in g = { 0 };
	cr_assert_eq(req(FUSE_GETATTR, file, &g, sizeof(g), NULL, NULL).error, EBADF);
}

/* --- escapes --------------------------------------------------------------------- */

Test(fs_server, symlinks_are_never_followed_by_open)
{
	uint64_t root = must_lookup(1, "rootfs");
	int err;
	uint64_t abs = must_lookup(root, "abs-link");
	open_node(abs, O_RDONLY, &err);
	cr_assert_eq(err, ELOOP);
	uint64_t rel = must_lookup(root, "rel-link");
	open_node(rel, O_RDONLY, &err);
	cr_assert_eq(err, ELOOP);
	struct reply r = req(FUSE_READLINK, rel, NULL, 0, NULL, NULL);
	cr_assert_eq(r.error, 0);
	cr_assert_eq(r.len, strlen("../outside/secret"), "readlink gives the text, the guest resolves it");
}

Test(fs_server, create_over_a_symlink_does_not_follow_it)
{
	uint64_t root = must_lookup(1, "rootfs");
	struct fuse_create_in in = { .flags = O_WRONLY | O_CREAT, .mode = S_IFREG | 0644 };
	struct reply r = req(FUSE_CREATE, root, &in, sizeof(in), "abs-link", NULL);
	cr_assert_neq(r.error, 0);
	char p[160], buf[32] = { 0 };
	snprintf(p, sizeof(p), "%s/secret", outside);
	FILE *f = fopen(p, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "host secret\n");
}

Test(fs_server, fifos_and_device_nodes_are_not_opened_on_the_host)
{
	uint64_t root = must_lookup(1, "rootfs");
	int err;
	open_node(must_lookup(root, "fifo"), O_RDONLY, &err);
	cr_assert_eq(err, ENXIO);
	struct fuse_mknod_in mk = { .mode = S_IFCHR | 0666, .rdev = makedev(1, 3) };
	cr_assert_eq(req(FUSE_MKNOD, root, &mk, sizeof(mk), "null", NULL).error, EPERM);
}

Test(fs_server, renames_and_links_across_exports_are_exdev)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t vol = must_lookup(1, "vol0");
	struct fuse_link_in l = { .oldnodeid = must_lookup(root, "file") };
	struct reply r = req(FUSE_LINK, vol, &l, sizeof(l), "copy", NULL);
	cr_assert(r.error == EROFS || r.error == EXDEV);
	struct fuse_rename2_in rn = { .newdir = vol };
	r = req(FUSE_RENAME2, root, &rn, sizeof(rn), "file", "moved");
	cr_assert(r.error == EROFS || r.error == EXDEV);
}

Test(fs_server, the_synthetic_root_cannot_be_changed)
{
	struct fuse_mkdir_in in = { .mode = 0755 };
	cr_assert_eq(req(FUSE_MKDIR, 1, &in, sizeof(in), "new", NULL).error, EROFS);
	cr_assert_eq(req(FUSE_UNLINK, 1, NULL, 0, "rootfs", NULL).error, EROFS);
	cr_assert_eq(req(FUSE_RMDIR, 1, NULL, 0, "rootfs", NULL).error, EROFS);
}

/* --- read-only exports ------------------------------------------------------------- */

Test(fs_server, a_read_only_export_refuses_every_change)
{
	uint64_t vol = must_lookup(1, "vol0");
	uint64_t file = must_lookup(vol, "file");
	int err;
	open_node(file, O_WRONLY, &err);
	cr_assert_eq(err, EROFS);
	open_node(file, O_RDONLY | O_TRUNC, &err);
	cr_assert_eq(err, EROFS);
	struct fuse_create_in c = { .flags = O_WRONLY, .mode = S_IFREG | 0644 };
	cr_assert_eq(req(FUSE_CREATE, vol, &c, sizeof(c), "new", NULL).error, EROFS);
	struct fuse_mkdir_in m = { .mode = 0755 };
	cr_assert_eq(req(FUSE_MKDIR, vol, &m, sizeof(m), "d", NULL).error, EROFS);
	cr_assert_eq(req(FUSE_UNLINK, vol, NULL, 0, "file", NULL).error, EROFS);
	struct fuse_setattr_in s = { .valid = FATTR_MODE, .mode = 0777 };
	cr_assert_eq(req(FUSE_SETATTR, file, &s, sizeof(s), NULL, NULL).error, EROFS);
	uint8_t x[sizeof(struct fuse_setxattr_in) + 32] = { 0 };
	struct { uint32_t size, flags; } sx = { 1, 0 };
	memcpy(x, &sx, sizeof(sx));
	cr_assert_eq(req(FUSE_SETXATTR, file, x, 8, "user.a", "1").error, EROFS);
	struct stat st;
	char p[160];
	snprintf(p, sizeof(p), "%s/file", ro_dir);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644, "the host file is unchanged");
}

/* --- I/O ------------------------------------------------------------------------ */

Test(fs_server, a_huge_read_is_capped_to_the_reply_buffer)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	int err;
	uint64_t fh = open_node(file, O_RDONLY, &err);
	struct fuse_read_in in = { .fh = fh, .size = 0xffffffffu };
	struct reply r = req(FUSE_READ, file, &in, sizeof(in), NULL, NULL);
	cr_assert_eq(r.error, 0);
	cr_assert_eq(r.len, 6);
	cr_assert_eq(memcmp(r.body, "hello\n", 6), 0);
}

Test(fs_server, stale_or_made_up_handles_are_ebadf)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	struct fuse_read_in in = { .fh = 0x1234567800000001ull, .size = 16 };
	cr_assert_eq(req(FUSE_READ, file, &in, sizeof(in), NULL, NULL).error, EBADF);
	in.fh = 0;
	cr_assert_eq(req(FUSE_READ, file, &in, sizeof(in), NULL, NULL).error, EBADF);
}

Test(fs_server, a_write_whose_size_disagrees_with_its_payload_is_einval)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	int err;
	uint64_t fh = open_node(file, O_RDWR, &err);
	uint8_t arg[sizeof(struct fuse_write_in) + 4];
	struct fuse_write_in w = { .fh = fh, .size = 1000 };
	memcpy(arg, &w, sizeof(w));
	memcpy(arg + sizeof(w), "abcd", 4);
	cr_assert_eq(req(FUSE_WRITE, file, arg, sizeof(arg), NULL, NULL).error, EINVAL);
	w.size = 4;
	memcpy(arg, &w, sizeof(w));
	struct reply r = req(FUSE_WRITE, file, arg, sizeof(arg), NULL, NULL);
	cr_assert_eq(r.error, 0);
	struct fuse_write_out wo;
	memcpy(&wo, r.body, sizeof(wo));
	cr_assert_eq(wo.size, 4);
}

Test(fs_server, security_xattrs_live_under_user_runvm_on_the_host)
{
	uint64_t root = must_lookup(1, "rootfs");
	uint64_t file = must_lookup(root, "file");
	struct { uint32_t size, flags; } sx = { 3, 0 };
	struct reply r = req(FUSE_SETXATTR, file, &sx, sizeof(sx), "security.capability", "abc");
	if (r.error == EOPNOTSUPP)
		cr_skip_test("this filesystem has no user xattrs");
	cr_assert_eq(r.error, 0);
	char p[160], val[8] = { 0 };
	snprintf(p, sizeof(p), "%s/file", rw_dir);
	cr_assert_eq(getxattr(p, "user.runvm.security.capability", val, sizeof(val)), 3);
	cr_assert_eq(getxattr(p, "security.capability", val, sizeof(val)), -1, "never the host's own");
	struct fuse_getxattr_in g = { .size = 64 };
	r = req(FUSE_GETXATTR, file, &g, sizeof(g), "security.capability", NULL);
	cr_assert_eq(r.error, 0);
	cr_assert_eq(r.len, 3);
	cr_assert_eq(req(FUSE_GETXATTR, file, &g, sizeof(g), "user.runvm.security.capability", NULL).error,
		     ENODATA, "the guest cannot name the host-side key");
}

Test(fs_server, create_of_an_existing_fifo_fails_instead_of_blocking)
{
	uint64_t root = must_lookup(1, "rootfs");
	struct fuse_create_in in = { .flags = O_RDONLY | O_CREAT, .mode = S_IFREG | 0644 };
	cr_assert_eq(req(FUSE_CREATE, root, &in, sizeof(in), "fifo", NULL).error, ENXIO,
		     "opening the FIFO on the host would wait for a writer forever");
	in.flags = O_RDWR | O_CREAT;
	struct reply r = req(FUSE_CREATE, root, &in, sizeof(in), "file", NULL);
	cr_assert_eq(r.error, 0, "an existing regular file opens");
}

/* --- locks: held on the host, so host processes see them -------------------------- */

struct lk_call {
	uint32_t opcode;
	uint64_t nodeid, unique;
	struct fuse_lk_in in;
	int error;                    /* the reply's */
	struct fuse_lk_out got;
	uint8_t out[512];             /* own reply buffer: calls may run on threads */
};

static int lk_send(struct lk_call *c)
{
	struct {
		struct fuse_in_header h;
		struct fuse_lk_in in;
	} m = { { .len = sizeof(m), .opcode = c->opcode, .unique = c->unique, .nodeid = c->nodeid }, c->in };
	struct iovec in_iov = { &m, sizeof(m) }, out_iov = { c->out, sizeof(c->out) };
	size_t n = fs_server_handle(srv, (struct fs_iov){ &in_iov, 1, sizeof(m) },
				    (struct fs_iov){ &out_iov, 1, sizeof(c->out) });
	struct fuse_out_header oh;
	memcpy(&oh, c->out, sizeof(oh));
	c->error = n < sizeof(oh) ? -1 : -oh.error;
	if (c->error == 0 && n >= sizeof(oh) + sizeof(c->got))
		memcpy(&c->got, c->out + sizeof(oh), sizeof(c->got));
	return c->error;
}

/* A POSIX lock request from `owner` on [start, end] (end ~0: to EOF). */
static int posix_lk(uint32_t opcode, uint64_t node, uint64_t owner, uint32_t type, uint64_t start,
		    uint64_t end, struct fuse_lk_out *got)
{
	struct lk_call c = { .opcode = opcode, .nodeid = node, .unique = next_unique++,
			     .in = { .owner = owner, .lk = { .start = start, .end = end, .type = type } } };
	lk_send(&c);
	if (got)
		*got = c.got;
	return c.error;
}

static int flock_lk(uint32_t opcode, uint64_t node, uint64_t fh, uint32_t type)
{
	struct lk_call c = { .opcode = opcode, .nodeid = node, .unique = next_unique++,
			     .in = { .fh = fh, .lk = { .type = type }, .lk_flags = FUSE_LK_FLOCK } };
	return lk_send(&c);
}

static int host_fd(const char *name)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", rw_dir, name);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	return fd;
}

/* The file opened on the host side with a whole-file OFD write lock on it. */
static int host_write_lock(void)
{
	int fd = host_fd("file");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	return fd;
}

static void *lk_thread(void *arg)
{
	lk_send(arg);
	return NULL;
}

/* A SETLKW for a read lock on byte 0 from owner 0xA, sent on a thread of its
 * own and given 100 ms to start waiting. */
static void start_setlkw(struct lk_call *w, pthread_t *t, uint64_t node, uint64_t unique)
{
	*w = (struct lk_call){ .opcode = FUSE_SETLKW, .nodeid = node, .unique = unique,
			       .in = { .owner = 0xA, .lk = { .start = 0, .end = 0, .type = F_RDLCK } } };
	cr_assert_eq(pthread_create(t, NULL, lk_thread, w), 0);
	usleep(100 * 1000);
}

#define EOF_END 0x7fffffffffffffffull

Test(fs_server, posix_locks_conflict_between_owners_and_go_with_flush)
{
	uint64_t node = must_lookup(must_lookup(1, "rootfs"), "file");
	struct fuse_lk_out got;

	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xA, F_WRLCK, 0, 99, NULL), 0);
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xB, F_WRLCK, 50, 60, NULL), EAGAIN);
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xA, F_WRLCK, 50, 60, NULL), 0, "an owner's own locks never conflict");
	cr_assert_eq(posix_lk(FUSE_GETLK, node, 0xB, F_RDLCK, 10, EOF_END, &got), 0);
	cr_assert_eq(got.lk.type, F_WRLCK);
	cr_assert_eq(got.lk.start, 0);
	cr_assert_eq(got.lk.end, 99);
	cr_assert_eq(posix_lk(FUSE_GETLK, node, 0xB, F_RDLCK, 100, EOF_END, &got), 0);
	cr_assert_eq(got.lk.type, F_UNLCK, "past the lock there is no conflict");

	/* A host process sees the guest's lock. */
	int fd = host_fd("file");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 1 };
	cr_assert_eq(fcntl(fd, F_OFD_GETLK, &fl), 0);
	cr_assert_eq(fl.l_type, F_WRLCK);

	/* Owner A closes an fd of the file: all its locks go (POSIX's rule). */
	struct fuse_flush_in fin = { .fh = 0, .lock_owner = 0xA };
	int err;
	fin.fh = open_node(node, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	cr_assert_eq(req(FUSE_FLUSH, node, &fin, sizeof(fin), NULL, NULL).error, 0);
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xB, F_WRLCK, 50, 60, NULL), 0);
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	cr_assert_eq(fcntl(fd, F_OFD_GETLK, &fl), 0);
	cr_assert_eq(fl.l_type, F_UNLCK, "owner A's lock on byte 0 went with its flush");
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xB, F_UNLCK, 0, EOF_END, NULL), 0);
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xC, F_UNLCK, 0, EOF_END, NULL), 0, "unlock without locks");
	close(fd);
}

Test(fs_server, a_host_lock_blocks_setlkw_until_released_or_interrupted)
{
	uint64_t node = must_lookup(must_lookup(1, "rootfs"), "file");
	int fd = host_write_lock();
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	struct lk_call w;
	pthread_t t;

	fs_server_set_workers(srv, 3);
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 0xA, F_RDLCK, 0, 0, NULL), EAGAIN);

	/* Interrupted: the waiting guest process got a signal. */
	start_setlkw(&w, &t, node, 4242);
	struct fuse_interrupt_in ii = { .unique = 4242 };
	cr_assert(req(FUSE_INTERRUPT, 0, &ii, sizeof(ii), NULL, NULL).none);
	pthread_join(t, NULL);
	cr_assert_eq(w.error, EINTR);

	/* Released by the host: the waiter gets the lock. */
	start_setlkw(&w, &t, node, 4343);
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	pthread_join(t, NULL);
	cr_assert_eq(w.error, 0);
	fl.l_type = F_WRLCK;
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), -1, "the guest holds it now");
	close(fd);
}

Test(fs_server, setlkw_waits_are_bounded_and_cancelled_by_the_transport)
{
	uint64_t node = must_lookup(must_lookup(1, "rootfs"), "file");
	int fd = host_write_lock();
	struct lk_call w;
	pthread_t t;

	fs_server_set_workers(srv, 1);
	cr_assert_eq(posix_lk(FUSE_SETLKW, node, 0xA, F_RDLCK, 0, 0, NULL), EDEADLK,
		     "one thread: waiting would leave none to release the lock");
	fs_server_set_workers(srv, 2);
	start_setlkw(&w, &t, node, 77);
	cr_assert_eq(posix_lk(FUSE_SETLKW, node, 0xB, F_RDLCK, 0, 0, NULL), EDEADLK, "the one wait slot is taken");
	fs_server_cancel_waits(srv, true);
	pthread_join(t, NULL);
	cr_assert_eq(w.error, EINTR);
	cr_assert_eq(posix_lk(FUSE_SETLKW, node, 0xB, F_RDLCK, 0, 0, NULL), EDEADLK, "stopping: no new waits");
	close(fd);
}

Test(fs_server, flock_belongs_to_the_open_handle)
{
	uint64_t node = must_lookup(must_lookup(1, "rootfs"), "file");
	int err;
	uint64_t fh1 = open_node(node, O_RDONLY, &err), fh2 = open_node(node, O_RDONLY, &err);
	int fd = host_fd("file");

	cr_assert_eq(flock_lk(FUSE_SETLK, node, fh1, F_WRLCK), 0);
	cr_assert_eq(flock_lk(FUSE_SETLK, node, fh2, F_RDLCK), EAGAIN);
	cr_assert_eq(flock(fd, LOCK_SH | LOCK_NB), -1, "the host sees the guest's flock");
	struct fuse_release_in rel = { .fh = fh1, .release_flags = FUSE_RELEASE_FLOCK_UNLOCK };
	cr_assert_eq(req(FUSE_RELEASE, node, &rel, sizeof(rel), NULL, NULL).error, 0);
	cr_assert_eq(flock_lk(FUSE_SETLK, node, fh2, F_RDLCK), 0);
	cr_assert_eq(flock(fd, LOCK_SH | LOCK_NB), 0, "shared with a shared lock");
	cr_assert_eq(flock_lk(FUSE_SETLK, node, fh1, F_RDLCK), EBADF, "a released handle");
	close(fd);
}

Test(fs_server, bad_lock_requests_get_their_errors)
{
	uint64_t rootfs = must_lookup(1, "rootfs");
	uint64_t node = must_lookup(rootfs, "file");

	cr_assert_eq(posix_lk(FUSE_SETLK, node, 1, F_WRLCK, 10, 5, NULL), EINVAL, "start past end");
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 1, F_WRLCK, 0, ~0ull, NULL), EINVAL, "end past OFFSET_MAX");
	cr_assert_eq(posix_lk(FUSE_SETLK, node, 1, 7, 0, 0, NULL), EINVAL, "no such lock type");
	cr_assert_eq(posix_lk(FUSE_GETLK, node, 1, F_UNLCK, 0, 0, NULL), EINVAL);
	cr_assert_eq(flock_lk(FUSE_SETLK, node, 12345, F_WRLCK), EBADF, "a handle never given out");
	cr_assert_eq(posix_lk(FUSE_SETLK, 1, 1, F_WRLCK, 0, 0, NULL), ENOLCK, "the synthetic root");
	cr_assert_eq(posix_lk(FUSE_SETLK, must_lookup(rootfs, "fifo"), 1, F_WRLCK, 0, 0, NULL), ENOLCK,
		     "a FIFO is never reopened");
	cr_assert_eq(posix_lk(FUSE_SETLK, 987654, 1, F_WRLCK, 0, 0, NULL), EBADF, "a node id never given out");
	struct fuse_lk_in short_in = { 0 };
	cr_assert_eq(req(FUSE_SETLK, node, &short_in, sizeof(short_in) - 8, NULL, NULL).error, EINVAL);
}

static mode_t host_mode(const char *name)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", rw_dir, name);
	cr_assert_eq(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static void set_host_mode(const char *name, mode_t mode)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/%s", rw_dir, name);
	cr_assert_eq(chmod(p, mode), 0);
}

static int write_flagged(uint64_t node, uint64_t fh, uint32_t write_flags)
{
	uint8_t arg[sizeof(struct fuse_write_in) + 1];
	struct fuse_write_in w = { .fh = fh, .size = 1, .write_flags = write_flags };

	memcpy(arg, &w, sizeof(w));
	arg[sizeof(w)] = 'x';
	return req(FUSE_WRITE, node, arg, sizeof(arg), NULL, NULL).error;
}

/* HANDLE_KILLPRIV_V2: the client leaves clearing set-ID bits to us. */
Test(fs_server, writes_truncates_and_o_trunc_opens_by_unprivileged_callers_clear_set_id_bits)
{
	struct fuse_init_in in = { .major = 7, .minor = 38, .flags = FUSE_HANDLE_KILLPRIV_V2 };
	struct reply r = req(FUSE_INIT, 0, &in, sizeof(in), NULL, NULL);
	struct fuse_init_out io;
	memcpy(&io, r.body, sizeof(io));
	cr_assert(io.flags & FUSE_HANDLE_KILLPRIV_V2, "INIT must offer HANDLE_KILLPRIV_V2");

	uint64_t root = must_lookup(1, "rootfs"), file = must_lookup(root, "file");
	int err;
	uint64_t fh = open_node(file, O_RDWR, &err);
	set_host_mode("file", 06755);
	cr_assert_eq(write_flagged(file, fh, 0), 0);
	cr_assert_eq(host_mode("file"), 06755, "a write by a CAP_FSETID caller keeps the bits");
	cr_assert_eq(write_flagged(file, fh, FUSE_WRITE_KILL_SUIDGID), 0);
	cr_assert_eq(host_mode("file"), 0755, "mode %o", host_mode("file"));

	set_host_mode("file", 02745);   /* set-group-ID without group execute: a lock mark, kept */
	cr_assert_eq(write_flagged(file, fh, FUSE_WRITE_KILL_SUIDGID), 0);
	cr_assert_eq(host_mode("file"), 02745, "mode %o", host_mode("file"));

	set_host_mode("file", 04755);
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE | FATTR_KILL_SUIDGID, .size = 0 };
	cr_assert_eq(req(FUSE_SETATTR, file, &sa, sizeof(sa), NULL, NULL).error, 0);
	cr_assert_eq(host_mode("file"), 0755, "mode %o", host_mode("file"));

	set_host_mode("file", 06755);
	struct fuse_open_in oi = { .flags = O_WRONLY | O_TRUNC, .open_flags = FUSE_OPEN_KILL_SUIDGID };
	cr_assert_eq(req(FUSE_OPEN, file, &oi, sizeof(oi), NULL, NULL).error, 0);
	cr_assert_eq(host_mode("file"), 0755, "mode %o", host_mode("file"));
}

/* READ by reference (fusedev's splice): big reads come back as a header and
 * a held fd, small ones inline. */
Test(fs_server, big_reads_can_be_answered_by_reference)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/big", rw_dir);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 100000; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	uint64_t root = must_lookup(1, "rootfs"), big = must_lookup(root, "big");
	int err;
	uint64_t fh = open_node(big, O_RDONLY, &err);
	cr_assert_eq(err, 0);

	struct fuse_read_in rd = { .fh = fh, .offset = 26, .size = 80000 };
	uint8_t buf[sizeof(struct fuse_in_header) + sizeof(rd)];
	struct fuse_in_header h = { .len = sizeof(buf), .opcode = FUSE_READ, .unique = 7, .nodeid = big };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rd, sizeof(rd));
	static uint8_t big_out[256 * 1024];   /* fusedev's is max_write and more */
	struct iovec in_iov = { buf, sizeof(buf) }, out_iov = { big_out, sizeof(big_out) };
	struct fs_read_ref ref;
	size_t n = fs_server_handle_ref(srv, (struct fs_iov){ &in_iov, 1, sizeof(buf) },
					(struct fs_iov){ &out_iov, 1, sizeof(big_out) }, &ref);
	cr_assert_eq(n, sizeof(struct fuse_out_header), "the reply is the header alone");
	cr_assert_geq(ref.fd, 0);
	cr_assert_eq(ref.offset, 26);
	cr_assert_eq(ref.len, 80000);
	char c;
	cr_assert_eq(pread(ref.fd, &c, 1, (off_t)ref.offset), 1);
	cr_assert_eq(c, 'a', "the fd is the file's");
	struct fuse_release_in rel = { .fh = fh };
	fs_read_ref_done(srv, &ref);
	cr_assert_eq(ref.fd, -1);
	cr_assert_eq(req(FUSE_RELEASE, big, &rel, sizeof(rel), NULL, NULL).error, 0);

	fh = open_node(big, O_RDONLY, &err);
	rd = (struct fuse_read_in){ .fh = fh, .size = 100 };
	memcpy(buf + sizeof(h), &rd, sizeof(rd));
	n = fs_server_handle_ref(srv, (struct fs_iov){ &in_iov, 1, sizeof(buf) },
				 (struct fs_iov){ &out_iov, 1, sizeof(big_out) }, &ref);
	cr_assert_eq(n, sizeof(struct fuse_out_header) + 100, "a small read comes inline");
	cr_assert_eq(ref.fd, -1);
}
