/* fs-escape: a hostile program run inside a host mount of the FUSE server
 * (tests/fs/fs_mount.c), trying to reach a "secret" host file that lies
 * OUTSIDE every export, and to create or change anything outside them.
 *
 * usage: fs-escape [--seconds N] [--secret-text TEXT] ROOT SUBDIR SECRET
 *   ROOT    the export as mounted on the host (MNT/rootfs)
 *   SUBDIR  where to work, relative to ROOT (created if missing)
 *   SECRET  absolute host path of a file outside the export; its content is
 *           read once, before anything else, as the thing that must never
 *           be read again (use at least 16 random bytes)
 *   --secret-text  the secret's content, where SECRET is not readable here:
 *           in a guest (test_hostile_vm.sh), where the host's path means
 *           nothing to the guest's kernel and only the server could reach it
 * Prints "PASS <attempt>" or "FAIL <attempt>: <why>" per attempt and exits 1
 * if any failed (2: bad usage, 3: the jail could not be set up).
 *
 * Why a jail. Through a host mount, path resolution is done by the host
 * kernel: a symlink in the export that says /etc/passwd leads the caller to
 * the host's /etc/passwd, which is the host's business, not an escape through
 * the server. In a guest the same link leads to the guest's /etc/passwd. The
 * server's duty is narrower: it must never resolve a name or a link on the
 * host by itself, so that every operation it performs stays inside the export
 * whatever the client names, swaps or races. To observe only that, this
 * program first confines itself the way a guest is confined, and then no host
 * path outside the export is reachable by its own kernel-side resolution:
 *   - unshare a mount and a PID namespace, fork (the child is PID 1 there);
 *   - make every mount private, bind ROOT onto itself, mount a fresh proc on
 *     ROOT/proc (its /proc/1/root is then this jail, not the host's root);
 *   - pivot_root into ROOT and detach the old root.
 * From then on the kernel resolves every absolute or relative symlink and
 * every "..", and every /proc magic link, inside ROOT. So if the secret's
 * content ever comes back from a read, or (checked by the calling script on
 * the host) anything next to the secret appears or changes, the only way it
 * could have got there is the server acting on a host path outside the
 * export. The jail is not meant to withstand this program (root can leave a
 * chroot); the attempts below simply do not try that.
 *
 * What reaches the server here: LOOKUP/CREATE/MKDIR/MKNOD/SYMLINK/LINK/
 * RENAME(2)/UNLINK/SETATTR/SETXATTR/OPEN on nodes whose names the program
 * swaps between directories and symlinks to the outside (absolute, relative
 * and /proc targets) in tight races, device nodes, and forged file handles.
 * Requests a kernel never sends (a ".." or "a/b" name, an unknown node id)
 * need a raw request test of the server, not a mount. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452   /* Linux 6.6: the fchmodat that honours AT_SYMLINK_NOFOLLOW */
#endif

#define TOKEN_MAX_BYTES 256
#define UP "../../../../../../../../../../../../../../../../../../../../../../../../"
#define WHY_BYTES 512

struct ctx {
	char token[TOKEN_MAX_BYTES];
	size_t token_len;
	const char *secret;          /* host path, absolute */
	char outside[PATH_MAX];      /* its directory */
	int work;                    /* fd of SUBDIR inside the jail */
	dev_t dev;                   /* the mount's device */
	unsigned seconds;
	unsigned failed;
	bool in_guest;               /* --secret-text: run in a guest */
};

static void result(struct ctx *c, const char *name, const char *why)
{
	if (why && *why) {
		c->failed++;
		printf("FAIL %s: %s\n", name, why);
	} else {
		printf("PASS %s\n", name);
	}
}

/* Did reading fd return the secret? Reads at most a few KiB: the secret is
 * small and a hit shows at the start. Never blocks (fds may be pipes). */
static bool fd_leaks(const struct ctx *c, int fd)
{
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf));
	return n > 0 && memmem(buf, (size_t)n, c->token, c->token_len) != NULL;
}

static bool path_leaks(const struct ctx *c, int dir, const char *path)
{
	int fd = openat(dir, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return false;
	bool leak = fd_leaks(c, fd);
	close(fd);
	return leak;
}

static void whyf(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void whyf(char *why, const char *fmt, ...)
{
	va_list ap;

	if (*why)
		return;   /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(why, WHY_BYTES, fmt, ap);
	va_end(ap);
}

/* --- the jail ------------------------------------------------------------------ */

static int jail_fail(const char *what)
{
	printf("FAIL jail: %s: %s\n", what, strerror(errno));
	return -1;
}

/* In the child, PID 1 of a fresh PID namespace: see the header comment. */
static int enter_jail(const char *root)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return jail_fail("make / private");
	if (mount(root, root, NULL, MS_BIND, NULL) < 0)
		return jail_fail("bind ROOT onto itself");
	if (chdir(root) < 0)
		return jail_fail("chdir ROOT");
	if (mkdir("proc", 0555) < 0 && errno != EEXIST)
		return jail_fail("mkdir ROOT/proc");
	if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return jail_fail("mount proc");
	/* Where our root is itself a chroot (an agent before protocol v8 put
	 * CMD in one), pivot_root refuses (EINVAL, or EBUSY when ROOT is that
	 * root): a chroot confines this program's own resolution as well. */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return jail_fail("detach the old root");
	} else if ((errno != EINVAL && errno != EBUSY) || chroot(".") < 0) {
		return jail_fail("pivot_root");
	}
	if (chdir("/") < 0)
		return jail_fail("chdir /");
	return 0;
}

/* --- attempts: names and links ------------------------------------------------------ */

/* ".." as far as it goes stays at the jail's root, on the mount. */
static void try_dotdot(struct ctx *c)
{
	char why[WHY_BYTES] = "", path[PATH_MAX];
	struct stat top, root;

	int fd = openat(c->work, UP, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &top) < 0 || stat("/", &root) < 0)
		whyf(why, "open %s: %s", UP, strerror(errno));
	else if (top.st_dev != root.st_dev || top.st_ino != root.st_ino)
		whyf(why, "%s is dev %lu ino %lu, not the root", UP, (unsigned long)top.st_dev,
		     (unsigned long)top.st_ino);
	if (fd >= 0 && path_leaks(c, fd, c->secret + 1))
		whyf(why, "read the secret at %s from above the work dir", c->secret);
	snprintf(path, sizeof(path), UP "%s", c->secret + 1);
	if (path_leaks(c, c->work, path))
		whyf(why, "read the secret through %s", path);
	if (fd >= 0)
		close(fd);
	result(c, "dotdot-beyond-export-root", why);
}

/* The server stores a link's target and never follows it. */
static void try_symlink(struct ctx *c, const char *name, const char *target)
{
	char why[WHY_BYTES] = "", got[PATH_MAX];

	unlinkat(c->work, name, 0);
	if (symlinkat(target, c->work, name) < 0) {
		whyf(why, "symlink %s -> %s: %s", name, target, strerror(errno));
	} else {
		ssize_t n = readlinkat(c->work, name, got, sizeof(got) - 1);
		if (n < 0 || (got[n] = '\0', strcmp(got, target) != 0))
			whyf(why, "readlink %s: %s", name, n < 0 ? strerror(errno) : got);
		if (path_leaks(c, c->work, name))
			whyf(why, "read the secret by opening %s", name);
	}
	char test[64];
	snprintf(test, sizeof(test), "symlink-%s", name);
	result(c, test, why);
}

/* Creating "through" a link to the secret's directory: the jail's kernel
 * resolves the link (to nothing), so none of these may succeed, and none may
 * create anything next to the secret (the script checks the host side). */
static void try_create_through_link(struct ctx *c, const char *link)
{
	char why[WHY_BYTES] = "", p[PATH_MAX], q[PATH_MAX];

	snprintf(p, sizeof(p), "%s/created-by-fs-escape", link);
	int fd = openat(c->work, p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0) {
		whyf(why, "created %s", p);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/mkdir-by-fs-escape", link);
	if (mkdirat(c->work, p, 0755) == 0)
		whyf(why, "made directory %s", p);
	snprintf(p, sizeof(p), "%s/symlink-by-fs-escape", link);
	if (symlinkat("x", c->work, p) == 0)
		whyf(why, "made symlink %s", p);
	if (mkdirat(c->work, "victim", 0755) < 0 && errno != EEXIST)
		whyf(why, "mkdir victim: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/renamed-by-fs-escape", link);
	if (renameat(c->work, "victim", c->work, p) == 0)
		whyf(why, "renamed victim to %s", p);
	snprintf(q, sizeof(q), "%s/%s", link, strrchr(c->secret, '/') + 1);
	if (fchmodat(c->work, q, 0777, 0) == 0)
		whyf(why, "chmod %s", q);
	fd = openat(c->work, q, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0) {
		whyf(why, "truncated %s", q);
		close(fd);
	}
	char test[96];
	snprintf(test, sizeof(test), "create-through-%s", link);
	result(c, test, why);
}

/* Operations the server performs on a symlink node itself must change the
 * link, never what it points to (a server that reached the node through
 * /proc/self/fd/N or a path, and let the host follow it, would change the
 * secret: the script compares the secret's mode, owner, times, link count
 * and xattrs before and after). */
static void try_link_node_ops(struct ctx *c, const char *name)
{
	char why[WHY_BYTES] = "", before[PATH_MAX], after[PATH_MAX], hl[96];
	struct timespec ts[2] = { { .tv_sec = 12345 }, { .tv_sec = 12345 } };

	ssize_t n = readlinkat(c->work, name, before, sizeof(before) - 1);
	if (n < 0) {
		whyf(why, "readlink %s: %s", name, strerror(errno));
		result(c, "symlink-node-ops", why);
		return;
	}
	before[n] = '\0';
	/* The results do not matter (EPERM, EOPNOTSUPP are all fine), only
	 * what they change: the host side checks the targets. */
	if (fchownat(c->work, name, 65534, 65534, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
		whyf(why, "lchown %s: %s", name, strerror(errno));
	utimensat(c->work, name, ts, AT_SYMLINK_NOFOLLOW);
	syscall(SYS_fchmodat2, c->work, name, 0777, AT_SYMLINK_NOFOLLOW);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", c->work, name);
	lsetxattr(path, "trusted.fs-escape", "x", 1, 0);
	lsetxattr(path, "user.fs-escape", "x", 1, 0);
	lremovexattr(path, "security.capability");
	snprintf(hl, sizeof(hl), "%s.hardlink", name);
	unlinkat(c->work, hl, 0);
	if (linkat(c->work, name, c->work, hl, 0) == 0) {
		/* a hard link to the link, which must still be a link */
		n = readlinkat(c->work, hl, after, sizeof(after) - 1);
		if (n < 0 || (after[n] = '\0', strcmp(after, before) != 0))
			whyf(why, "the hard link to %s is no longer that link", name);
		unlinkat(c->work, hl, 0);
	}
	if (linkat(c->work, name, c->work, hl, AT_SYMLINK_FOLLOW) == 0)
		whyf(why, "hard-linked through %s to its target", name);
	n = readlinkat(c->work, name, after, sizeof(after) - 1);
	if (n < 0 || (after[n] = '\0', strcmp(after, before) != 0))
		whyf(why, "%s now says %s, was %s", name, n < 0 ? strerror(errno) : after, before);
	if (path_leaks(c, c->work, name))
		whyf(why, "read the secret through %s", name);
	char test[96];
	snprintf(test, sizeof(test), "symlink-node-ops-%s", name);
	result(c, test, why);
}

/* /proc from inside: magic links lead to this jail and its own fds only. */
static void try_proc(struct ctx *c)
{
	char why[WHY_BYTES] = "", p[PATH_MAX], link[PATH_MAX];
	const char *roots[] = { "/proc/self/root", "/proc/1/root", ("/proc/self/cwd/" UP),
				"/proc/thread-self/root" };

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", roots[i], c->secret);
		if (path_leaks(c, AT_FDCWD, p))
			whyf(why, "read the secret through %s", p);
	}
	ssize_t n = readlink("/proc/self/root", link, sizeof(link) - 1);
	if (n != 1 || link[0] != '/')
		whyf(why, "/proc/self/root is not / inside the jail");
	for (int fd = 0; fd < 64; fd++) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (path_leaks(c, AT_FDCWD, p))
			whyf(why, "read the secret through %s", p);
	}
	/* Links whose targets mean something else in the server's process: its
	 * own /proc/self/fd/N are O_PATH fds of export inodes, /dev/fuse, ... */
	for (int fd = 0; fd < 32; fd++) {
		char name[32];
		snprintf(name, sizeof(name), "procfd-%d", fd);
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		unlinkat(c->work, name, 0);
		if (symlinkat(p, c->work, name) == 0) {
			fchownat(c->work, name, 65534, 65534, AT_SYMLINK_NOFOLLOW);
			if (path_leaks(c, c->work, name))
				whyf(why, "read the secret through %s -> %s", name, p);
		}
	}
	snprintf(p, sizeof(p), "/proc/self/root%s", c->secret);
	unlinkat(c->work, "procroot", 0);
	if (symlinkat(p, c->work, "procroot") == 0 && path_leaks(c, c->work, "procroot"))
		whyf(why, "read the secret through procroot -> %s", p);
	result(c, "proc-magic-links", why);
}

/* --- attempts: devices and handles ------------------------------------------------- */

static void try_mknod(struct ctx *c, const char *name, mode_t type, dev_t dev, bool allowed)
{
	char why[WHY_BYTES] = "";

	unlinkat(c->work, name, 0);
	int r = mknodat(c->work, name, type | 0666, dev);
	if (allowed && r < 0)
		whyf(why, "mknod %s: %s (should work)", name, strerror(errno));
	else if (!allowed && r == 0)
		whyf(why, "mknod %s made a device node", name);
	else if (!allowed && errno != EPERM)
		whyf(why, "mknod %s: %s, expected EPERM", name, strerror(errno));
	unlinkat(c->work, name, 0);
	char test[64];
	snprintf(test, sizeof(test), "mknod-%s", name);
	result(c, test, why);
}

/* A device node the script made on the host side of the export ("zero",
 * 1:5, and "full", 1:7): the mount is nodev, so opening it fails; had it
 * opened, reads from zero would return bytes and writes to full ENOSPC, both
 * from a host device. */
static void try_host_device(struct ctx *c, const char *name, int flags)
{
	char why[WHY_BYTES] = "", buf[16];
	struct stat st;

	if (fstatat(c->work, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISCHR(st.st_mode)) {
		whyf(why, "%s is not the device node the test script made", name);
	} else {
		int fd = openat(c->work, name, flags | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			if (flags == O_RDONLY && read(fd, buf, sizeof(buf)) > 0)
				whyf(why, "read bytes from host device %u:%u", major(st.st_rdev),
				     minor(st.st_rdev));
			if (flags == O_WRONLY && write(fd, "x", 1) < 0 && errno == ENOSPC)
				whyf(why, "wrote to host device %u:%u", major(st.st_rdev), minor(st.st_rdev));
			close(fd);
		}
	}
	char test[64];
	snprintf(test, sizeof(test), "host-device-node-%s", flags == O_RDONLY ? "read" : "write");
	result(c, test, why);
}

/* File handles carry FUSE node ids (fh[0..1] = nodeid, fh[2] = generation).
 * Forged ones must resolve to nothing, or to a node the kernel already
 * knows, never to a host file outside the exports. */
static void try_forged_handles(struct ctx *c)
{
	char why[WHY_BYTES] = "";
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	int mount_id;

	int fd = openat(c->work, "decoy", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(c->work, "decoy", &h.fh, &mount_id, 0) < 0) {
		/* This kernel does not hand out handles it could not decode. */
		if (errno == EOPNOTSUPP)
			fprintf(stderr, "fs-escape: forged-file-handles: no file handles on this mount\n");
		else
			whyf(why, "name_to_handle_at: %s", strerror(errno));
		result(c, "forged-file-handles", why);
		return;
	}
	unsigned opened = 0;
	int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0 || h.fh.handle_bytes < 12) {
		whyf(why, "a %u-byte handle is no FUSE node handle", h.fh.handle_bytes);
	} else {
		uint32_t *raw = (uint32_t *)h.fh.f_handle;
		uint32_t gen = raw[2];
		for (uint64_t id = 0; id < 4096 + 8; id++) {
			uint64_t nodeid = id < 4096 ? id : ~0ull - (id - 4096);
			for (int g = 0; g < 2; g++) {
				raw[0] = (uint32_t)(nodeid >> 32);
				raw[1] = (uint32_t)nodeid;
				raw[2] = g ? gen : 0;
				fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
				if (fd < 0)
					continue;
				opened++;
				if (fd_leaks(c, fd))
					whyf(why, "read the secret through node id %llu",
					     (unsigned long long)nodeid);
				int d = openat(fd, UP, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (d >= 0 && path_leaks(c, d, c->secret + 1))
					whyf(why, "read the secret above node id %llu", (unsigned long long)nodeid);
				if (d >= 0)
					close(d);
				close(fd);
			}
		}
	}
	if (mfd >= 0)
		close(mfd);
	fprintf(stderr, "fs-escape: forged-file-handles: %u of %u forged handles opened a node\n", opened,
		2 * (4096 + 8));
	result(c, "forged-file-handles", why);
}

/* --- attempts: races ------------------------------------------------------------------ */

struct race {
	struct ctx *c;
	atomic_bool renames;         /* the swapper fell back to plain renames */
	int dir;                     /* the race's directory */
	atomic_bool stop;
	atomic_ulong swaps, ops;
	atomic_bool leaked;
	pthread_mutex_t lock;
	char why[WHY_BYTES];
};

static void race_fail(struct race *r, const char *what)
{
	pthread_mutex_lock(&r->lock);
	whyf(r->why, "%s", what);
	pthread_mutex_unlock(&r->lock);
	atomic_store(&r->leaked, true);
}

/* Swaps the directory d with a symlink to the outside, atomically where the
 * server offers RENAME_EXCHANGE, else by four renames. */
static void *swapper(void *arg)
{
	struct race *r = arg;
	bool exchange = true;
	const char *links[] = { "abs", "rel" };

	for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
		const char *l = links[i & 1];
		if (exchange && renameat2(r->dir, "d", r->dir, l, RENAME_EXCHANGE) == 0) {
			renameat2(r->dir, "d", r->dir, l, RENAME_EXCHANGE);
		} else {
			exchange = false;
			atomic_store(&r->renames, true);
			renameat(r->dir, "d", r->dir, "d.real");
			renameat(r->dir, l, r->dir, "d");
			renameat(r->dir, "d", r->dir, l);
			renameat(r->dir, "d.real", r->dir, "d");
		}
		atomic_fetch_add(&r->swaps, 1);
	}
	return NULL;
}

/* Works through the name "d" while it changes under it: create, mkdir,
 * link, rename, chmod, xattrs, and reading d/secret (a decoy in the real
 * directory; the secret's name outside). */
static void *opener(void *arg)
{
	struct race *r = arg;
	char p[64], q[64];

	for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
		snprintf(p, sizeof(p), "d/new-%lu", i);
		int fd = openat(r->dir, p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			if (write(fd, "x", 1) != 1) {
				/* the race may remove it: only escapes matter */
			}
			close(fd);
			unlinkat(r->dir, p, 0);
		}
		snprintf(p, sizeof(p), "d/dir-%lu", i);
		if (mkdirat(r->dir, p, 0755) == 0)
			unlinkat(r->dir, p, AT_REMOVEDIR);
		snprintf(q, sizeof(q), "d/link-%lu", i);
		if (linkat(r->dir, "d/secret", r->dir, q, 0) == 0)
			unlinkat(r->dir, q, 0);
		if (renameat(r->dir, "d/secret", r->dir, "d/secret.moved") == 0)
			renameat(r->dir, "d/secret.moved", r->dir, "d/secret");
		fchmodat(r->dir, "d/secret", 0640, 0);
		fchownat(r->dir, "d/secret", 0, 0, 0);
		if (path_leaks(r->c, r->dir, "d/secret") || path_leaks(r->c, r->dir, "d/../d/secret"))
			race_fail(r, "read the secret through the swapped name");
		atomic_fetch_add(&r->ops, 1);
	}
	return NULL;
}

/* Moves a directory around (a/b <-> b, a <-> a2) while another thread walks
 * ".." from a directory fd inside it and creates files there. */
static void *mover(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		renameat(r->dir, "a/b", r->dir, "b");
		renameat(r->dir, "b", r->dir, "a/b");
		renameat(r->dir, "a", r->dir, "a2");
		renameat(r->dir, "a2", r->dir, "a");
		atomic_fetch_add(&r->swaps, 1);
	}
	return NULL;
}

static void *walker(void *arg)
{
	struct race *r = arg;
	struct stat st;
	char p[PATH_MAX];

	/* The mover may already have a/b elsewhere: try until it is back. */
	int cfd;
	while ((cfd = openat(r->dir, "a/b/c", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 &&
	       errno == ENOENT && !atomic_load(&r->stop))
		;
	if (cfd < 0) {
		race_fail(r, "open a/b/c");
		return NULL;
	}
	snprintf(p, sizeof(p), UP "%s", r->c->secret + 1);
	for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
		int up = openat(cfd, UP, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up >= 0) {
			if (fstat(up, &st) == 0 && st.st_dev != r->c->dev)
				race_fail(r, "\"..\" from a moving directory left the mount");
			close(up);
		}
		if (path_leaks(r->c, cfd, p))
			race_fail(r, "read the secret through \"..\" from a moving directory");
		char f[32];
		snprintf(f, sizeof(f), "f-%lu", i);
		int fd = openat(cfd, f, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd);
			unlinkat(cfd, f, 0);
		}
		atomic_fetch_add(&r->ops, 1);
	}
	close(cfd);
	return NULL;
}

static void run_race(struct ctx *c, const char *name, const char *dir, void *(*a)(void *),
		     void *(*b)(void *), unsigned b_threads)
{
	struct race r = { .c = c, .dir = openat(c->work, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
	pthread_t ta, tb[4];
	unsigned started = 0;

	pthread_mutex_init(&r.lock, NULL);
	if (r.dir < 0) {
		whyf(r.why, "open %s: %s", dir, strerror(errno));
		result(c, name, r.why);
		return;
	}
	if (pthread_create(&ta, NULL, a, &r) != 0) {
		whyf(r.why, "start a thread");
		result(c, name, r.why);
		close(r.dir);
		return;
	}
	for (; started < b_threads && started < 4; started++)
		if (pthread_create(&tb[started], NULL, b, &r) != 0)
			break;
	struct timespec ts = { .tv_sec = c->seconds / 2, .tv_nsec = (c->seconds % 2) * 500000000L };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, true);
	pthread_join(ta, NULL);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tb[i], NULL);
	fprintf(stderr, "fs-escape: %s: %lu swaps%s, %lu operation rounds\n", name,
		atomic_load(&r.swaps), atomic_load(&r.renames) ? " (by plain renames)" : "",
		atomic_load(&r.ops));
	if (!atomic_load(&r.leaked) && atomic_load(&r.swaps) == 0)
		whyf(r.why, "the renaming thread never got a rename through");
	close(r.dir);
	result(c, name, r.why);
}

/* Puts back what a race (this run's or an earlier run's) left swapped. */
static void restore_races(struct ctx *c)
{
	struct stat st;

	if (fstatat(c->work, "swap/d", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		const char *links[] = { "swap/abs", "swap/rel" };
		for (int i = 0; i < 2; i++)
			if (fstatat(c->work, links[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
				renameat2(c->work, "swap/d", c->work, links[i], RENAME_EXCHANGE);
	}
	renameat(c->work, "swap/d.real", c->work, "swap/d");
	renameat(c->work, "move/a2", c->work, "move/a");
	renameat(c->work, "move/b", c->work, "move/a/b");
}

static int setup_races(struct ctx *c)
{
	char rel[PATH_MAX];
	int fd;

	restore_races(c);

	snprintf(rel, sizeof(rel), UP "%s", c->outside + 1);
	if ((mkdirat(c->work, "swap", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(c->work, "swap/d", 0755) < 0 && errno != EEXIST) ||
	    (symlinkat(c->outside, c->work, "swap/abs") < 0 && errno != EEXIST) ||
	    (symlinkat(rel, c->work, "swap/rel") < 0 && errno != EEXIST) ||
	    (fd = openat(c->work, "swap/d/secret", O_CREAT | O_WRONLY | O_CLOEXEC, 0644)) < 0)
		return -1;
	if (write(fd, "decoy\n", 6) != 6) {
		close(fd);
		return -1;
	}
	close(fd);
	if ((mkdirat(c->work, "move", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(c->work, "move/a", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(c->work, "move/a/b", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(c->work, "move/a/b/c", 0755) < 0 && errno != EEXIST))
		return -1;
	return 0;
}

/* --- main ---------------------------------------------------------------------------- */

static int attempts(struct ctx *c, const char *subdir)
{
	char rel[PATH_MAX];
	struct stat st;

	if (mkdir(subdir, 0755) < 0 && errno != EEXIST)
		return jail_fail("mkdir SUBDIR");
	c->work = open(subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->work < 0 || fstat(c->work, &st) < 0)
		return jail_fail("open SUBDIR");
	c->dev = st.st_dev;

	try_dotdot(c);
	snprintf(rel, sizeof(rel), UP "%s", c->secret + 1);
	try_symlink(c, "abs", c->secret);
	try_symlink(c, "rel", rel);
	snprintf(rel, sizeof(rel), UP "%s", c->outside + 1);
	unlinkat(c->work, "outdir-abs", 0);
	unlinkat(c->work, "outdir-rel", 0);
	if (symlinkat(c->outside, c->work, "outdir-abs") < 0 ||
	    symlinkat(rel, c->work, "outdir-rel") < 0)
		return jail_fail("symlink to the outside directory");
	try_create_through_link(c, "outdir-abs");
	try_create_through_link(c, "outdir-rel");
	try_link_node_ops(c, "abs");
	try_link_node_ops(c, "rel");
	try_link_node_ops(c, "outdir-abs");
	try_proc(c);
	try_mknod(c, "char-device", S_IFCHR, makedev(1, 3), false);
	try_mknod(c, "block-device", S_IFBLK, makedev(7, 0), false);
	try_mknod(c, "fifo", S_IFIFO, 0, true);
	/* In a guest a device node opens the guest's own device: nothing to
	 * learn about the host there. */
	if (!c->in_guest) {
		try_host_device(c, "zero", O_RDONLY);
		try_host_device(c, "full", O_WRONLY);
	}
	try_forged_handles(c);
	if (setup_races(c) < 0)
		return jail_fail("set up the race directories");
	run_race(c, "race-swap-dir-with-outside-symlink", "swap", swapper, opener, 2);
	run_race(c, "race-rename-subtree-while-walking-up", "move", mover, walker, 2);
	restore_races(c);
	return 0;
}

static int read_secret(struct ctx *c, const char *text)
{
	ssize_t n;

	if (text) {
		n = (ssize_t)strnlen(text, sizeof(c->token));
		memcpy(c->token, text, (size_t)n);
	} else {
		int fd = open(c->secret, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "fs-escape: open %s: %s\n", c->secret, strerror(errno));
			return -1;
		}
		n = read(fd, c->token, sizeof(c->token));
		close(fd);
	}
	if (n < 16) {
		fprintf(stderr, "fs-escape: %s must hold at least 16 bytes\n", c->secret);
		return -1;
	}
	c->token_len = (size_t)n;
	snprintf(c->outside, sizeof(c->outside), "%s", c->secret);
	*strrchr(c->outside, '/') = '\0';
	if (!c->outside[0])
		strcpy(c->outside, "/");
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx c = { .seconds = 4 };
	static const struct option opts[] = { { "seconds", required_argument, NULL, 's' },
					      { "secret-text", required_argument, NULL, 't' }, { 0 } };
	const char *text = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's')
			c.seconds = (unsigned)atoi(optarg);
		else if (opt == 't')
			text = optarg;
		else
			return 2;
	}
	if (argc - optind != 3 || argv[optind + 2][0] != '/' || argv[optind + 1][0] == '/') {
		fprintf(stderr, "usage: fs-escape [--seconds N] [--secret-text TEXT] ROOT SUBDIR /SECRET\n");
		return 2;
	}
	c.secret = argv[optind + 2];
	c.in_guest = text != NULL;
	if (read_secret(&c, text) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) {
		printf("FAIL jail: unshare: %s\n", strerror(errno));
		return 3;
	}
	pid_t pid = fork();
	if (pid < 0) {
		printf("FAIL jail: fork: %s\n", strerror(errno));
		return 3;
	}
	if (pid == 0) {
		if (enter_jail(argv[optind]) < 0 || attempts(&c, argv[optind + 1]) < 0)
			_exit(3);
		fflush(stdout);
		_exit(c.failed ? 1 : 0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			printf("FAIL jail: waitpid: %s\n", strerror(errno));
			return 3;
		}
	if (WIFSIGNALED(st)) {
		printf("FAIL jail: the jailed child died of signal %d\n", WTERMSIG(st));
		return 3;
	}
	return WEXITSTATUS(st);
}
