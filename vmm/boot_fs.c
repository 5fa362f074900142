/* The file service of one sandbox: the exports (rootfs, volumes) and the
 * guest mounts over them (DESIGN §5). */
#include "vmm/boot_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

#define ROOTFS_MAX_LINKS 40u            /* symlinks followed in one path, as the kernel's */
#define MOUNT_POINT_DIR_MODE 0755       /* as the agent makes them in the guest */
#define MOUNT_POINT_FILE_MODE 0644

/* Appends "/" and the n bytes of name to the path in out (len bytes so far). */
static int path_push(char *out, size_t *len, size_t size, const char *name, size_t n)
{
	if (*len + 1 + n >= size)
		return -1;
	out[(*len)++] = '/';
	memcpy(out + *len, name, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

/* Where DST lands in the rootfs dir, as the container's own lookups take it:
 * a symlink on the way is followed inside dir (an absolute one from dir, ".."
 * never above it). A rootfs's links (/var/run -> /run) then work, and none
 * can put a mount outside the container. out gets the path relative to dir,
 * "/a/b"; a missing tail is kept as written (the agent creates it) and
 * *exists says whether all of it was there. */
int boot_fs_resolve(const char *dir, const char *dst, char *out, size_t size,
			     bool *exists, struct rv_err *err)
{
	char todo[PATH_MAX], link[PATH_MAX], host[PATH_MAX];
	const char *p = todo;
	size_t len = 0;
	unsigned links = 0;

	*exists = true;
	out[0] = '\0';
	if (snprintf(todo, sizeof(todo), "%s", dst) >= (int)sizeof(todo))
		return rv_failx(err, ENAMETOOLONG, "%s: too long", dst);
	while (*p) {
		p += strspn(p, "/");
		size_t n = strcspn(p, "/");
		const char *name = p;
		p += n;
		if (n == 0 || (n == 1 && name[0] == '.'))
			continue;
		if (n == 2 && name[0] == '.' && name[1] == '.') {
			char *slash = strrchr(out, '/');
			len = slash ? (size_t)(slash - out) : 0;
			out[len] = '\0';
			continue;
		}
		size_t before = len;
		if (path_push(out, &len, size, name, n) < 0)
			return rv_failx(err, ENAMETOOLONG, "%s: too long", dst);
		struct stat st;
		if (!*exists)
			continue;
		if (snprintf(host, sizeof(host), "%s%s", dir, out) >= (int)sizeof(host))
			return rv_failx(err, ENAMETOOLONG, "%s%s: too long", dir, out);
		if (lstat(host, &st) < 0) {
			if (errno != ENOENT)
				return rv_fail(err, errno, "%s", host);
			*exists = false;
			continue;
		}
		if (!S_ISLNK(st.st_mode))
			continue;
		ssize_t l = readlink(host, link, sizeof(link) - 1);
		if (l < 0)
			return rv_fail(err, errno, "readlink %s", host);
		link[l] = '\0';
		if (++links > ROOTFS_MAX_LINKS)
			return rv_failx(err, ELOOP, "%s: more than %u symlinks in the rootfs", dst,
					ROOTFS_MAX_LINKS);
		char next[PATH_MAX];
		if (snprintf(next, sizeof(next), "%s/%s", link, p) >= (int)sizeof(next))
			return rv_failx(err, ENAMETOOLONG, "%s: too long once %s is followed", dst, host);
		strcpy(todo, next);
		p = todo;
		len = link[0] == '/' ? 0 : before;   /* the link replaces its own name */
		out[len] = '\0';
	}
	if (len == 0)
		strcpy(out, "/");
	return 0;
}

bool boot_fs_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 0 && dir[n - 1] == '/')
		n--;
	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/* The directory path (relative, "" for root itself) inside root, for
 * reading: its mode can then be set through the fd, never through a name
 * that could have become a symlink meanwhile. */
static int open_dir_in(int root, const char *path)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };

	return (int)syscall(SYS_openat2, root, path[0] ? path : ".", &how, sizeof(how));
}

int boot_fs_make_mount_point(const char *dir, const char *dst, bool file, struct rv_err *err)
{
	char path[PATH_MAX];
	_cleanup_close_ int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (root < 0)
		return rv_fail(err, errno, "%s", dir);
	if (snprintf(path, sizeof(path), "%s", dst + strspn(dst, "/")) >= (int)sizeof(path))
		return rv_failx(err, ENAMETOOLONG, "%s: too long", dst);
	_cleanup_close_ int parent = open_dir_in(root, "");
	if (parent < 0)
		return rv_fail(err, errno, "%s", dir);
	for (char *p = path; *p;) {
		char *end = p + strcspn(p, "/");
		bool last = end[strspn(end, "/")] == '\0';
		*end = '\0';
		if (last && file) {
			_cleanup_close_ int fd = openat(parent, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
							O_CLOEXEC, MOUNT_POINT_FILE_MODE);
			if (fd < 0 && errno != EEXIST)
				return rv_fail(err, errno, "create %s%s", dir, dst);
			if (fd >= 0 && fchmod(fd, MOUNT_POINT_FILE_MODE) < 0)   /* whatever our umask */
				return rv_fail(err, errno, "chmod %s%s", dir, dst);
			return 0;
		}
		bool made = mkdirat(parent, p, MOUNT_POINT_DIR_MODE) == 0;
		if (!made && errno != EEXIST)
			return rv_fail(err, errno, "mkdir %s/%s", dir, path);
		int next = open_dir_in(root, path);
		if (next < 0)
			return rv_fail(err, errno, "open %s/%s", dir, path);
		close(parent);
		parent = next;
		if (made && fchmod(parent, MOUNT_POINT_DIR_MODE) < 0)   /* whatever our umask */
			return rv_fail(err, errno, "chmod %s/%s", dir, path);
		if (last)
			break;
		*end = '/';
		p = end + strspn(end, "/");
	}
	return 0;
}

int boot_fs_make_mount_points(const char *rootfs, const struct boot_mount_point *mp, size_t n,
			      size_t *failed, struct rv_err *err)
{
	_cleanup_free_ char **dst = calloc(n + 1, sizeof(*dst));
	char rel[PATH_MAX];
	int rc = 0;

	*failed = 0;
	if (!dst)
		return rv_fail(err, ENOMEM, "mount points");
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool exists, held = false;
		*failed = i;
		if (boot_fs_resolve(rootfs, mp[i].dst, rel, sizeof(rel), &exists, err) < 0)
			rc = -1;
		else if (!(dst[i] = strdup(rel)))
			rc = rv_fail(err, ENOMEM, "its mount point");
		for (size_t j = 0; rc == 0 && j < i && !held; j++)
			held = boot_fs_below(rel, dst[j]);
		if (rc == 0 && !exists && !held &&
		    boot_fs_make_mount_point(rootfs, rel, mp[i].file, err) < 0)
			rc = rv_wrap(err, "its mount point in the rootfs (a read-only root: the guest "
				     "cannot make it)");
	}
	for (size_t i = 0; i < n; i++)
		free(dst[i]);
	return rc;
}

/* DST: absolute, no "..", not the root itself; then where it lands. */
int boot_fs_check_volume(const struct boot_fs *f, struct boot_volume *v, struct rv_err *err)
{
	char dst[PATH_MAX];
	struct stat st;
	bool exists;

	if (stat(v->src, &st) < 0)
		return rv_fail(err, errno, "--volume %s: %s", v->arg, v->src);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return rv_failx(err, EINVAL, "--volume %s: %s is neither a directory nor a regular "
				"file (a socket or device of the host cannot reach a VM)", v->arg,
				v->src);
	strcpy(dst, v->dst);
	bool dotdot = strstr(dst, "/../") || !strcmp(dst, "..") || !strncmp(dst, "../", 3) ||
		      (strlen(dst) >= 3 && !strcmp(dst + strlen(dst) - 3, "/.."));
	if (dst[0] != '/' || dotdot)
		return rv_failx(err, EINVAL, "--volume %s: %s must be an absolute path without '..'",
				v->arg, dst);
	if (boot_fs_resolve(f->rootfs, dst, v->dst, sizeof(v->dst), &exists, err) < 0)
		return rv_wrap(err, "--volume %s", v->arg);
	if (!strcmp(v->dst, "/"))
		return rv_failx(err, EINVAL, "--volume %s: %s is the container's root (--rootfs)",
				v->arg, dst);
	if (!exists && f->readonly && !f->points_made)
		return rv_failx(err, EROFS, "--volume %s: %s does not exist in the read-only rootfs "
				"%s, and no mount point can be made there", v->arg, dst, f->rootfs);
	return 0;
}

/* A directory of the rootfs itself, not a symlink to one: the agent mounts
 * /proc, /dev and /sys of the container only where these are. */
static bool rootfs_has_dir(const char *rootfs, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", rootfs, name) < (int)sizeof(path) &&
	       lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int boot_fs_check(struct boot_fs *f, struct rv_err *err)
{
	struct stat st;

	if (stat(f->rootfs, &st) < 0)
		return rv_fail(err, errno, "--rootfs %s", f->rootfs);
	if (!S_ISDIR(st.st_mode))
		return rv_failx(err, ENOTDIR, "--rootfs %s: not a directory", f->rootfs);
	/* Under a writable layer the guest makes their places itself. */
	f->has_proc = f->overlay || rootfs_has_dir(f->rootfs, "proc");
	f->has_dev = f->overlay || rootfs_has_dir(f->rootfs, "dev");
	f->has_sys = f->overlay || rootfs_has_dir(f->rootfs, "sys");
	for (unsigned i = 0; i < f->nvolumes; i++)
		if (boot_fs_check_volume(f, &f->vol[i], err) < 0)
			return -1;
	return 0;
}

/* Checks every path and makes the server with its exports; *srv is NULL
 * without --rootfs. */
int boot_fs_make_server(struct boot_fs *f, const struct rv_log *log, struct fs_server **srv,
			  struct rv_err *err)
{
	struct fs_options opt = { .writeback = f->writeback };

	*srv = NULL;
	if (!f->rootfs)
		return 0;
	if (boot_fs_check(f, err) < 0)
		return -1;
	*srv = fs_server_new(&opt, log, err);
	if (!*srv)
		return -1;
	struct fs_export_cfg root = { .name = "rootfs", .path = f->rootfs,
				      .readonly = f->readonly || f->overlay, .cache = f->cache,
				      .hide_kernel_fs = f->overlay };
	if (fs_server_add_export(*srv, &root, err) < 0)
		return rv_wrap(err, "--rootfs %s", f->rootfs);
	for (unsigned i = 0; i < f->nvolumes; i++) {
		char name[16];
		snprintf(name, sizeof(name), "vol%u", i);
		struct fs_export_cfg vol = { .name = name, .path = f->vol[i].src,
					     .readonly = f->vol[i].readonly, .cache = f->cache };
		if (fs_server_add_export(*srv, &vol, err) < 0)
			return rv_wrap(err, "--volume %s", f->vol[i].arg);
	}
	return 0;
}

int boot_fs_mount_root(const struct agent_client *a, const struct boot_fs *f, const char *root_dir,
		       bool mount_tag, struct rv_err *err)
{
	struct proto_mount root = { .source = root_dir, .target = root_dir,
				    .flags = MS_BIND | MS_REC,
				    .opts = PROTO_MOUNT_ROOT | (f->root_pidns ? PROTO_MOUNT_PIDNS : 0),
				    .propagation = f->root_propagation };

	if ((mount_tag && agent_mount(a, BOOT_FS_TAG, BOOT_GUEST_FS, "virtiofs", 0, NULL, err) < 0) ||
	    agent_mount_msg(a, &root, err) < 0)
		return rv_wrap(err, "rootfs %s", f->rootfs);
	return 0;
}

const char *boot_fs_guest_root(const struct boot_fs *f)
{
	return f->overlay ? BOOT_GUEST_OVERLAY : BOOT_GUEST_ROOTFS;
}

/* The rootfs read-only below a tmpfs layer: the agent makes the layer's
 * directories (MOUNT of an overlay), and the overlay the container's root. */
static int mount_overlay(const struct agent_client *a, const struct boot_fs *f, struct rv_err *err)
{
	static const char data[] = "lowerdir=" BOOT_GUEST_ROOTFS ",upperdir=" BOOT_GUEST_LAYER
				   "/upper,workdir=" BOOT_GUEST_LAYER "/work";

	if (agent_mount(a, BOOT_FS_TAG, BOOT_GUEST_FS, "virtiofs", 0, NULL, err) < 0)
		return rv_wrap(err, "root %s", f->rootfs);
	if (agent_mount(a, "tmpfs", BOOT_GUEST_LAYER, "tmpfs", 0, "mode=0755", err) < 0 ||
	    agent_mount_opts(a, "overlay", BOOT_GUEST_OVERLAY, "overlay", 0, data, PROTO_MOUNT_ROOT,
			     err) < 0)
		return rv_wrap(err, "root %s: its writable layer", f->rootfs);
	return 0;
}

/* The container's filesystems, mounted by the agent before CMD runs in
 * them: the file service, the rootfs as a mount of its own (so that
 * --readonly can remount it), the kernel's filesystems where the rootfs has
 * a place for them, the volumes, and last the read-only remount (the
 * volumes' mount points are made before it). */
int boot_fs_mount(const struct agent_client *a, const struct boot_fs *f,
			   struct rv_err *err)
{
	const struct {
		const char *dir, *source, *fstype;
		uint32_t flags;
		bool wanted;
	} kernel_fs[] = {
		{ "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, f->has_proc },
		{ "dev", "/dev", NULL, MS_BIND | MS_REC, f->has_dev },
		{ "sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f->has_sys },
	};
	char src[64], dst[sizeof(BOOT_GUEST_ROOTFS) + PATH_MAX];
	const char *root = boot_fs_guest_root(f);

	if ((f->overlay ? mount_overlay(a, f, err) : boot_fs_mount_root(a, f, BOOT_GUEST_ROOTFS, true, err)) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(kernel_fs) / sizeof(kernel_fs[0]); i++) {
		if (!kernel_fs[i].wanted)
			continue;
		snprintf(dst, sizeof(dst), "%s/%s", root, kernel_fs[i].dir);
		if (agent_mount(a, kernel_fs[i].source, dst, kernel_fs[i].fstype,
				kernel_fs[i].flags, NULL, err) < 0)
			return rv_wrap(err, "--rootfs %s: /%s", f->rootfs, kernel_fs[i].dir);
	}
	for (unsigned i = 0; i < f->nvolumes; i++) {
		const struct boot_volume *v = &f->vol[i];
		snprintf(src, sizeof(src), "%s/vol%u", BOOT_GUEST_FS, i);
		snprintf(dst, sizeof(dst), "%s%s", root, v->dst);
		if (agent_mount(a, src, dst, NULL, MS_BIND | MS_REC | (v->readonly ? MS_RDONLY : 0),
				NULL, err) < 0)
			return rv_wrap(err, "--volume %s", v->arg);
	}
	if (f->readonly && !f->overlay && agent_mount(a, NULL, BOOT_GUEST_ROOTFS, NULL,
				       MS_BIND | MS_REMOUNT | MS_RDONLY, NULL, err) < 0)
		return rv_wrap(err, "--readonly");
	return 0;
}

