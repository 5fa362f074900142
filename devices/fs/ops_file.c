/* File I/O: open/create, read/write straight between the file and the
 * client's buffers, and the calls that work on an open handle. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#define MAX_IO_SEGS 1024u
#define COPY_RANGE_MAX_BYTES (64ull << 20)

/* The part [off, off+len) of v as iovecs. Returns how many, or 0 if it would
 * need more than max. */
static unsigned slice(const struct fs_iov *v, size_t off, size_t len, struct iovec *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->n && len; i++) {
		size_t seg = v->iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		if (n == max)
			return 0;
		size_t take = seg - off < len ? seg - off : len;
		out[n++] = (struct iovec){ (uint8_t *)v->iov[i].iov_base + off, take };
		len -= take;
		off = 0;
	}
	return n;
}

static uint32_t open_reply_flags(const struct fs_server *s, unsigned export)
{
	enum fs_cache c = export < FS_MAX_EXPORTS ? s->exports[export].cache : FS_CACHE_AUTO;

	return c == FS_CACHE_NONE ? FOPEN_DIRECT_IO : c == FS_CACHE_ALWAYS ? FOPEN_KEEP_CACHE : 0;
}

/* The client's open flags as the host file should see them. */
static int host_flags(const struct fs_server *s, uint32_t flags)
{
	int f = (int)flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_DIRECTORY);

	/* With writeback caching the client's page cache fills partial pages
	 * (reads on a write-only file) and appends itself. */
	if (s->flags & FUSE_WRITEBACK_CACHE) {
		if ((f & O_ACCMODE) == O_WRONLY)
			f = (f & ~O_ACCMODE) | O_RDWR;
		f &= ~O_APPEND;
	}
	return f;
}

static bool wants_write(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

void fs_op_open(struct fs_req *r)
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
	/* Only regular files are opened on the host: a device node, FIFO or
	 * socket in an export is the guest kernel's business, never a host one. */
	int rc = i->type == S_IFREG ? 0 : i->type == S_IFDIR ? -EISDIR : i->type == S_IFLNK ? -ELOOP : -ENXIO;
	if (rc == 0 && wants_write(in->flags) && fs_export_readonly(r->s, i->export))
		rc = -EROFS;
	struct fs_fsetid f;
	fs_fsetid_drop(rc == 0 && (in->flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID), &f);
	int fd = rc == 0 ? fs_reopen(r->s, i, host_flags(r->s, in->flags)) : -1;
	fs_fsetid_restore(&f);
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (rc == 0 && (rc = fs_handle_new(r->s, fd, false, false, i->export, &out.fh)) < 0)
		close(fd);
	if (rc < 0) {
		fs_reply_err(r, -rc);
	} else {
		out.open_flags = open_reply_flags(r->s, i->export);
		fs_reply(r, &out, sizeof(out));
	}
	fs_inode_put(r->s, i);
}

/* CREATE of a name that exists: open it as OPEN would, only if it is a
 * regular file (a FIFO would block this worker until a writer came). */
static int open_existing(const struct fs_server *s, const struct fs_inode *p, const char *name, int flags)
{
	struct stat st;
	char path[16];
	int pfd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (pfd < 0)
		return -1;
	int fd = -1;
	if (fstat(pfd, &st) < 0) {
		/* errno set */
	} else if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISLNK(st.st_mode) ? ELOOP : ENXIO;
	} else {
		snprintf(path, sizeof(path), "%d", pfd);
		fd = openat(s->proc_fd, path, (flags & ~(O_CREAT | O_NOFOLLOW)) | O_CLOEXEC);
	}
	int saved = errno;
	close(pfd);
	errno = saved;
	return fd;
}

void fs_op_create(struct fs_req *r)
{
	const struct fuse_create_in *in = fs_arg(r, sizeof(*in));
	size_t off = sizeof(*in);
	const char *name = in ? fs_arg_name(r, &off) : NULL;
	struct { struct fuse_entry_out e; struct fuse_open_out o; } out = { 0 };
	struct fs_creds c;
	if (!name)
		return;
	struct fs_inode *p = fs_inode_get(r->s, r->h.nodeid);
	if (!p) {
		fs_reply_err(r, fs_inode_gone(r->s, r->h.nodeid));
		return;
	}
	int rc = p->nodeid == FS_ROOT_ID || fs_export_readonly(r->s, p->export) ? -EROFS : 0;
	int fd = -1;
	bool created = false;
	if (rc == 0) {
		fs_creds_enter(r, &c);
		/* O_NOFOLLOW: a symlink planted under this name is never followed.
		 * O_EXCL first, so we know whether the file is new (see fresh). */
		int flags = host_flags(r->s, in->flags) | O_NOFOLLOW | O_CLOEXEC;
		fd = openat(p->fd, name, flags | O_CREAT | O_EXCL, in->mode & 07777);
		created = fd >= 0;
		if (fd < 0 && errno == EEXIST && !(in->flags & O_EXCL)) {
			struct fs_fsetid f;
			fs_fsetid_drop((in->flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID), &f);
			fd = open_existing(r->s, p, name, flags);
			fs_fsetid_restore(&f);
		}
		rc = fd < 0 ? -errno : 0;
		fs_creds_leave(&c);
	}
	if (rc == 0 && (rc = fs_lookup_entry(r->s, p, name, created, &out.e)) < 0)
		close(fd);
	if (rc == 0 && (rc = fs_handle_new(r->s, fd, false, false, p->export, &out.o.fh)) < 0) {
		close(fd);
		fs_inode_forget(r->s, out.e.nodeid, 1);
	}
	if (rc < 0) {
		fs_reply_err(r, -rc);
	} else {
		out.o.open_flags = open_reply_flags(r->s, p->export);
		fs_reply(r, &out, sizeof(out));
	}
	fs_inode_put(r->s, p);
}

/* O_TMPFILE: an unnamed file in the directory; linkat through /proc (LINK)
 * gives it a name later, as on a local filesystem. Its inode keeps a
 * duplicate of the open fd, which serves every by-inode call that an O_PATH
 * fd would. */
void fs_op_tmpfile(struct fs_req *r)
{
	const struct fuse_create_in *in = fs_arg(r, sizeof(*in));
	struct { struct fuse_entry_out e; struct fuse_open_out o; } out = { 0 };
	struct fs_creds c;
	struct stat st;
	if (!in)
		return;
	struct fs_inode *p = fs_inode_get(r->s, r->h.nodeid);
	if (!p) {
		fs_reply_err(r, fs_inode_gone(r->s, r->h.nodeid));
		return;
	}
	int rc = p->nodeid == FS_ROOT_ID || fs_export_readonly(r->s, p->export) ? -EROFS : 0;
	int fd = -1, ifd = -1;
	if (rc == 0) {
		fs_creds_enter(r, &c);
		fd = openat(p->fd, ".", (host_flags(r->s, in->flags) & ~O_TRUNC) | O_TMPFILE | O_CLOEXEC,
			    in->mode & 07777);
		rc = fd < 0 ? -errno : 0;
		fs_creds_leave(&c);
	}
	if (rc == 0 && (fstat(fd, &st) < 0 || (ifd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0))
		rc = -errno;
	struct fs_inode *i = NULL;
	int err = 0;
	if (rc == 0) {
		i = fs_inode_found(r->s, ifd, &st, p->export, true, &err);   /* takes ifd */
		ifd = -1;
		if (!i)
			rc = -err;
	}
	if (rc == 0) {
		fs_entry_fill(r->s, i, &st, &out.e);
		if ((rc = fs_handle_new(r->s, fd, false, false, p->export, &out.o.fh)) < 0)
			fs_inode_forget(r->s, i->nodeid, 1);
	}
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		if (ifd >= 0)
			close(ifd);
		fs_reply_err(r, -rc);
	} else {
		out.o.open_flags = open_reply_flags(r->s, p->export);
		fs_reply(r, &out, sizeof(out));
	}
	fs_inode_put(r->s, i);
	fs_inode_put(r->s, p);
}

static struct fs_handle *file_handle(struct fs_req *r, uint64_t fh)
{
	struct fs_handle *h = fs_handle_get(r->s, fh, false);

	if (!h)
		fs_reply_err(r, EBADF);
	return h;
}

void fs_op_read(struct fs_req *r)
{
	const struct fuse_read_in *in = fs_arg(r, sizeof(*in));
	struct iovec iov[MAX_IO_SEGS];
	if (!in)
		return;
	struct fs_handle *h = file_handle(r, in->fh);
	if (!h)
		return;
	size_t len = in->size < fs_out_room(r) ? in->size : fs_out_room(r);
	if (len > r->s->opt.max_write)
		len = r->s->opt.max_write;
	if (r->ref && len >= FS_READ_REF_MIN) {
		*r->ref = (struct fs_read_ref){ .fd = h->fd, .offset = in->offset, .len = len, .hold = h };
		fs_reply_written(r, 0);
		return;        /* h is put by fs_read_ref_done */
	}
	unsigned n = slice(&r->out, sizeof(struct fuse_out_header), len, iov, MAX_IO_SEGS);
	ssize_t got = len == 0 ? 0 : n == 0 ? -1 : preadv(h->fd, iov, (int)n, (off_t)in->offset);
	if (got < 0)
		fs_reply_err(r, n == 0 && len ? EINVAL : errno);
	else
		fs_reply_written(r, (size_t)got);
	fs_handle_put(r->s, h);
}

void fs_op_write(struct fs_req *r)
{
	const struct fuse_write_in *in = fs_arg(r, sizeof(*in));
	struct iovec iov[MAX_IO_SEGS];
	if (!in)
		return;
	if (r->in.bytes < r->data_off || r->in.bytes - r->data_off != in->size ||
	    in->size > r->s->opt.max_write) {
		fs_reply_err(r, EINVAL);
		return;
	}
	struct fs_handle *h = file_handle(r, in->fh);
	if (!h)
		return;
	unsigned n = slice(&r->in, r->data_off, in->size, iov, MAX_IO_SEGS);
	ssize_t put = -1;
	int err = EINVAL;
	if (fs_export_readonly(r->s, h->export)) {
		err = EROFS;
	} else if (in->size == 0) {
		put = 0;
	} else if (n) {
		struct fs_fsetid f;
		fs_fsetid_drop(in->write_flags & FUSE_WRITE_KILL_SUIDGID, &f);
		if ((put = pwritev(h->fd, iov, (int)n, (off_t)in->offset)) < 0)
			err = errno;
		fs_fsetid_restore(&f);
	}
	if (put < 0) {
		fs_reply_err(r, err);
	} else {
		struct fuse_write_out out = { .size = (uint32_t)put };
		fs_reply(r, &out, sizeof(out));
	}
	fs_handle_put(r->s, h);
}

void fs_op_release(struct fs_req *r)
{
	const struct fuse_release_in *in = fs_arg(r, sizeof(*in));

	if (!in)
		return;
	int rc = fs_handle_release(r->s, in->fh, false);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, NULL, 0);
}

void fs_op_flush(struct fs_req *r)
{
	const struct fuse_flush_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	struct fs_handle *h = file_handle(r, in->fh);
	if (!h)
		return;
	fs_locks_flush(r->s, r->h.nodeid, in->lock_owner);
	fs_reply(r, NULL, 0);
	fs_handle_put(r->s, h);
}

static void sync_handle(struct fs_req *r, bool dir)
{
	const struct fuse_fsync_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	struct fs_handle *h = fs_handle_get(r->s, in->fh, dir);
	if (!h) {
		fs_reply_err(r, EBADF);
		return;
	}
	int rc = h->fd < 0 ? 0 : (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd);
	if (rc < 0)
		fs_reply_err(r, errno);
	else
		fs_reply(r, NULL, 0);
	fs_handle_put(r->s, h);
}

void fs_op_fsync(struct fs_req *r) { sync_handle(r, false); }
void fs_op_fsyncdir(struct fs_req *r) { sync_handle(r, true); }

void fs_op_fallocate(struct fs_req *r)
{
	const struct fuse_fallocate_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	struct fs_handle *h = file_handle(r, in->fh);
	if (!h)
		return;
	if (fs_export_readonly(r->s, h->export)) {
		fs_reply_err(r, EROFS);
	} else {
		/* Under KILLPRIV_V2 the client sends no kill flag here: a caller
		 * other than root is taken to lack CAP_FSETID. */
		struct fs_fsetid f;
		fs_fsetid_drop(r->h.uid != 0, &f);
		int rc = fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0 ? errno : 0;
		fs_fsetid_restore(&f);
		if (rc)
			fs_reply_err(r, rc);
		else
			fs_reply(r, NULL, 0);
	}
	fs_handle_put(r->s, h);
}

void fs_op_lseek(struct fs_req *r)
{
	const struct fuse_lseek_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE) {
		fs_reply_err(r, EINVAL);     /* the client does SET/CUR/END itself */
		return;
	}
	struct fs_handle *h = file_handle(r, in->fh);
	if (!h)
		return;
	off_t at = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	if (at < 0) {
		fs_reply_err(r, errno);
	} else {
		struct fuse_lseek_out out = { .offset = (uint64_t)at };
		fs_reply(r, &out, sizeof(out));
	}
	fs_handle_put(r->s, h);
}

void fs_op_copy_file_range(struct fs_req *r)
{
	const struct fuse_copy_file_range_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	struct fs_handle *src = file_handle(r, in->fh_in);
	struct fs_handle *dst = src ? file_handle(r, in->fh_out) : NULL;
	if (!dst) {
		if (src)
			fs_handle_put(r->s, src);
		return;
	}
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	size_t len = in->len < COPY_RANGE_MAX_BYTES ? (size_t)in->len : COPY_RANGE_MAX_BYTES;
	ssize_t n = -1;
	if (fs_export_readonly(r->s, dst->export)) {
		errno = EROFS;
	} else {
		struct fs_fsetid f;
		fs_fsetid_drop(r->h.uid != 0, &f);   /* as for FALLOCATE */
		n = copy_file_range(src->fd, &off_in, dst->fd, &off_out, len, 0);
		fs_fsetid_restore(&f);
	}
	if (n < 0) {
		fs_reply_err(r, errno);
	} else {
		struct fuse_write_out out = { .size = (uint32_t)n };
		fs_reply(r, &out, sizeof(out));
	}
	fs_handle_put(r->s, dst);
	fs_handle_put(r->s, src);
}
