/* The virtio-fs device and its workers, driven through the MMIO registers by
 * the test driver as a guest's virtio_fs would, with the real request server
 * behind it serving a temporary directory as export "rootfs". */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/fs/virtio_fs.h"
#include "devices/virtio/mmio.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (32ull << 20)
#define HIPRIO 0u
#define REQQ 1u
#define QSIZE 256u
#define REPLY_BYTES 4096u
#define WORKERS 4u
#define IN_FLIGHT 64u
#define WAIT_MS 10000
#define FEATURES (VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC)

static struct guest_mem mem;
static struct virtio_fs vfs;
static struct virtio_mmio mmio;
static struct vdriver drv;
static struct fs_server *srv;
static char dir[64];
static uint64_t next_unique = 1;

/* Threads in this process: workers are the only ones the tests start. */
static unsigned thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	unsigned n = 0;

	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void start_device(const struct virtio_fs_config *cfg)
{
	struct rv_err err;

	cr_assert_eq(virtio_fs_init(&vfs, cfg, srv, &mem, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(virtio_fs_start(&vfs, &err), 0, "%s", err.msg);
	cr_assert_eq(virtio_mmio_init(&mmio, &vfs.dev, 0xd0000000ull, 7, -1, NULL, &err), 0, "%s", err.msg);
	vdriver_init(&drv, &mem, &mmio);
}

static void setup(void)
{
	struct rv_err err;
	struct fs_options opt = { 0 };

	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	snprintf(dir, sizeof(dir), "/tmp/runvm-vfs-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_file("hello", "hello");
	srv = fs_server_new(&opt, NULL, &err);
	cr_assert_not_null(srv, "%s", err.msg);
	struct fs_export_cfg exp = { .name = "rootfs", .path = dir, .cache = FS_CACHE_AUTO };
	cr_assert_eq(fs_server_add_export(srv, &exp, &err), 0, "%s", err.msg);
	next_unique = 1;
}

/* Tests that started a device (mmio.dev set) get it stopped here; destroying
 * it twice is fine. Workers go first: they raise the transport's interrupt. */
static void teardown(void)
{
	char path[128];

	virtio_fs_destroy(&vfs);
	virtio_mmio_destroy(&mmio);
	memset(&mmio, 0, sizeof(mmio));
	fs_server_free(srv);
	snprintf(path, sizeof(path), "%s/hello", dir);
	unlink(path);
	rmdir(dir);
	guest_mem_destroy(&mem);
}

TestSuite(virtio_fs, .init = setup, .fini = teardown, .timeout = 60);

/* --- the guest's side ------------------------------------------------------ */

struct req {
	uint64_t in_gpa, out_gpa;
	uint64_t unique;
	int head;
};

/* Builds fuse_in_header + arg (+ name) in fresh guest memory. */
static uint64_t build_in(uint32_t opcode, uint64_t nodeid, const void *arg, uint32_t arg_len,
			 const char *name, uint64_t unique, uint32_t *len)
{
	uint32_t name_len = name ? (uint32_t)strlen(name) + 1 : 0;
	uint32_t total = (uint32_t)sizeof(struct fuse_in_header) + arg_len + name_len;
	uint64_t gpa = vdriver_alloc(&drv, total, 8);
	cr_assert_neq(gpa, 0, "guest memory exhausted");
	uint8_t *p = vdriver_host(&drv, gpa, total);
	struct fuse_in_header h = { .len = total, .opcode = opcode, .unique = unique, .nodeid = nodeid,
				    .uid = getuid(), .gid = getgid(), .pid = 1 };
	memcpy(p, &h, sizeof(h));
	if (arg_len)
		memcpy(p + sizeof(h), arg, arg_len);
	if (name)
		memcpy(p + sizeof(h) + arg_len, name, name_len);
	*len = total;
	return gpa;
}

/* Queues one request as [request][reply] (reply_bytes 0: no writable part),
 * without kicking. */
static struct req add_req(unsigned qi, uint32_t opcode, uint64_t nodeid, const void *arg,
			  uint32_t arg_len, const char *name, uint32_t reply_bytes, bool indirect)
{
	struct req r = { .unique = next_unique++ };
	uint32_t in_len;

	r.in_gpa = build_in(opcode, nodeid, arg, arg_len, name, r.unique, &in_len);
	struct vdriver_buf b[2] = { { r.in_gpa, in_len, false } };
	if (reply_bytes) {
		r.out_gpa = vdriver_alloc(&drv, reply_bytes, 8);
		cr_assert_neq(r.out_gpa, 0, "guest memory exhausted");
		b[1] = (struct vdriver_buf){ r.out_gpa, reply_bytes, true };
	}
	r.head = vdriver_add(&drv, qi, b, reply_bytes ? 2 : 1, indirect);
	cr_assert_geq(r.head, 0, "queue %u full", qi);
	return r;
}

/* Polls the used ring: the workers answer on their own threads. */
static void wait_used(unsigned qi, uint16_t *head, uint32_t *len)
{
	struct timespec nap = { 0, 1000000 };

	for (int ms = 0; ms < WAIT_MS; ms++) {
		int rc = vdriver_get_used(&drv, qi, head, len);
		cr_assert_geq(rc, 0, "the device named a descriptor it was never given");
		if (rc == 1)
			return;
		nanosleep(&nap, NULL);
	}
	cr_assert_fail("no used buffer on queue %u after %d ms", qi, WAIT_MS);
}

static const struct fuse_out_header *reply_of(const struct req *r)
{
	return vdriver_host(&drv, r->out_gpa, REPLY_BYTES);
}

/* One request on the request queue, kicked and answered. */
static const struct fuse_out_header *call(uint32_t opcode, uint64_t nodeid, const void *arg,
					  uint32_t arg_len, const char *name)
{
	struct req r = add_req(REQQ, opcode, nodeid, arg, arg_len, name, REPLY_BYTES, false);
	uint16_t head;
	uint32_t len;

	vdriver_kick(&drv, REQQ);
	wait_used(REQQ, &head, &len);
	cr_assert_eq(head, r.head);
	const struct fuse_out_header *o = reply_of(&r);
	cr_assert_eq(o->unique, r.unique);
	cr_assert_eq(len, o->len, "used length %u, reply says %u", len, o->len);
	return o;
}

static const struct fuse_init_out *fuse_init(void)
{
	struct fuse_init_in in = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
				   .max_readahead = 128 * 1024 };
	const struct fuse_out_header *o = call(FUSE_INIT, 0, &in, sizeof(in), NULL);
	cr_assert_eq(o->error, 0, "INIT failed: %d", o->error);
	return (const struct fuse_init_out *)(o + 1);
}

static void start(void)
{
	struct virtio_fs_config cfg = { .tag = "myfs", .workers = WORKERS };

	start_device(&cfg);
	cr_assert_eq(vdriver_start(&drv, FEATURES, 2, QSIZE), 0);
}

static uint64_t lookup(uint64_t parent, const char *name, struct fuse_attr *attr)
{
	const struct fuse_out_header *o = call(FUSE_LOOKUP, parent, NULL, 0, name);
	cr_assert_eq(o->error, 0, "LOOKUP %s: %d", name, o->error);
	const struct fuse_entry_out *e = (const struct fuse_entry_out *)(o + 1);
	*attr = e->attr;
	return e->nodeid;
}

static uint32_t config32(uint32_t off)
{
	return vdriver_read32(&drv, VD_CONFIG + off);
}

/* --- identity and configuration -------------------------------------------- */

Test(virtio_fs, identifies_as_fs_with_tag_and_one_request_queue)
{
	char tag[VIRTIO_FS_TAG_BYTES];

	start();
	cr_assert_eq(vdriver_read32(&drv, VD_DEVICE_ID), VIRTIO_ID_FS);
	for (uint32_t off = 0; off < VIRTIO_FS_TAG_BYTES; off += 4) {
		uint32_t v = config32(off);
		memcpy(tag + off, &v, 4);
	}
	cr_assert_arr_eq(tag, "myfs\0\0\0\0", 8);
	for (unsigned i = 4; i < VIRTIO_FS_TAG_BYTES; i++)
		cr_assert_eq(tag[i], 0, "tag byte %u is not NUL padding", i);
	cr_assert_eq(config32(VIRTIO_FS_TAG_BYTES), 1, "num_request_queues");
	cr_assert_eq(config32(VIRTIO_FS_TAG_BYTES + 4), 0, "nothing after the config");
	for (unsigned q = 0; q < 3; q++) {
		vdriver_write32(&drv, VD_QUEUE_SEL, q);
		cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_NUM_MAX), q < 2 ? QSIZE : 0, "queue %u", q);
	}
}

Test(virtio_fs, default_tag_is_runvm_and_default_workers_two)
{
	unsigned before = thread_count();
	char tag[VIRTIO_FS_TAG_BYTES + 4];

	start_device(NULL);
	cr_assert_eq(thread_count(), before + VIRTIO_FS_DEFAULT_WORKERS);
	for (uint32_t off = 0; off < sizeof(tag); off += 4) {
		uint32_t v = config32(off);
		memcpy(tag + off, &v, 4);
	}
	cr_assert_str_eq(tag, "runvm");
}

Test(virtio_fs, a_36_byte_tag_fills_the_field_without_nul)
{
	const char *tag36 = "abcdefghijklmnopqrstuvwxyz0123456789";
	struct virtio_fs_config cfg = { .tag = tag36, .workers = 1 };
	char tag[VIRTIO_FS_TAG_BYTES];

	start_device(&cfg);
	for (uint32_t off = 0; off < VIRTIO_FS_TAG_BYTES; off += 4) {
		uint32_t v = config32(off);
		memcpy(tag + off, &v, 4);
	}
	cr_assert_arr_eq(tag, tag36, VIRTIO_FS_TAG_BYTES);
}

Test(virtio_fs, rejects_bad_tag_and_worker_count)
{
	struct rv_err err;
	unsigned before = thread_count();
	const struct virtio_fs_config bad[] = {
		{ .tag = "" },
		{ .tag = "abcdefghijklmnopqrstuvwxyz0123456789X" },     /* 37 bytes */
		{ .workers = VIRTIO_FS_MAX_WORKERS + 1 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(virtio_fs_init(&vfs, &bad[i], srv, &mem, NULL, &err), -1, "config %zu", i);
		cr_assert_eq(err.code, EINVAL, "config %zu", i);
		virtio_fs_destroy(&vfs);        /* nothing to do: must not crash */
	}
	cr_assert_eq(thread_count(), before);
}

/* --- requests ---------------------------------------------------------------- */

Test(virtio_fs, init_round_trip_on_the_request_queue)
{
	start();
	vdriver_irqs(&drv);
	const struct fuse_init_out *out = fuse_init();
	cr_assert_eq(out->major, 7);
	cr_assert_geq(out->minor, 31);
	cr_assert_gt(out->max_write, 0);
	cr_assert_gt(vdriver_irqs(&drv), 0, "no interrupt for the reply");
}

Test(virtio_fs, lookup_finds_the_export_and_a_file_in_it)
{
	struct fuse_attr a;

	start();
	fuse_init();
	uint64_t root = lookup(FUSE_ROOT_ID, "rootfs", &a);
	cr_assert_neq(root, 0);
	cr_assert(S_ISDIR(a.mode), "rootfs mode 0%o", a.mode);
	uint64_t hello = lookup(root, "hello", &a);
	cr_assert_neq(hello, 0);
	cr_assert(S_ISREG(a.mode));
	cr_assert_eq(a.size, 5);
	const struct fuse_out_header *o = call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "nope");
	cr_assert_eq(o->error, -ENOENT);
}

Test(virtio_fs, works_with_one_worker)
{
	struct virtio_fs_config cfg = { .workers = 1 };
	struct fuse_attr a;

	start_device(&cfg);
	cr_assert_eq(vdriver_start(&drv, FEATURES, 2, QSIZE), 0);
	fuse_init();
	cr_assert_neq(lookup(FUSE_ROOT_ID, "rootfs", &a), 0);
}

Test(virtio_fs, chain_without_reply_space_comes_back_empty)
{
	struct fuse_init_in in = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION };
	uint16_t head;
	uint32_t len;

	start();
	struct req r = add_req(REQQ, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, false);
	vdriver_kick(&drv, REQQ);
	wait_used(REQQ, &head, &len);
	cr_assert_eq(head, r.head);
	cr_assert_eq(len, 0);
	cr_assert_eq(fuse_init()->major, 7, "the device stopped serving");
}

Test(virtio_fs, malformed_chain_comes_back_empty_and_serving_goes_on)
{
	struct fuse_init_in in = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION };
	uint32_t in_len, len;
	uint16_t head;

	start();
	/* Writable before readable: not a chain a driver may build (§2.7.4.2). */
	uint64_t in_gpa = build_in(FUSE_INIT, 0, &in, sizeof(in), NULL, 99, &in_len);
	uint64_t out_gpa = vdriver_alloc(&drv, REPLY_BYTES, 8);
	struct vdriver_buf b[] = { { out_gpa, REPLY_BYTES, true }, { in_gpa, in_len, false } };
	int h = vdriver_add(&drv, REQQ, b, 2, false);
	vdriver_kick(&drv, REQQ);
	wait_used(REQQ, &head, &len);
	cr_assert_eq(head, h);
	cr_assert_eq(len, 0);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0);
	cr_assert_eq(fuse_init()->major, 7);
}

Test(virtio_fs, forget_on_hiprio_completes_without_a_reply)
{
	struct fuse_attr a;
	uint16_t head;
	uint32_t len;

	size_t before, after, handles;

	write_file("forgotten", "x");
	start();
	fuse_init();
	uint64_t root = lookup(FUSE_ROOT_ID, "rootfs", &a);
	uint64_t file = lookup(root, "forgotten", &a);
	fs_server_counts(srv, &before, &handles);
	/* Linux puts a FORGET on hiprio with no reply space at all: it must
	 * still be carried out (the host inode and its fd go). */
	struct fuse_forget_in fin = { .nlookup = 1 };
	struct req r = add_req(HIPRIO, FUSE_FORGET, file, &fin, sizeof(fin), NULL, 0, false);
	vdriver_kick(&drv, HIPRIO);
	wait_used(HIPRIO, &head, &len);
	cr_assert_eq(head, r.head);
	cr_assert_eq(len, 0);
	fs_server_counts(srv, &after, &handles);
	cr_expect_eq(after, before - 1, "the forgotten inode is dropped (%zu, then %zu)", before, after);
	cr_assert_neq(lookup(FUSE_ROOT_ID, "rootfs", &a), 0);
}

/* Many GETATTRs at once, half of them indirect: each is answered once, with
 * its own unique id, whichever worker took it. */
Test(virtio_fs, many_requests_in_flight_all_complete)
{
	struct req reqs[IN_FLIGHT];
	bool seen[IN_FLIGHT] = { false };
	struct fuse_getattr_in gin = { 0 };

	start();
	fuse_init();
	for (unsigned i = 0; i < IN_FLIGHT; i++)
		reqs[i] = add_req(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gin, sizeof(gin), NULL, REPLY_BYTES,
				  i % 2);
	vdriver_kick(&drv, REQQ);
	for (unsigned n = 0; n < IN_FLIGHT; n++) {
		uint16_t head;
		uint32_t len;
		wait_used(REQQ, &head, &len);
		unsigned i = 0;
		while (i < IN_FLIGHT && reqs[i].head != head)
			i++;
		cr_assert_lt(i, IN_FLIGHT, "used head %u was not in flight", head);
		cr_assert_not(seen[i], "request %u answered twice", i);
		seen[i] = true;
		const struct fuse_out_header *o = reply_of(&reqs[i]);
		cr_assert_eq(o->unique, reqs[i].unique);
		cr_assert_eq(o->error, 0);
		cr_assert_eq(len, sizeof(*o) + sizeof(struct fuse_attr_out));
		const struct fuse_attr_out *ao = (const struct fuse_attr_out *)(o + 1);
		cr_assert(S_ISDIR(ao->attr.mode));
	}
}

/* --- reset and teardown ------------------------------------------------------ */

Test(virtio_fs, reset_with_requests_queued_then_serves_again)
{
	struct fuse_getattr_in gin = { 0 };

	start();
	fuse_init();
	for (unsigned i = 0; i < IN_FLIGHT; i++)
		add_req(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gin, sizeof(gin), NULL, REPLY_BYTES, false);
	vdriver_kick(&drv, REQQ);
	uint16_t old_used = vdriver_used_idx(&drv, REQQ);
	vdriver_reset(&drv);
	/* Once the reset returned, nothing more lands in the old rings. */
	uint16_t at_reset = vdriver_used_idx(&drv, REQQ);
	cr_assert_leq((uint16_t)(at_reset - old_used), IN_FLIGHT);
	struct timespec nap = { 0, 50 * 1000000 };
	nanosleep(&nap, NULL);
	cr_assert_eq(vdriver_used_idx(&drv, REQQ), at_reset, "a reply was pushed after the reset");

	/* A fresh driver: new rings, and only its own replies come back. */
	cr_assert_eq(vdriver_start(&drv, FEATURES, 2, QSIZE), 0);
	cr_assert_eq(fuse_init()->major, 7);
	struct fuse_attr a;
	cr_assert_neq(lookup(FUSE_ROOT_ID, "rootfs", &a), 0);
}

Test(virtio_fs, destroy_joins_the_workers_with_requests_in_flight)
{
	struct fuse_getattr_in gin = { 0 };
	unsigned before = thread_count();

	start();
	cr_assert_eq(thread_count(), before + WORKERS);
	fuse_init();
	for (unsigned i = 0; i < IN_FLIGHT; i++)
		add_req(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gin, sizeof(gin), NULL, REPLY_BYTES, false);
	vdriver_kick(&drv, REQQ);
	virtio_fs_destroy(&vfs);
	cr_assert_eq(thread_count(), before, "workers left running");
	cr_assert_null(vfs.workers);
}
