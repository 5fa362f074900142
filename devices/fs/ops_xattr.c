/* Extended attributes. Policy: user.* passes through. security.* and trusted.*
 * belong to the guest's kernel (SELinux labels, file capabilities, overlayfs
 * metadata): they are kept on the host as user.runvm.<name>, so the guest
 * sees its own and the host never honours what a guest wrote (a guest must
 * not give a host file capabilities). The host's real security.* and trusted.*
 * stay invisible; a guest may not name user.runvm.* directly; system.*
 * (POSIX ACLs, which we do not negotiate) is refused. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define HIDDEN_PREFIX "user.runvm."
#define XATTR_NAME_MAX_BYTES 255u

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Guest name -> host name; -errno when the guest may not use it. */
static int host_name(const char *guest, char *out, size_t size)
{
	if (starts(guest, HIDDEN_PREFIX))
		return -EPERM;
	if (starts(guest, "user."))
		return snprintf(out, size, "%s", guest) < (int)size ? 0 : -ERANGE;
	if (starts(guest, "security.") || starts(guest, "trusted."))
		return snprintf(out, size, HIDDEN_PREFIX "%s", guest) < (int)size ? 0 : -ERANGE;
	return -EOPNOTSUPP;
}

/* Host name -> guest name, or NULL when the guest must not see it. */
static const char *guest_name(const char *host)
{
	if (starts(host, HIDDEN_PREFIX))
		return host + strlen(HIDDEN_PREFIX);
	if (starts(host, "user."))
		return host;
	return NULL;
}

static void proc_path(const struct fs_inode *i, char *buf, size_t size)
{
	/* No *xattrat before Linux 6.13, and O_PATH fds refuse f*xattr: the
	 * magic link reaches the inode itself. */
	snprintf(buf, size, "/proc/self/fd/%d", i->fd);
}

static struct fs_inode *xattr_node(struct fs_req *r, bool change)
{
	struct fs_inode *i = fs_inode_get(r->s, r->h.nodeid);

	if (!i) {
		fs_reply_err(r, fs_inode_gone(r->s, r->h.nodeid));
		return NULL;
	}
	if (i->nodeid == FS_ROOT_ID || (change && fs_export_readonly(r->s, i->export))) {
		fs_reply_err(r, i->nodeid == FS_ROOT_ID && !change ? ENODATA : EROFS);
		fs_inode_put(r->s, i);
		return NULL;
	}
	return i;
}

void fs_op_setxattr(struct fs_req *r)
{
	/* Without FUSE_SETXATTR_EXT the argument is the short, 8-byte form. */
	const struct fuse_setxattr_in *in = fs_arg(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
	size_t off = FUSE_COMPAT_SETXATTR_IN_SIZE;
	const char *name = in ? fs_arg_str(r, &off, XATTR_NAME_MAX_BYTES) : NULL;
	char hname[XATTR_NAME_MAX_BYTES + sizeof(HIDDEN_PREFIX)], path[40];
	if (!name)
		return;
	if (in->size > FS_MAX_XATTR_BYTES || in->size > r->arg_len - off) {
		fs_reply_err(r, in->size > FS_MAX_XATTR_BYTES ? E2BIG : EINVAL);
		return;
	}
	int rc = host_name(name, hname, sizeof(hname));
	if (rc < 0) {
		fs_reply_err(r, -rc);
		return;
	}
	struct fs_inode *i = xattr_node(r, true);
	if (!i)
		return;
	proc_path(i, path, sizeof(path));
	if (setxattr(path, hname, r->arg + off, in->size, (int)in->flags) < 0)
		fs_reply_err(r, errno);
	else
		fs_reply(r, NULL, 0);
	fs_inode_put(r->s, i);
}

/* size 0 asks for the length; otherwise the value, or ERANGE if it is longer. */
static void reply_sized(struct fs_req *r, uint32_t size, const void *data, ssize_t n)
{
	if (n < 0) {
		fs_reply_err(r, errno);
	} else if (size == 0) {
		struct fuse_getxattr_out out = { .size = (uint32_t)n };
		fs_reply(r, &out, sizeof(out));
	} else if ((size_t)n > size) {
		fs_reply_err(r, ERANGE);
	} else {
		fs_reply(r, data, (size_t)n);
	}
}

void fs_op_getxattr(struct fs_req *r)
{
	const struct fuse_getxattr_in *in = fs_arg(r, sizeof(*in));
	size_t off = sizeof(*in);
	const char *name = in ? fs_arg_str(r, &off, XATTR_NAME_MAX_BYTES) : NULL;
	char hname[XATTR_NAME_MAX_BYTES + sizeof(HIDDEN_PREFIX)], path[40];
	if (!name)
		return;
	int rc = host_name(name, hname, sizeof(hname));
	if (rc < 0) {
		fs_reply_err(r, rc == -EPERM ? ENODATA : -rc);
		return;
	}
	struct fs_inode *i = xattr_node(r, false);
	if (!i)
		return;
	uint32_t size = in->size < FS_MAX_XATTR_BYTES ? in->size : FS_MAX_XATTR_BYTES;
	void *buf = malloc(FS_MAX_XATTR_BYTES);
	proc_path(i, path, sizeof(path));
	if (!buf) {
		fs_reply_err(r, ENOMEM);
	} else {
		ssize_t n = getxattr(path, hname, buf, FS_MAX_XATTR_BYTES);
		reply_sized(r, in->size ? size : 0, buf, n);
	}
	free(buf);
	fs_inode_put(r->s, i);
}

/* The host's list, filtered and renamed for the guest, in place. */
static size_t filter_list(char *list, size_t len)
{
	size_t out = 0;

	for (size_t at = 0; at < len;) {
		const char *name = list + at;
		size_t n = strnlen(name, len - at);
		at += n + 1;
		const char *g = guest_name(name);
		if (!g)
			continue;
		size_t gl = strlen(g);
		memmove(list + out, g, gl + 1);
		out += gl + 1;
	}
	return out;
}

void fs_op_listxattr(struct fs_req *r)
{
	const struct fuse_getxattr_in *in = fs_arg(r, sizeof(*in));
	char path[40];
	if (!in)
		return;
	struct fs_inode *i = xattr_node(r, false);
	if (!i)
		return;
	char *buf = malloc(FS_MAX_XATTR_BYTES + 1);
	proc_path(i, path, sizeof(path));
	if (!buf) {
		fs_reply_err(r, ENOMEM);
	} else {
		ssize_t n = listxattr(path, buf, FS_MAX_XATTR_BYTES);
		if (n >= 0) {
			buf[n] = 0;
			n = (ssize_t)filter_list(buf, (size_t)n);
		}
		reply_sized(r, in->size, buf, n);
	}
	free(buf);
	fs_inode_put(r->s, i);
}

void fs_op_removexattr(struct fs_req *r)
{
	size_t off = 0;
	const char *name = fs_arg_str(r, &off, XATTR_NAME_MAX_BYTES);
	char hname[XATTR_NAME_MAX_BYTES + sizeof(HIDDEN_PREFIX)], path[40];
	if (!name)
		return;
	int rc = host_name(name, hname, sizeof(hname));
	if (rc < 0) {
		fs_reply_err(r, rc == -EPERM ? ENODATA : -rc);
		return;
	}
	struct fs_inode *i = xattr_node(r, true);
	if (!i)
		return;
	proc_path(i, path, sizeof(path));
	if (removexattr(path, hname) < 0)
		fs_reply_err(r, errno);
	else
		fs_reply(r, NULL, 0);
	fs_inode_put(r->s, i);
}
