/* Directories: open, READDIR and READDIRPLUS (entries with their lookups in
 * one round trip), release. Directory offsets are the host's own cookies, so
 * each READDIR seeks to where the client says and nothing is remembered
 * between calls. */
#include "devices/fs/fs_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GETDENTS_BYTES (32u * 1024)
#define MAX_DIR_REPLY_BYTES (1024u * 1024)

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

void fs_op_opendir(struct fs_req *r)
{
	const struct fuse_open_in *in = fs_arg(r, sizeof(*in));
	struct fuse_open_out out = { 0 };
	if (!in)
		return;
	struct fs_inode *i = fs_inode_get(r->s, r->h.nodeid);
	if (!i) {
		fs_reply_err(r, fs_inode_gone(r->s, r->h.nodeid));
		return;
	}
	bool synthetic = i->nodeid == FS_ROOT_ID;
	int rc = i->type == S_IFDIR ? 0 : -ENOTDIR, fd = -1;
	if (rc == 0 && !synthetic && (fd = fs_reopen(r->s, i, O_RDONLY | O_DIRECTORY)) < 0)
		rc = -errno;
	if (rc == 0 && (rc = fs_handle_new(r->s, fd, true, synthetic, i->export, &out.fh)) < 0 && fd >= 0)
		close(fd);
	if (rc < 0) {
		fs_reply_err(r, -rc);
	} else {
		if (!synthetic && r->s->exports[i->export].cache == FS_CACHE_ALWAYS)
			out.open_flags = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
		fs_reply(r, &out, sizeof(out));
	}
	fs_inode_put(r->s, i);
}

void fs_op_releasedir(struct fs_req *r)
{
	const struct fuse_release_in *in = fs_arg(r, sizeof(*in));

	if (!in)
		return;
	int rc = fs_handle_release(r->s, in->fh, true);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, NULL, 0);
}

/* Where a reply's entries accumulate before going to the client. */
struct dir_buf {
	uint8_t *p;
	size_t len, cap;
	bool plus;
	struct fs_server *s;
	struct fs_inode *dir;
};

/* Adds one entry; false when it does not fit (the client asks again from off). */
static bool add_entry(struct dir_buf *b, const char *name, uint64_t ino, uint32_t type, uint64_t off)
{
	size_t namelen = strlen(name);
	size_t head = b->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t size = FUSE_DIRENT_ALIGN(head + namelen);
	if (b->len + size > b->cap)
		return false;
	uint8_t *at = b->p + b->len;
	memset(at, 0, size);
	struct fuse_dirent *d = (struct fuse_dirent *)(at + head - FUSE_NAME_OFFSET);
	if (b->plus && strcmp(name, ".") && strcmp(name, "..")) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)at;
		/* A name that vanished meanwhile goes out without attributes
		 * (node id 0), which the client accepts. */
		if (fs_lookup_entry(b->s, b->dir, name, false, &dp->entry_out) < 0)
			memset(&dp->entry_out, 0, sizeof(dp->entry_out));
	}
	d->ino = ino;
	d->off = off;
	d->namelen = (uint32_t)namelen;
	d->type = type;
	memcpy(d->name, name, namelen);
	b->len += size;
	return true;
}

static void list_synthetic(struct dir_buf *b, uint64_t offset)
{
	struct fs_server *s = b->s;

	/* Offsets: 1 ".", 2 "..", 3 + k the export in slot k. By slot, so an
	 * export removed or added between two READDIRs moves no other. */
	for (uint64_t off = offset; ; off++) {
		char name[FS_EXPORT_NAME_MAX];
		uint64_t ino = FS_ROOT_ID;
		unsigned type = DT_DIR;
		if (off >= 2) {
			pthread_mutex_lock(&s->lock);
			while (off - 2 < s->nslots && s->exports[off - 2].state != FS_EXPORT_LIVE)
				off++;
			bool have = off - 2 < s->nslots;
			if (have) {
				const struct fs_export *e = &s->exports[off - 2];
				memcpy(name, e->name, sizeof(name));
				ino = e->root->ino;
				type = e->root->type == S_IFREG ? DT_REG : DT_DIR;
			}
			pthread_mutex_unlock(&s->lock);
			if (!have)
				return;
		} else {
			strcpy(name, off == 0 ? "." : "..");
		}
		if (!add_entry(b, name, ino, type, off + 1))
			return;
	}
}

static int list_host(struct dir_buf *b, int fd, uint64_t offset)
{
	_Alignas(8) uint8_t buf[GETDENTS_BYTES];

	if (lseek(fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n < 0)
			return b->len ? 0 : -errno;
		if (n == 0)
			return 0;
		for (long at = 0; at < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + at);
			at += d->d_reclen;
			if (!add_entry(b, d->d_name, d->d_ino, d->d_type, (uint64_t)d->d_off))
				return 0;
		}
	}
}

static void readdir_common(struct fs_req *r, bool plus)
{
	const struct fuse_read_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	struct fs_handle *h = fs_handle_get(r->s, in->fh, true);
	if (!h) {
		fs_reply_err(r, EBADF);
		return;
	}
	struct dir_buf b = { .plus = plus, .s = r->s };
	b.cap = in->size < fs_out_room(r) ? in->size : fs_out_room(r);
	if (b.cap > MAX_DIR_REPLY_BYTES)
		b.cap = MAX_DIR_REPLY_BYTES;
	int rc = 0;
	if (plus && !(b.dir = fs_inode_get(r->s, r->h.nodeid)))
		rc = -fs_inode_gone(r->s, r->h.nodeid);
	if (rc == 0 && !(b.p = malloc(b.cap ? b.cap : 1)))
		rc = -ENOMEM;
	if (rc == 0) {
		pthread_mutex_lock(&h->dir_lock);
		if (h->synthetic)
			list_synthetic(&b, in->offset);
		else
			rc = list_host(&b, h->fd, in->offset);
		pthread_mutex_unlock(&h->dir_lock);
	}
	if (rc < 0) {
		fs_reply_err(r, -rc);
	} else {
		fs_out_write(r, 0, b.p, b.len);
		fs_reply_written(r, b.len);
	}
	free(b.p);
	fs_inode_put(r->s, b.dir);
	fs_handle_put(r->s, h);
}

void fs_op_readdir(struct fs_req *r) { readdir_common(r, false); }
void fs_op_readdirplus(struct fs_req *r) { readdir_common(r, true); }
