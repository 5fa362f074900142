/* Removing an export from a live server (a pod's container that ended): its
 * name leaves the synthetic root, everything under it is let go and its host
 * fds close, the client's old node ids (ESTALE) and fh values (EBADF) reach
 * nothing, not even the export that takes its slot next, and a request in
 * flight keeps what it holds until it ends. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/fs/server.h"

#define OUT_BYTES (64u * 1024)

static struct fs_server *srv;
static char top[64], pod_dir[96], vol_dir[96];
static uint8_t out[OUT_BYTES];
static uint64_t next_unique = 100;

struct reply {
	int error;            /* positive errno, 0 for success */
	size_t len;           /* body bytes */
	const uint8_t *body;
	bool none;            /* no reply at all */
};

/* header + fixed argument + up to one name, answered into `into` (threads
 * each bring their own) */
static struct reply send_req(uint8_t *into, uint32_t opcode, uint64_t nodeid, const void *arg,
			     size_t arg_len, const char *name)
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
	struct fuse_in_header h = { .len = (uint32_t)len, .opcode = opcode, .nodeid = nodeid,
				    .unique = __atomic_fetch_add(&next_unique, 1, __ATOMIC_RELAXED) };
	memcpy(buf, &h, sizeof(h));
	struct iovec in_iov = { buf, len }, out_iov = { into, OUT_BYTES };
	size_t n = fs_server_handle(srv, (struct fs_iov){ &in_iov, 1, len },
				    (struct fs_iov){ &out_iov, 1, OUT_BYTES });
	if (n == 0)
		return (struct reply){ .none = true };
	cr_assert_geq(n, sizeof(oh));
	memcpy(&oh, into, sizeof(oh));
	cr_assert_eq(oh.len, n);
	return (struct reply){ .error = -oh.error, .len = n - sizeof(oh), .body = into + sizeof(oh) };
}

static struct reply req(uint32_t opcode, uint64_t nodeid, const void *arg, size_t arg_len,
			const char *name)
{
	return send_req(out, opcode, nodeid, arg, arg_len, name);
}

static uint64_t must_lookup(uint64_t parent, const char *name)
{
	struct reply r = req(FUSE_LOOKUP, parent, NULL, 0, name);
	struct fuse_entry_out e;

	cr_assert_eq(r.error, 0, "lookup %s: %s", name, strerror(r.error));
	memcpy(&e, r.body, sizeof(e));
	return e.nodeid;
}

static uint64_t must_open(uint32_t opcode, uint64_t nodeid)
{
	struct fuse_open_in in = { .flags = opcode == FUSE_OPENDIR ? O_RDONLY | O_DIRECTORY : O_RDWR };
	struct reply r = req(opcode, nodeid, &in, sizeof(in), NULL);
	struct fuse_open_out o;

	cr_assert_eq(r.error, 0, "open %llu: %s", (unsigned long long)nodeid, strerror(r.error));
	memcpy(&o, r.body, sizeof(o));
	return o.fh;
}

static int getattr(uint64_t nodeid)
{
	struct fuse_getattr_in in = { 0 };
	return req(FUSE_GETATTR, nodeid, &in, sizeof(in), NULL).error;
}

static int read_fh(uint64_t nodeid, uint64_t fh)
{
	struct fuse_read_in in = { .fh = fh, .size = 16 };
	return req(FUSE_READ, nodeid, &in, sizeof(in), NULL).error;
}

static void write_file(const char *dir, const char *name, size_t bytes)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	for (size_t i = 0; i < bytes; i++)
		fputc('a' + (int)(i % 26), f);
	fclose(f);
}

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void add(const char *name, const char *path)
{
	struct rv_err err;
	struct fs_export_cfg cfg = { .name = name, .path = path };
	cr_assert_eq(fs_server_add_export(srv, &cfg, &err), 0, "%s", err.msg);
}

static void remove_export(const char *name)
{
	struct rv_err err;
	cr_assert_eq(fs_server_remove_export(srv, name, &err), 0, "%s", err.msg);
}

static void setup(void)
{
	struct rv_err err;
	char p[160];

	snprintf(top, sizeof(top), "/tmp/runvm-fs-remove.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(pod_dir, sizeof(pod_dir), "%s/pod", top);
	snprintf(vol_dir, sizeof(vol_dir), "%s/vol", top);
	cr_assert_eq(mkdir(pod_dir, 0755), 0);
	cr_assert_eq(mkdir(vol_dir, 0755), 0);
	snprintf(p, sizeof(p), "%s/dir", pod_dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	write_file(pod_dir, "file", 100000);
	write_file(vol_dir, "file", 10);
	struct fs_options opt = { 0 };
	srv = fs_server_new(&opt, NULL, &err);
	cr_assert_not_null(srv, "%s", err.msg);
	add("rootfs", vol_dir);
	add("vol0", vol_dir);
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 1 << 20 };
	cr_assert_eq(req(FUSE_INIT, 0, &in, sizeof(in), NULL).error, 0);
}

static void teardown(void)
{
	char cmd[128];

	fs_server_free(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

/* The names READDIR of the synthetic root gives, joined by spaces. */
static void list_root(char *names, size_t size)
{
	uint64_t dh = must_open(FUSE_OPENDIR, FUSE_ROOT_ID);
	struct fuse_read_in in = { .fh = dh, .size = 4096 };
	struct reply r = req(FUSE_READDIR, FUSE_ROOT_ID, &in, sizeof(in), NULL);

	cr_assert_eq(r.error, 0);
	names[0] = 0;
	for (size_t at = 0; at < r.len;) {
		const struct fuse_dirent *d = (const void *)(r.body + at);
		snprintf(names + strlen(names), size - strlen(names), " %.*s", (int)d->namelen, d->name);
		at += FUSE_DIRENT_SIZE(d);
	}
	struct fuse_release_in rel = { .fh = dh };
	cr_assert_eq(req(FUSE_RELEASEDIR, FUSE_ROOT_ID, &rel, sizeof(rel), NULL).error, 0);
}

TestSuite(fs_remove, .init = setup, .fini = teardown);

Test(fs_remove, the_name_leaves_the_root_and_the_other_exports_stay)
{
	char names[256];

	add("pod", pod_dir);
	uint64_t vol = must_lookup(FUSE_ROOT_ID, "vol0");
	remove_export("rootfs");          /* slot 0: statfs of the root used it */
	remove_export("pod");
	cr_expect_eq(req(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "pod").error, ENOENT);
	cr_expect_eq(req(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "rootfs").error, ENOENT);
	list_root(names, sizeof(names));
	cr_expect_str_eq(names, " . .. vol0");
	cr_expect_eq(getattr(vol), 0);
	cr_expect_eq(must_lookup(FUSE_ROOT_ID, "vol0"), vol);
	uint64_t file = must_lookup(vol, "file");
	cr_expect_eq(read_fh(file, must_open(FUSE_OPEN, file)), 0);
	struct fuse_getattr_in gi = { 0 };
	struct reply r = req(FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), NULL);
	struct fuse_attr_out ao;
	cr_assert_eq(r.error, 0);
	memcpy(&ao, r.body, sizeof(ao));
	cr_expect_eq(ao.attr.nlink, 3, "the root counts the exports left");
	cr_expect_eq(req(FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, NULL).error, 0);
	/* The name is free again. */
	add("pod", pod_dir);
	list_root(names, sizeof(names));
	cr_expect_str_eq(names, " . .. pod vol0", "the new export took the first free slot");
}

Test(fs_remove, what_the_client_held_is_let_go_and_its_ids_refused)
{
	size_t i0, h0, i1, h1;
	int fds0 = fd_count();

	fs_server_counts(srv, &i0, &h0);
	add("pod", pod_dir);
	uint64_t root = must_lookup(FUSE_ROOT_ID, "pod");
	uint64_t dir = must_lookup(root, "dir");
	uint64_t file = must_lookup(root, "file");
	uint64_t fh = must_open(FUSE_OPEN, file);
	uint64_t dh = must_open(FUSE_OPENDIR, dir);
	/* A POSIX lock: its owner keeps a host fd of its own. */
	struct fuse_lk_in lk = { .owner = 0xA, .lk = { .start = 0, .end = 0, .type = F_WRLCK } };
	cr_assert_eq(req(FUSE_SETLK, file, &lk, sizeof(lk), NULL).error, 0);
	fs_server_counts(srv, &i1, &h1);
	cr_assert_eq(i1, i0 + 3);
	cr_assert_eq(h1, h0 + 2);

	remove_export("pod");
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0, "no inode of the export is left");
	cr_expect_eq(h1, h0, "no handle of the export is left");
	cr_expect_eq(fd_count(), fds0, "every host fd of it is closed");
	char p[160];
	snprintf(p, sizeof(p), "%s/file", pod_dir);
	int host = open(p, O_RDWR);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	cr_expect_eq(fcntl(host, F_OFD_SETLK, &fl), 0, "the guest's lock went with it");
	close(host);

	cr_expect_eq(getattr(root), ESTALE);
	cr_expect_eq(getattr(dir), ESTALE);
	cr_expect_eq(getattr(file), ESTALE);
	cr_expect_eq(req(FUSE_LOOKUP, root, NULL, 0, "file").error, ESTALE);
	struct fuse_open_in oi = { .flags = O_RDONLY };
	cr_expect_eq(req(FUSE_OPEN, file, &oi, sizeof(oi), NULL).error, ESTALE);
	cr_expect_eq(req(FUSE_SETLK, file, &lk, sizeof(lk), NULL).error, ESTALE);
	cr_expect_eq(read_fh(file, fh), EBADF);
	struct fuse_read_in ri = { .fh = dh, .size = 4096 };
	cr_expect_eq(req(FUSE_READDIR, dir, &ri, sizeof(ri), NULL).error, EBADF);
	struct fuse_getattr_in gi = { 0 };
	cr_expect_eq(req(FUSE_GETATTR, 0x123456, &gi, sizeof(gi), NULL).error, EBADF,
		     "a node id never handed out is no stale one");

	/* FORGET and RELEASE of them change nothing. */
	struct fuse_forget_in f = { .nlookup = 1 };
	cr_expect(req(FUSE_FORGET, file, &f, sizeof(f), NULL).none);
	struct { struct fuse_batch_forget_in b; struct fuse_forget_one one[2]; } bf = {
		.b = { .count = 2 }, .one = { { .nodeid = root, .nlookup = 5 }, { .nodeid = dir, .nlookup = 1 } } };
	cr_expect(req(FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL).none);
	struct fuse_release_in rel = { .fh = fh };
	cr_expect_eq(req(FUSE_RELEASE, file, &rel, sizeof(rel), NULL).error, EBADF);
	rel.fh = dh;
	cr_expect_eq(req(FUSE_RELEASEDIR, dir, &rel, sizeof(rel), NULL).error, EBADF);
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0);
	cr_expect_eq(h1, h0);
	cr_expect_eq(fd_count(), fds0);
}

Test(fs_remove, slots_are_reused_and_old_ids_never_reach_the_new_export)
{
	struct rv_err err;
	uint64_t first_root = 0, first_file = 0, first_fh = 0, prev_file = 0, prev_fh = 0;
	size_t i0, h0, i1, h1;
	int fds0 = fd_count();

	fs_server_counts(srv, &i0, &h0);
	for (unsigned round = 0; round < 3 * FS_MAX_EXPORTS; round++) {
		char name[16];
		snprintf(name, sizeof(name), "c%u", round % 5);
		struct fs_export_cfg cfg = { .name = name, .path = pod_dir };
		cr_assert_eq(fs_server_add_export(srv, &cfg, &err), 0, "round %u: %s", round, err.msg);
		uint64_t root = must_lookup(FUSE_ROOT_ID, name);
		uint64_t file = must_lookup(root, "file");
		uint64_t fh = must_open(FUSE_OPEN, file);
		if (round == 0) {
			first_root = root;
			first_file = file;
			first_fh = fh;
		} else {
			cr_assert_neq(file, prev_file);
			cr_assert_eq(getattr(prev_file), ESTALE, "round %u", round);
			cr_assert_eq(read_fh(prev_file, prev_fh), EBADF, "round %u", round);
			cr_assert_eq(getattr(first_root), ESTALE);
			cr_assert_eq(getattr(first_file), ESTALE);
			cr_assert_eq(read_fh(first_file, first_fh), EBADF);
		}
		cr_assert_eq(read_fh(file, fh), 0);
		remove_export(name);
		prev_file = file;
		prev_fh = fh;
	}
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0);
	cr_expect_eq(h1, h0);
	cr_expect_eq(fd_count(), fds0);

	/* Exports in use still count: 2 here, 62 more fill the table. */
	for (unsigned k = 0; k < FS_MAX_EXPORTS - 2; k++) {
		char name[16];
		snprintf(name, sizeof(name), "x%u", k);
		add(name, pod_dir);
	}
	struct fs_export_cfg one_more = { .name = "y", .path = pod_dir };
	cr_expect_eq(fs_server_add_export(srv, &one_more, &err), -1);
	cr_expect_eq(err.code, ENOSPC, "%s", err.msg);
}

/* READ by reference (fusedev's splice) holds its handle past the request's
 * reply: the transport still reads the fd after the removal. */
Test(fs_remove, a_handle_in_use_stays_open_and_keeps_the_slot_until_done)
{
	struct rv_err err;
	size_t i0, h0, i1, h1;
	int fds0 = fd_count();

	fs_server_counts(srv, &i0, &h0);
	add("pod", pod_dir);
	uint64_t file = must_lookup(must_lookup(FUSE_ROOT_ID, "pod"), "file");
	uint64_t fh = must_open(FUSE_OPEN, file);
	struct fuse_read_in rd = { .fh = fh, .offset = 26, .size = 80000 };
	uint8_t buf[sizeof(struct fuse_in_header) + sizeof(rd)];
	struct fuse_in_header h = { .len = sizeof(buf), .opcode = FUSE_READ, .unique = 7, .nodeid = file };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rd, sizeof(rd));
	static uint8_t big_out[256 * 1024];
	struct iovec in_iov = { buf, sizeof(buf) }, out_iov = { big_out, sizeof(big_out) };
	struct fs_read_ref ref;
	fs_server_handle_ref(srv, (struct fs_iov){ &in_iov, 1, sizeof(buf) },
			     (struct fs_iov){ &out_iov, 1, sizeof(big_out) }, &ref);
	cr_assert_geq(ref.fd, 0);

	remove_export("pod");
	char c;
	cr_expect_eq(pread(ref.fd, &c, 1, (off_t)ref.offset), 1, "the transport's fd is still open");
	cr_expect_eq(c, 'a');
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0, "the inodes went at once");
	cr_expect_eq(h1, h0 + 1, "the handle waits for its reference");
	cr_expect_eq(read_fh(file, fh), EBADF);
	struct fuse_release_in rel = { .fh = fh };
	cr_expect_eq(req(FUSE_RELEASE, file, &rel, sizeof(rel), NULL).error, EBADF);

	/* Its slot stays taken: 2 live, 1 draining, 61 more fill the table. */
	for (unsigned k = 0; k < FS_MAX_EXPORTS - 3; k++) {
		char name[16];
		snprintf(name, sizeof(name), "x%u", k);
		add(name, vol_dir);
	}
	struct fs_export_cfg again = { .name = "pod", .path = pod_dir };
	cr_expect_eq(fs_server_add_export(srv, &again, &err), -1);
	cr_expect_eq(err.code, ENOSPC, "%s", err.msg);

	fs_read_ref_done(srv, &ref);
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(h1, h0);
	cr_expect_eq(fs_server_add_export(srv, &again, &err), 0, "the slot is free now: %s", err.msg);
	remove_export("pod");
	for (unsigned k = 0; k < FS_MAX_EXPORTS - 3; k++) {
		char name[16];
		snprintf(name, sizeof(name), "x%u", k);
		remove_export(name);
	}
	cr_expect_eq(fd_count(), fds0);
}

struct lk_call {
	uint64_t nodeid, unique;
	struct fuse_lk_in in;
	int error;
	uint8_t out[OUT_BYTES];
};

static void *setlkw_thread(void *arg)
{
	struct lk_call *c = arg;
	c->error = send_req(c->out, FUSE_SETLKW, c->nodeid, &c->in, sizeof(c->in), NULL).error;
	return NULL;
}

/* A SETLKW waiting on a file of the export holds its inode: the removal
 * ends the wait, and then the inode and its lock owner's fd go. */
Test(fs_remove, a_lock_wait_on_a_removed_export_ends_and_lets_go)
{
	size_t i0, h0, i1, h1;
	char p[160];
	int fds0 = fd_count();

	fs_server_counts(srv, &i0, &h0);
	add("pod", pod_dir);
	uint64_t file = must_lookup(must_lookup(FUSE_ROOT_ID, "pod"), "file");
	snprintf(p, sizeof(p), "%s/file", pod_dir);
	int host = open(p, O_RDWR | O_CLOEXEC);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	cr_assert_eq(fcntl(host, F_OFD_SETLK, &fl), 0);

	fs_server_set_workers(srv, 3);
	static struct lk_call w;
	w = (struct lk_call){ .nodeid = file,
			      .in = { .owner = 0xA, .lk = { .start = 0, .end = 0, .type = F_RDLCK } } };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, setlkw_thread, &w), 0);
	usleep(100 * 1000);             /* it is waiting now */
	remove_export("pod");
	pthread_join(t, NULL);
	cr_expect_eq(w.error, ESTALE);
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0);
	cr_expect_eq(h1, h0);
	close(host);
	cr_expect_eq(fd_count(), fds0, "the waiter's inode and lock owner fds are closed");
}

/* --- removal while other threads serve requests ------------------------------ */

static uint64_t shared_root, shared_file, shared_fh;
static bool stop;

static void *hammer(void *arg)
{
	static __thread uint8_t mine[OUT_BYTES];
	unsigned *bad = arg;

	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint64_t root = __atomic_load_n(&shared_root, __ATOMIC_RELAXED);
		uint64_t file = __atomic_load_n(&shared_file, __ATOMIC_RELAXED);
		uint64_t fh = __atomic_load_n(&shared_fh, __ATOMIC_RELAXED);
		struct fuse_getattr_in gi = { 0 };
		struct fuse_read_in ri = { .fh = fh, .size = 4096 };
		struct fuse_open_in oi = { .flags = O_RDONLY };
		struct fuse_forget_in fi = { .nlookup = 1 };
		struct fuse_release_in rel = { .fh = fh };
		struct reply opened = send_req(mine, FUSE_OPEN, file, &oi, sizeof(oi), NULL);
		if (opened.error == 0) {
			/* Its own handles go back at once: the table never fills. */
			struct fuse_open_out oo;
			memcpy(&oo, opened.body, sizeof(oo));
			struct fuse_release_in own = { .fh = oo.fh };
			send_req(mine, FUSE_RELEASE, file, &own, sizeof(own), NULL);
		}
		int e[] = {
			send_req(mine, FUSE_GETATTR, file, &gi, sizeof(gi), NULL).error,
			send_req(mine, FUSE_LOOKUP, root, NULL, 0, "dir").error,
			send_req(mine, FUSE_READ, file, &ri, sizeof(ri), NULL).error,
			opened.error,
			send_req(mine, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "pod").error,
		};
		send_req(mine, FUSE_FORGET, file, &fi, sizeof(fi), NULL);
		if (fh % 7 == 0)
			send_req(mine, FUSE_RELEASE, file, &rel, sizeof(rel), NULL);
		for (size_t k = 0; k < sizeof(e) / sizeof(e[0]); k++)
			if (e[k] != 0 && e[k] != ESTALE && e[k] != EBADF && e[k] != ENOENT)
				__atomic_add_fetch(bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(fs_remove, removals_race_requests_on_other_threads_safely)
{
	size_t i0, h0, i1, h1;
	int fds0 = fd_count();
	unsigned bad = 0;
	pthread_t t[3];

	fs_server_counts(srv, &i0, &h0);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(pthread_create(&t[k], NULL, hammer, &bad), 0);
	for (unsigned round = 0; round < 300; round++) {
		add("pod", pod_dir);
		uint64_t root = must_lookup(FUSE_ROOT_ID, "pod");
		uint64_t file = must_lookup(root, "file");
		uint64_t fh = must_open(FUSE_OPEN, file);
		__atomic_store_n(&shared_root, root, __ATOMIC_RELAXED);
		__atomic_store_n(&shared_file, file, __ATOMIC_RELAXED);
		__atomic_store_n(&shared_fh, fh, __ATOMIC_RELAXED);
		usleep(200);
		remove_export("pod");
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	for (int k = 0; k < 3; k++)
		pthread_join(t[k], NULL);
	cr_expect_eq(bad, 0, "only ESTALE, EBADF or ENOENT for what was removed");
	fs_server_counts(srv, &i1, &h1);
	cr_expect_eq(i1, i0);
	cr_expect_eq(h1, h0);
	cr_expect_eq(fd_count(), fds0);
}

Test(fs_remove, an_unknown_name_is_enoent)
{
	struct rv_err err;

	cr_expect_eq(fs_server_remove_export(srv, "nope", &err), -1);
	cr_expect_eq(err.code, ENOENT, "%s", err.msg);
	remove_export("vol0");
	cr_expect_eq(fs_server_remove_export(srv, "vol0", &err), -1, "removed once");
	cr_expect_eq(err.code, ENOENT, "%s", err.msg);
	cr_expect_eq(fs_server_remove_export(srv, "", &err), -1);
	cr_expect_eq(err.code, ENOENT, "%s", err.msg);
	cr_expect_eq(must_lookup(FUSE_ROOT_ID, "rootfs") > 0, 1, "the other export is untouched");
}
