/* Names and attributes: lookup, forget, getattr/setattr, the creating and
 * removing ops, rename, link, statfs, access. Every name is one component
 * opened relative to its parent's O_PATH fd with O_NOFOLLOW, so nothing a
 * request names can leave the export (DESIGN §5). */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

static int stat_inode(const struct fs_inode *i, struct stat *st)
{
	return fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void root_stat(const struct fs_server *s, struct stat *st)
{
	*st = (struct stat){ .st_ino = FS_ROOT_ID, .st_mode = S_IFDIR | 0555,
			     .st_nlink = 2 + __atomic_load_n(&s->nlive, __ATOMIC_RELAXED),
			     .st_blksize = 4096 };
}

void fs_entry_fill(struct fs_server *s, struct fs_inode *i, const struct stat *st,
		   struct fuse_entry_out *e)
{
	uint64_t sec;
	uint32_t nsec;

	fs_timeouts(s, i->export, &sec, &nsec);
	*e = (struct fuse_entry_out){ .nodeid = i->nodeid, .entry_valid = sec, .attr_valid = sec,
				      .entry_valid_nsec = nsec, .attr_valid_nsec = nsec };
	fs_attr_from_stat(&e->attr, st);
}

/* The root of the export named name, with one more client lookup and a
 * request reference (fs_inode_put): a removal may free it the moment it is
 * no longer used. */
static struct fs_inode *find_export(struct fs_server *s, const char *name)
{
	struct fs_inode *i = NULL;

	pthread_mutex_lock(&s->lock);
	for (unsigned k = 0; k < s->nslots && !i; k++)
		if (s->exports[k].state == FS_EXPORT_LIVE && !strcmp(s->exports[k].name, name))
			i = s->exports[k].root;
	if (i) {
		i->nlookup++;
		i->refs++;
	}
	pthread_mutex_unlock(&s->lock);
	return i;
}

int fs_lookup_entry(struct fs_server *s, struct fs_inode *parent, const char *name, bool fresh,
		    struct fuse_entry_out *e)
{
	struct stat st;
	struct fs_inode *i;
	int err = 0;

	if (parent->nodeid == FS_ROOT_ID) {
		if (!(i = find_export(s, name)))
			return -ENOENT;
		if ((err = stat_inode(i, &st)) < 0)
			fs_inode_forget(s, i->nodeid, 1);
		else
			fs_entry_fill(s, i, &st, e);
		fs_inode_put(s, i);
		return err;
	}
	if (parent->type != S_IFDIR)
		return -ENOTDIR;
	int fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (st.st_dev != parent->dev && fs_export_hides(s, parent->export, fd, &st)) {
		close(fd);
		return -ENOENT;
	}
	if (!(i = fs_inode_found(s, fd, &st, parent->export, fresh, &err)))
		return -err;
	fs_entry_fill(s, i, &st, e);
	fs_inode_put(s, i);
	return 0;
}

/* The node a request names, or NULL after replying EBADF (never handed out,
 * or already forgotten) or ESTALE (its export was removed). */
static struct fs_inode *node(struct fs_req *r, uint64_t nodeid)
{
	struct fs_inode *i = fs_inode_get(r->s, nodeid);

	if (!i)
		fs_reply_err(r, fs_inode_gone(r->s, nodeid));
	return i;
}

/* Changes under parent p: never in the synthetic root or a read-only export. */
static bool may_change(struct fs_req *r, const struct fs_inode *p)
{
	if (p->nodeid == FS_ROOT_ID || fs_export_readonly(r->s, p->export)) {
		fs_reply_err(r, EROFS);
		return false;
	}
	return true;
}

void fs_op_lookup(struct fs_req *r)
{
	size_t off = 0;
	const char *name = fs_arg_name(r, &off);
	struct fuse_entry_out e;
	if (!name)
		return;
	struct fs_inode *p = node(r, r->h.nodeid);
	if (!p)
		return;
	int rc = fs_lookup_entry(r->s, p, name, false, &e);
	fs_inode_put(r->s, p);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, &e, sizeof(e));
}

void fs_op_forget(struct fs_req *r)
{
	const struct fuse_forget_in *in = fs_arg(r, sizeof(*in));

	if (in)
		fs_inode_forget(r->s, r->h.nodeid, in->nlookup);
}

void fs_op_batch_forget(struct fs_req *r)
{
	const struct fuse_batch_forget_in *in = fs_arg(r, sizeof(*in));
	if (!in)
		return;
	size_t room = (r->arg_len - sizeof(*in)) / sizeof(struct fuse_forget_one);
	size_t n = in->count < room ? in->count : room;
	for (size_t k = 0; k < n; k++) {
		struct fuse_forget_one one;
		memcpy(&one, r->arg + sizeof(*in) + k * sizeof(one), sizeof(one));
		fs_inode_forget(r->s, one.nodeid, one.nlookup);
	}
}

static void reply_attr(struct fs_req *r, const struct fs_inode *i, const struct stat *st)
{
	struct fuse_attr_out out = { 0 };
	uint64_t sec;
	uint32_t nsec;

	fs_timeouts(r->s, i->export, &sec, &nsec);
	out.attr_valid = sec;
	out.attr_valid_nsec = nsec;
	fs_attr_from_stat(&out.attr, st);
	fs_reply(r, &out, sizeof(out));
}

void fs_op_getattr(struct fs_req *r)
{
	struct stat st;
	struct fs_inode *i = node(r, r->h.nodeid);
	if (!i)
		return;
	int rc = 0;
	if (i->nodeid == FS_ROOT_ID)
		root_stat(r->s, &st);
	else
		rc = stat_inode(i, &st);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		reply_attr(r, i, &st);
	fs_inode_put(r->s, i);
}

static int set_size(struct fs_req *r, struct fs_inode *i, const struct fuse_setattr_in *in)
{
	if (in->valid & FATTR_FH) {
		struct fs_handle *h = fs_handle_get(r->s, in->fh, false);
		if (!h)
			return -EBADF;
		int rc = ftruncate(h->fd, (off_t)in->size) < 0 ? -errno : 0;
		fs_handle_put(r->s, h);
		return rc;
	}
	if (i->type != S_IFREG)
		return i->type == S_IFDIR ? -EISDIR : -EINVAL;
	int fd = fs_reopen(r->s, i, O_WRONLY);
	if (fd < 0)
		return -errno;
	int rc = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int set_times(struct fs_req *r, struct fs_inode *i, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	char name[16];

	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){ (time_t)in->atime, in->atimensec };
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){ (time_t)in->mtime, in->mtimensec };
	snprintf(name, sizeof(name), "%d", i->fd);
	/* The magic link names the inode itself, a symlink included. */
	return utimensat(r->s->proc_fd, name, ts, 0) < 0 ? -errno : 0;
}

static int apply_setattr(struct fs_req *r, struct fs_inode *i, const struct fuse_setattr_in *in)
{
	char name[16];

	snprintf(name, sizeof(name), "%d", i->fd);
	if ((in->valid & FATTR_MODE) && fchmodat(r->s->proc_fd, name, in->mode & 07777, 0) < 0)
		return -errno;
	if (in->valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = in->valid & FATTR_UID ? in->uid : (uid_t)-1;
		gid_t gid = in->valid & FATTR_GID ? in->gid : (gid_t)-1;
		if (fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (in->valid & FATTR_SIZE) {
		/* KILL_SUIDGID comes with a truncate or a chown; a host chown
		 * clears the bits by itself. */
		struct fs_fsetid f;
		fs_fsetid_drop(in->valid & FATTR_KILL_SUIDGID, &f);
		int rc = set_size(r, i, in);
		fs_fsetid_restore(&f);
		if (rc < 0)
			return rc;
	}
	if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
		return set_times(r, i, in);
	return 0;
}

void fs_op_setattr(struct fs_req *r)
{
	const struct fuse_setattr_in *in = fs_arg(r, sizeof(*in));
	struct stat st;
	if (!in)
		return;
	struct fs_inode *i = node(r, r->h.nodeid);
	if (!i)
		return;
	int rc = i->nodeid == FS_ROOT_ID || fs_export_readonly(r->s, i->export) ? -EROFS : 0;
	if (rc == 0)
		rc = apply_setattr(r, i, in);
	if (rc == 0)
		rc = stat_inode(i, &st);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		reply_attr(r, i, &st);
	fs_inode_put(r->s, i);
}

void fs_op_readlink(struct fs_req *r)
{
	char buf[PATH_MAX];
	struct fs_inode *i = node(r, r->h.nodeid);
	if (!i)
		return;
	ssize_t n = i->type == S_IFLNK ? readlinkat(i->fd, "", buf, sizeof(buf)) : -1;
	if (i->type != S_IFLNK)
		fs_reply_err(r, EINVAL);
	else if (n < 0)
		fs_reply_err(r, errno);
	else
		fs_reply(r, buf, (size_t)n);
	fs_inode_put(r->s, i);
}

/* The reply to a creating op: look the new name up as the client will. */
static void reply_new_entry(struct fs_req *r, struct fs_inode *p, const char *name, int rc, bool fresh)
{
	struct fuse_entry_out e;

	if (rc == 0)
		rc = fs_lookup_entry(r->s, p, name, fresh, &e);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, &e, sizeof(e));
}

/* What a creating op makes under its parent, as the caller (fsuid/fsgid). */
struct new_node {
	mode_t mode;                    /* S_IFDIR, S_IFLNK or mknod's full mode */
	dev_t rdev;
	const char *target;             /* symlink */
};

static int make_node(int dirfd, const char *name, const struct new_node *n)
{
	int rc;

	if ((n->mode & S_IFMT) == S_IFLNK)
		rc = symlinkat(n->target, dirfd, name);
	else if ((n->mode & S_IFMT) == S_IFDIR)
		rc = mkdirat(dirfd, name, n->mode & 07777);
	else
		rc = mknodat(dirfd, name, n->mode, n->rdev);
	return rc < 0 ? -errno : 0;
}

static void create_node(struct fs_req *r, const char *name, const struct new_node *n)
{
	struct fs_creds c;
	struct fs_inode *p = node(r, r->h.nodeid);

	if (!p)
		return;
	if (may_change(r, p)) {
		fs_creds_enter(r, &c);
		int rc = make_node(p->fd, name, n);
		fs_creds_leave(&c);
		reply_new_entry(r, p, name, rc, true);
	}
	fs_inode_put(r->s, p);
}

void fs_op_symlink(struct fs_req *r)
{
	size_t off = 0;
	const char *name = fs_arg_name(r, &off);
	const char *target = name ? fs_arg_str(r, &off, PATH_MAX - 1) : NULL;

	if (target)
		create_node(r, name, &(struct new_node){ .mode = S_IFLNK, .target = target });
}

void fs_op_mknod(struct fs_req *r)
{
	const struct fuse_mknod_in *in = fs_arg(r, sizeof(*in));
	size_t off = sizeof(*in);
	const char *name = in ? fs_arg_name(r, &off) : NULL;
	if (!name)
		return;
	mode_t type = in->mode & S_IFMT;
	if ((type == S_IFCHR || type == S_IFBLK) && !r->s->opt.allow_devices)
		fs_reply_err(r, EPERM);
	else if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
		fs_reply_err(r, EINVAL);
	else
		create_node(r, name, &(struct new_node){ .mode = in->mode, .rdev = in->rdev });
}

void fs_op_mkdir(struct fs_req *r)
{
	const struct fuse_mkdir_in *in = fs_arg(r, sizeof(*in));
	size_t off = sizeof(*in);
	const char *name = in ? fs_arg_name(r, &off) : NULL;

	if (name)
		create_node(r, name, &(struct new_node){ .mode = S_IFDIR | (in->mode & 07777) });
}

static void remove_name(struct fs_req *r, int flags)
{
	size_t off = 0;
	const char *name = fs_arg_name(r, &off);
	if (!name)
		return;
	struct fs_inode *p = node(r, r->h.nodeid);
	if (!p)
		return;
	if (may_change(r, p)) {
		if (unlinkat(p->fd, name, flags) < 0)
			fs_reply_err(r, errno);
		else
			fs_reply(r, NULL, 0);
	}
	fs_inode_put(r->s, p);
}

void fs_op_unlink(struct fs_req *r) { remove_name(r, 0); }
void fs_op_rmdir(struct fs_req *r) { remove_name(r, AT_REMOVEDIR); }

static void do_rename(struct fs_req *r, uint64_t newdir, uint32_t flags, size_t off)
{
	const char *oldname = fs_arg_name(r, &off);
	const char *newname = oldname ? fs_arg_name(r, &off) : NULL;
	if (!newname)
		return;
	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) {
		fs_reply_err(r, EINVAL);
		return;
	}
	struct fs_inode *op = node(r, r->h.nodeid);
	struct fs_inode *np = op ? node(r, newdir) : NULL;
	if (np && may_change(r, op) && may_change(r, np)) {
		if (op->export != np->export)
			fs_reply_err(r, EXDEV);
		else if (renameat2(op->fd, oldname, np->fd, newname, flags) < 0)
			fs_reply_err(r, errno);
		else
			fs_reply(r, NULL, 0);
	}
	fs_inode_put(r->s, np);
	fs_inode_put(r->s, op);
}

void fs_op_rename(struct fs_req *r)
{
	const struct fuse_rename_in *in = fs_arg(r, sizeof(*in));

	if (in)
		do_rename(r, in->newdir, 0, sizeof(*in));
}

void fs_op_rename2(struct fs_req *r)
{
	const struct fuse_rename2_in *in = fs_arg(r, sizeof(*in));

	if (in)
		do_rename(r, in->newdir, in->flags, sizeof(*in));
}

void fs_op_link(struct fs_req *r)
{
	const struct fuse_link_in *in = fs_arg(r, sizeof(*in));
	size_t off = sizeof(*in);
	const char *name = in ? fs_arg_name(r, &off) : NULL;
	char src[16];
	if (!name)
		return;
	struct fs_inode *p = node(r, r->h.nodeid);
	struct fs_inode *old = p ? node(r, in->oldnodeid) : NULL;
	if (old && may_change(r, p)) {
		int rc = 0;
		if (old->export != p->export)
			rc = -EXDEV;
		else if (old->nodeid == FS_ROOT_ID || old->type == S_IFDIR)
			rc = -EPERM;
		snprintf(src, sizeof(src), "%d", old->fd);
		/* Following the magic link (not AT_EMPTY_PATH, which needs
		 * CAP_DAC_READ_SEARCH) links the inode itself. */
		if (rc == 0 && linkat(r->s->proc_fd, src, p->fd, name, AT_SYMLINK_FOLLOW) < 0)
			rc = -errno;
		reply_new_entry(r, p, name, rc, false);
	}
	fs_inode_put(r->s, old);
	fs_inode_put(r->s, p);
}

void fs_op_statfs(struct fs_req *r)
{
	struct statfs sf;
	struct fuse_statfs_out out = { 0 };
	struct fs_inode *i = node(r, r->h.nodeid);
	if (!i)
		return;
	if (i->nodeid == FS_ROOT_ID) {
		/* The first export's filesystem speaks for the root; held, as a
		 * removal may free its root meanwhile. */
		uint64_t first = 0;
		pthread_mutex_lock(&r->s->lock);
		for (unsigned k = 0; k < r->s->nslots && !first; k++)
			if (r->s->exports[k].state == FS_EXPORT_LIVE)
				first = r->s->exports[k].root->nodeid;
		pthread_mutex_unlock(&r->s->lock);
		struct fs_inode *held = first ? fs_inode_get(r->s, first) : NULL;
		if (held)
			i = held;
	}
	int fd = i->fd;
	if (fd >= 0 && fstatfs(fd, &sf) == 0) {
		out.st = (struct fuse_kstatfs){ .blocks = sf.f_blocks, .bfree = sf.f_bfree,
			.bavail = sf.f_bavail, .files = sf.f_files, .ffree = sf.f_ffree,
			.bsize = (uint32_t)sf.f_bsize, .namelen = (uint32_t)sf.f_namelen,
			.frsize = (uint32_t)sf.f_frsize };
		fs_reply(r, &out, sizeof(out));
	} else if (fd < 0) {
		out.st = (struct fuse_kstatfs){ .bsize = 4096, .namelen = FS_MAX_NAME_BYTES, .frsize = 4096 };
		fs_reply(r, &out, sizeof(out));
	} else {
		fs_reply_err(r, errno);
	}
	fs_inode_put(r->s, i);
}

/* The client checks permissions itself (default_permissions); what is left
 * for us is what only the host knows: the file exists, the export is writable. */
void fs_op_access(struct fs_req *r)
{
	const struct fuse_access_in *in = fs_arg(r, sizeof(*in));
	struct stat st;
	if (!in)
		return;
	struct fs_inode *i = node(r, r->h.nodeid);
	if (!i)
		return;
	int rc = i->nodeid == FS_ROOT_ID ? 0 : stat_inode(i, &st);
	if (rc == 0 && (in->mask & W_OK) && (i->nodeid == FS_ROOT_ID || fs_export_readonly(r->s, i->export)))
		rc = -EROFS;
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, NULL, 0);
	fs_inode_put(r->s, i);
}
