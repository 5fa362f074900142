/* PID 1's root, filesystems and console, and the mounts and device nodes
 * the host asks for (MOUNT, MKNOD): in the agent's mount namespace, or in a
 * container root's when they are below one (roots.c).
 * Nothing in PID 1's own setup is fatal: a missing mount is reported on the
 * console and the agent still serves the host. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "devices/fs/server.h"
#include "guest/agent/agent.h"

struct mount_entry {
	const char *source, *target, *fstype;
	unsigned long flags;
	const char *data;
	mode_t mode;                  /* of the mount point we create */
};

static const struct mount_entry mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755 },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620", 0755 },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755 },
};

/* A mount point sits on another device than its parent directory. */
static bool is_mounted(const char *target)
{
	char parent[64];
	struct stat st, pst;
	const char *slash = strrchr(target, '/');
	size_t n = slash == target ? 1 : (size_t)(slash - target);

	if (n >= sizeof(parent))
		return false;
	memcpy(parent, target, n);
	parent[n] = '\0';
	return stat(target, &st) == 0 && stat(parent, &pst) == 0 && st.st_dev != pst.st_dev;
}

/* pivot_root, which puts each container into its root (roots.c), refuses a
 * namespace whose root is the initramfs itself: the kernel's rootfs has no
 * parent to stack the old root on. So PID 1 first takes a mount of its own
 * as its root, as switch_root does: the initramfs bound (with whatever is
 * mounted on it already) onto OWN_ROOT_STAGE, moved over "/", chrooted
 * into. The files are the same; the rootfs is left beneath, covered. */
#define OWN_ROOT_STAGE "/tmp"

static void own_root(void)
{
	if (mkdir(OWN_ROOT_STAGE, 0755) < 0 && errno != EEXIST)
		agent_warn("mkdir %s: %s", OWN_ROOT_STAGE, strerror(errno));
	if (mount("/", OWN_ROOT_STAGE, NULL, MS_BIND | MS_REC, NULL) < 0) {
		agent_warn("bind / on %s (a root pivot_root can leave): %s", OWN_ROOT_STAGE,
			   strerror(errno));
		return;
	}
	if (chdir(OWN_ROOT_STAGE) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0) {
		agent_warn("move the bind of / over / (a root pivot_root can leave): %s",
			   strerror(errno));
		umount2(OWN_ROOT_STAGE, MNT_DETACH);
	} else if (chroot(".") < 0) {
		agent_warn("chroot into the bind of /: %s", strerror(errno));
	}
	if (chdir("/") < 0)
		agent_warn("chdir /: %s", strerror(errno));
}

void mounts_setup(void)
{
	own_root();
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		const struct mount_entry *m = &mounts[i];
		if (mkdir(m->target, m->mode) < 0 && errno != EEXIST)
			agent_warn("mkdir %s: %s", m->target, strerror(errno));
		if (is_mounted(m->target))
			continue;
		if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0 && errno != EBUSY)
			agent_warn("mount %s on %s: %s", m->fstype, m->target, strerror(errno));
	}
}

/* fds 0, 1 and 2 on /dev/console, or /dev/null when there is none: the kernel
 * could not open a console before /dev existed. */
void console_setup(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* --- MOUNT ---------------------------------------------------------------------- */

#define MOUNT_POINT_MODE 0755
#define MOUNT_FILE_MODE 0644
#define BIND_REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* Absolute, and no ".." component: the host names a place below the guest
 * directory it means, never one that climbs out of it by spelling. */
static bool target_ok(const char *t)
{
	if (t[0] != '/')
		return false;
	for (const char *p = t; *p;) {
		size_t n;
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
	}
	return true;
}

/* mkdir -p of path's first `len` bytes. */
static int mkdir_prefix(const char *path, size_t len)
{
	char buf[PATH_MAX];

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len);
	buf[len] = '\0';
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, MOUNT_POINT_MODE) < 0 && errno != EEXIST)
			return -1;
		*p = c;
		if (c == '\0')
			return 0;
	}
}

/* An overlay's upperdir and workdir, made when missing: both live on a
 * fresh tmpfs the host mounted just before (`runvm do`'s writable layer),
 * and the host has no other way to make a directory in the guest. Only
 * absolute paths without "..", as for a target. */
static int make_overlay_dirs(const char *data, const char **step)
{
	static const char *const keys[] = { "upperdir=", "workdir=" };

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		size_t klen = strlen(keys[k]);
		for (const char *p = data; *p; p += strcspn(p, ","), p += *p == ',') {
			if (strncmp(p, keys[k], klen))
				continue;
			char dir[PATH_MAX];
			size_t n = strcspn(p + klen, ",");
			if (n >= sizeof(dir)) {
				errno = ENAMETOOLONG;
				return -1;
			}
			memcpy(dir, p + klen, n);
			dir[n] = '\0';
			*step = "create the overlay's upperdir and workdir";
			if (!target_ok(dir)) {
				errno = EINVAL;
				return -1;
			}
			if (mkdir_prefix(dir, n) < 0)
				return -1;
		}
	}
	return 0;
}

/* A mount point for m: a directory, or an empty file when m binds a file
 * (the kernel wants the kinds to match). Existing ones are left alone. */
static int make_mount_point(const struct proto_mount *m, const char **step)
{
	struct stat st;
	bool file = (m->flags & MS_BIND) && !(m->flags & MS_REMOUNT) &&
		    stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode);

	*step = "create the mount point";
	if (!file && !strcmp(m->fstype, "overlay") && make_overlay_dirs(m->data, step) < 0)
		return -1;
	if (!file)
		return mkdir_prefix(m->target, strlen(m->target));
	if (lstat(m->target, &st) == 0)
		return 0;
	size_t dir = (size_t)(strrchr(m->target, '/') - m->target);
	if (dir > 0 && mkdir_prefix(m->target, dir) < 0)
		return -1;
	int fd = open(m->target, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MOUNT_FILE_MODE);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* A bind takes its options only on a remount, so it is two calls. */
static int do_mount(const struct proto_mount *m, const char **step)
{
	unsigned long flags = m->flags;
	const char *data = m->data[0] ? m->data : NULL;

	if (!(flags & MS_BIND) || (flags & MS_REMOUNT)) {
		*step = "mount";
		return mount(m->source, m->target, m->fstype[0] ? m->fstype : NULL, flags, data);
	}
	*step = "bind";
	if (mount(m->source, m->target, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
		return -1;
	if (!(flags & BIND_REMOUNT_FLAGS))
		return 0;
	*step = "remount the bind with its options";
	if (mount(NULL, m->target, NULL, MS_BIND | MS_REMOUNT | (flags & BIND_REMOUNT_FLAGS),
		  NULL) == 0)
		return 0;
	/* Never leave a writable bind where a read-only one was asked for. */
	int code = errno;
	umount2(m->target, MNT_DETACH);
	errno = code;
	return -1;
}

/* OCI maskedPaths, as runc hides them: /dev/null over a file, an empty
 * read-only tmpfs over a directory. */
static int mask(const char *target, const char **step)
{
	struct stat st;

	*step = "stat";
	if (stat(target, &st) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		*step = "mount an empty read-only tmpfs";
		return mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "size=0,mode=0555");
	}
	*step = "bind /dev/null";
	return mount("/dev/null", target, NULL, MS_BIND, NULL);
}

/* See FS_READAHEAD_KB. Best effort: with the kernel's window the mount works,
 * only sequential reads are slower. */
static void widen_readahead(const char *target)
{
	struct stat st;
	char path[64];

	if (stat(target, &st) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (dprintf(fd, "%u", FS_READAHEAD_KB) < 0)
		fprintf(stderr, "runvm-agent: %s: %s\n", path, strerror(errno));
	close(fd);
}

int mounts_apply(const struct proto_mount *m, struct rv_err *err)
{
	const char *step = "";
	const char *what = (m->flags & MS_BIND) && !(m->flags & MS_REMOUNT) ? "bind" :
			   m->fstype[0] ? m->fstype : "mount";
	struct stat st;
	int code;

	if ((m->opts & (PROTO_MOUNT_IF_EXISTS | PROTO_MOUNT_MASK)) && lstat(m->target, &st) < 0 &&
	    errno == ENOENT)
		return 0;                        /* nothing there to mount over or hide */
	if (m->opts & PROTO_MOUNT_MASK) {
		if (mask(m->target, &step) < 0 && (code = errno) != ENOENT)   /* ENOENT: a dangling link */
			return rv_fail(err, code, "mask %s: %s", m->target, step);
		return 0;
	}
	if (make_mount_point(m, &step) < 0 || do_mount(m, &step) < 0) {
		code = errno;
		if (code == ENOENT && (m->opts & PROTO_MOUNT_IF_EXISTS))
			return 0;                /* a dangling symlink: as missing */
		return rv_fail(err, code, "%s '%s' on %s: %s", what, m->source, m->target, step);
	}
	if (!strcmp(m->fstype, "virtiofs") && !(m->flags & (MS_BIND | MS_REMOUNT)))
		widen_readahead(m->target);
	if (m->propagation && mount(NULL, m->target, NULL, m->propagation, NULL) < 0) {
		code = errno;
		umount2(m->target, MNT_DETACH);
		return rv_fail(err, code, "%s '%s' on %s: set its propagation", what, m->source,
			       m->target);
	}
	if ((m->opts & PROTO_MOUNT_DEVICES) && devnodes_populate(m->target, &step) < 0) {
		code = errno;
		umount2(m->target, MNT_DETACH);   /* no half-made /dev */
		return rv_fail(err, code, "device nodes in %s: %s", m->target, step);
	}
	return 0;
}

static int apply_mount(const void *arg, struct rv_err *err)
{
	return mounts_apply(arg, err);
}

bool mounts_on_mount(struct agent *a, struct conn *c, struct proto_msg *req)
{
	const struct proto_mount *m = &req->mount;
	struct rv_err err;
	int rc;

	if (!target_ok(m->target)) {
		conn_reply_error(c, req->id, EINVAL, "mount on '%s': the target must be an absolute "
				 "path without '..'", m->target);
		return false;
	}
	if (m->opts & PROTO_MOUNT_ROOT)
		rc = roots_mount(a, m, &err);
	else if ((rc = roots_hold(a, req, &err)) == 0)
		rc = roots_run(a, m->target, apply_mount, m, &err);
	if (rc < 0)
		conn_reply_error(c, req->id, err.code, "%s", err.msg);
	else
		conn_reply_ok(c, req->id);   /* held (rc 1): the init's START will say how it went */
	return rc == 1;
}

/* --- MKNOD ---------------------------------------------------------------------- */

static int open_in_root(int root, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };

	return (int)syscall(SYS_openat2, root, path[0] ? path : ".", &how, sizeof(how));
}

/* The directory that will hold dir_path's node, resolved inside root the
 * way the container's own lookups go (a symlink on the way stays in root),
 * each missing directory made in the one resolved before it. */
static int open_parent(int root, char *dir_path, const char **step)
{
	int dir = open_in_root(root, "");

	*step = "resolve the directories above it in the container's root";
	for (char *p = dir_path; dir >= 0 && *p;) {
		char *end = p + strcspn(p, "/");
		char saved = *end;
		*end = '\0';
		int next = open_in_root(root, dir_path);
		if (next < 0 && errno == ENOENT && (mkdirat(dir, p, MOUNT_POINT_MODE) == 0 || errno == EEXIST))
			next = open_in_root(root, dir_path);
		*end = saved;
		int code = errno;
		close(dir);
		errno = code;
		dir = next;
		p = end + strspn(end, "/");
	}
	return dir;
}

/* MKNOD's work, where its root is; d passed the checks of mounts_on_mknod. */
static int make_node(const void *arg, struct rv_err *err)
{
	const struct proto_mknod *d = arg;
	const char *step = "open the container's root", *name = strrchr(d->target, '/') + 1;
	char dir_path[PATH_MAX];

	snprintf(dir_path, (size_t)(name - d->target), "%s", d->target + 1);
	_cleanup_close_ int root = open(d->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dir = root >= 0 ? open_parent(root, dir_path, &step) : -1;
	if (dir < 0 || devnodes_make(dir, name, d, &step) < 0) {
		int code = errno;
		return rv_fail(err, code, "device node %s (%c %u:%u): %s", d->target, (char)d->kind,
			       d->major, d->minor, step);
	}
	return 0;
}

void mounts_on_mknod(struct agent *a, struct conn *c, const struct proto_msg *req)
{
	const struct proto_mknod *d = &req->mknod;
	const char *name = strrchr(d->target, '/') + 1;
	struct rv_err err;

	if (!target_ok(d->target) || !name[0] || !strcmp(name, ".") ||
	    (size_t)(name - d->target) >= PATH_MAX) {
		conn_reply_error(c, req->id, EINVAL, "device node '%s': the path must be absolute, "
				 "without '..', and name a node", d->target);
		return;
	}
	if (roots_run(a, d->root, make_node, d, &err) < 0)
		conn_reply_error(c, req->id, err.code, "%s", err.msg);
	else
		conn_reply_ok(c, req->id);
}
