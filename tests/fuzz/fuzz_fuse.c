/* libFuzzer target for the FUSE request server (devices/fs/server.c): the
 * input is a sequence of requests, each a fuse_in_header whose len says how
 * much of the input it takes (clamped to what is left), served one by one
 * after a real INIT, as a hostile guest would send them. Requests and replies
 * sit in their own heap buffers so ASan sees any byte read or written beyond
 * them. Checks: a reply is never longer than its buffer and carries the
 * request's unique id.
 *
 * Exports: "ro" (read-only, a few files, a symlink out of the export and a
 * FIFO), "rw" (emptied every 512 inputs) and "x" (rw's directory again),
 * which a request with the harness's own opcode FUZZ_OP_TOGGLE removes, or
 * adds back when removed: the guest keeps naming what it held of it, as a
 * pod's guest does after a container ends. The fuzzer runs in its own mount
 * namespace with the whole tree on a 64 MiB tmpfs, so a FALLOCATE of a
 * terabyte cannot fill the host's disk and nothing is left mounted after. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/fs/server.h"

#define OUT_BYTES (128u * 1024)
#define FUZZ_OP_TOGGLE 0xffffu          /* no FUSE opcode: removes or adds "x" */

struct fuzz_state {
	struct fs_server *srv;
	char dir[64];
	unsigned runs;
	bool x_live;
};

static void make_tree(const char *top)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/ro", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/ro/file", top);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs("runvm fuzz file\n", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/ro/dir", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/ro/escape", top);
	symlink("/etc/passwd", p);
	snprintf(p, sizeof(p), "%s/ro/fifo", top);
	mkfifo(p, 0644);
	snprintf(p, sizeof(p), "%s/rw", top);
	mkdir(p, 0755);
}

static void empty_dir(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub >= 0)
				empty_dir(sub);
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
}

static size_t serve(struct fs_server *s, const void *req, size_t len, uint8_t *out, size_t out_len)
{
	struct iovec in_iov = { (void *)req, len }, out_iov = { out, out_len };

	return fs_server_handle(s, (struct fs_iov){ &in_iov, 1, len }, (struct fs_iov){ &out_iov, 1, out_len });
}

static void init_server(struct fs_server *s)
{
	struct { struct fuse_in_header h; struct fuse_init_in i; } req = {
		.h = { .len = sizeof(req), .opcode = FUSE_INIT, .unique = 1 },
		.i = { .major = 7, .minor = 38, .max_readahead = 65536, .flags = 0xffffffffu },
	};
	uint8_t out[256];

	serve(s, &req, sizeof(req), out, sizeof(out));
}

static struct fuzz_state st;      /* libFuzzer's process-wide fixture */

static void toggle_x(struct fuzz_state *s)
{
	struct rv_err err;
	char p[128];

	if (s->x_live) {
		if (fs_server_remove_export(s->srv, "x", &err) < 0)
			abort();
	} else {
		snprintf(p, sizeof(p), "%s/rw", s->dir);
		struct fs_export_cfg x = { .name = "x", .path = p };
		/* Only a slot still draining could refuse it, and one thread
		 * leaves nothing in flight between requests. */
		if (fs_server_add_export(s->srv, &x, &err) < 0)
			abort();
	}
	s->x_live = !s->x_live;
}

/* The mount point was made in the host's /tmp before the private namespace
 * existed; on a normal exit (libFuzzer's -runs, -max_total_time) it goes. */
static void remove_fixture_dir(void)
{
	umount2(st.dir, MNT_DETACH);
	rmdir(st.dir);
}

static struct fuzz_state *state(void)
{
	struct rv_err err;
	char p[128];

	if (st.srv)
		return &st;
	snprintf(st.dir, sizeof(st.dir), "/tmp/runvm-fuzz-fuse.%d", (int)getpid());
	mkdir(st.dir, 0755);
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		mount("runvm-fuzz", st.dir, "tmpfs", 0, "size=64m");
	atexit(remove_fixture_dir);
	make_tree(st.dir);
	struct fs_options opt = { .writeback = true };
	st.srv = fs_server_new(&opt, NULL, &err);
	if (!st.srv)
		abort();
	snprintf(p, sizeof(p), "%s/ro", st.dir);
	struct fs_export_cfg ro = { .name = "ro", .path = p, .readonly = true };
	if (fs_server_add_export(st.srv, &ro, &err) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/rw", st.dir);
	struct fs_export_cfg rw = { .name = "rw", .path = p, .cache = FS_CACHE_NONE };
	if (fs_server_add_export(st.srv, &rw, &err) < 0)
		abort();
	toggle_x(&st);
	init_server(st.srv);
	return &st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state *st = state();
	uint8_t *out = malloc(OUT_BYTES);

	if (++st->runs % 512 == 0) {
		char p[128];
		snprintf(p, sizeof(p), "%s/rw", st->dir);
		int fd = open(p, O_RDONLY | O_DIRECTORY);
		if (fd >= 0)
			empty_dir(fd);
	}
	while (size >= sizeof(struct fuse_in_header)) {
		struct fuse_in_header h;
		memcpy(&h, data, sizeof(h));
		size_t len = h.len >= sizeof(h) && h.len <= size ? h.len : size;
		if (h.opcode == FUZZ_OP_TOGGLE) {
			toggle_x(st);
			data += len;
			size -= len;
			continue;
		}
		/* The length in the header is the fuzzer's to get wrong: a copy
		 * keeps the request in a buffer of exactly its size. */
		uint8_t *req = malloc(len);
		memcpy(req, data, len);
		size_t out_len = OUT_BYTES - (h.unique % 4096);
		size_t n = serve(st->srv, req, len, out, out_len);
		if (n > out_len)
			abort();
		if (n) {
			struct fuse_out_header oh;
			memcpy(&oh, out, sizeof(oh));
			if (oh.unique != h.unique || oh.len != n)
				abort();
		}
		free(req);
		data += len;
		size -= len;
	}
	free(out);
	return 0;
}
