/* The VMM's jail (vmm/jail.h): its own mount, IPC and UTS namespaces, a root
 * holding nothing but its own /proc entry, the capabilities virtio-fs
 * passthrough needs, and rlimits. Firecracker's jailer does this from outside
 * with a chroot it prepares; the VMM does it itself here, after it has opened
 * everything, so no host path needs to be reachable from the jail. */
#include "vmm/jail.h"

#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Mounted over in our own mount namespace only, then made the root: every
 * Linux host has it, and nothing in it is needed once the devices are open. */
#define JAIL_MOUNTPOINT "/dev"
#define JAIL_TMPFS_OPTS "size=64k,nr_inodes=128,mode=0555"   /* 64 exports, at most */

static int count_threads(unsigned *n, struct rv_err *err)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d)
		return rv_fail(err, errno, "jail: list /proc/self/task");
	*n = 0;
	while ((e = readdir(d)))
		*n += e->d_name[0] != '.';
	closedir(d);
	return 0;
}

/* unshare(CLONE_NEWNS) moves only the calling thread: one started before
 * would stay outside, with the host's root. */
static int check_alone(struct rv_err *err)
{
	unsigned n = 0;

	if (count_threads(&n, err) < 0)
		return -1;
	if (n != 1)
		return rv_failx(err, EBUSY, "jail: %u threads already run; the VMM must enter "
				"its jail before it starts any", n);
	return 0;
}

static int bind_ro(const char *src, const char *dst, struct rv_err *err)
{
	const unsigned long lock = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mkdir(dst, 0555) < 0)
		return rv_fail(err, errno, "jail: mkdir %s", dst);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | lock, NULL) < 0)
		return rv_fail(err, errno, "jail: bind %s on %s", src, dst);
	return 0;
}

/* The new root: a tiny tmpfs with our own /proc/PID at proc/self (the file
 * server's xattr calls go through /proc/self/fd) and at proc/PID (where a
 * sanitizer build's leak checker looks for our threads), and the caller's
 * binds (the exports) below JAIL_FURNISHED_DIR. */
static int build_root(const struct jail_config *cfg, struct rv_err *err)
{
	char pid_dir[32], self_dst[64], pid_dst[64];
	int pid = getpid();

	snprintf(pid_dir, sizeof(pid_dir), "/proc/%d", pid);
	snprintf(self_dst, sizeof(self_dst), JAIL_MOUNTPOINT "/proc/self");
	snprintf(pid_dst, sizeof(pid_dst), JAIL_MOUNTPOINT "/proc/%d", pid);
	if (mount("runvm-jail", JAIL_MOUNTPOINT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  JAIL_TMPFS_OPTS) < 0)
		return rv_fail(err, errno, "jail: mount a tmpfs on " JAIL_MOUNTPOINT);
	/* Unbindable: an export that holds JAIL_MOUNTPOINT (the host's root, for
	 * runvm do) is bound recursively below it, and the copy would hold the
	 * jail, our /proc entry with it, where the host's /dev is. */
	if (mount(NULL, JAIL_MOUNTPOINT, NULL, MS_UNBINDABLE, NULL) < 0)
		return rv_fail(err, errno, "jail: make " JAIL_MOUNTPOINT "'s tmpfs unbindable");
	if (mkdir(JAIL_MOUNTPOINT "/proc", 0555) < 0)
		return rv_fail(err, errno, "jail: mkdir " JAIL_MOUNTPOINT "/proc");
	if (bind_ro(pid_dir, self_dst, err) < 0 || bind_ro(pid_dir, pid_dst, err) < 0)
		return -1;
	if (!cfg->furnish)
		return 0;
	if (mkdir(JAIL_MOUNTPOINT JAIL_FURNISHED_DIR, 0555) < 0)
		return rv_fail(err, errno, "jail: mkdir " JAIL_MOUNTPOINT JAIL_FURNISHED_DIR);
	return cfg->furnish(cfg->furnish_arg, JAIL_MOUNTPOINT JAIL_FURNISHED_DIR, err);
}

/* pivot_root(".", ".") stacks the old root on the new one, where a lazy
 * unmount drops it. A host whose root is the initial ramfs cannot pivot
 * (EINVAL): there the jail moves over / and chroots, as runc's --no-pivot. */
static int pivot(struct rv_err *err)
{
	const unsigned long lock = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (chdir(JAIL_MOUNTPOINT) < 0)
		return rv_fail(err, errno, "jail: chdir " JAIL_MOUNTPOINT);
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return rv_fail(err, errno, "jail: detach the host's root");
	} else if (errno != EINVAL) {
		return rv_fail(err, errno, "jail: pivot_root into " JAIL_MOUNTPOINT);
	} else if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0) {
		return rv_fail(err, errno, "jail: move " JAIL_MOUNTPOINT " over / and chroot");
	}
	if (chdir("/") < 0)
		return rv_fail(err, errno, "jail: chdir /");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | lock, NULL) < 0)
		return rv_fail(err, errno, "jail: make its root read-only");
	return 0;
}

/* No core file (with the guest's memory: MADV_DONTDUMP may not hold on every
 * kernel), no locked memory, no message queues. RLIMIT_NPROC stays: it
 * counts every process of our uid on the host, not ours alone. */
static int set_limits(struct rv_err *err)
{
	static const struct { int res; const char *name; } zero[] = {
		{ RLIMIT_CORE, "RLIMIT_CORE" },
		{ RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK" },
		{ RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE" },
	};

	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		if (setrlimit(zero[i].res, &(struct rlimit){ 0, 0 }) < 0)
			return rv_fail(err, errno, "jail: set %s to 0", zero[i].name);
	return 0;
}

uint64_t jail_kept_caps(const struct jail_config *cfg)
{
	if (cfg->no_caps)
		return 0;
	uint64_t keep = 1ull << CAP_CHOWN | 1ull << CAP_DAC_OVERRIDE | 1ull << CAP_DAC_READ_SEARCH |
			1ull << CAP_FOWNER | 1ull << CAP_FSETID | 1ull << CAP_SETGID |
			1ull << CAP_SETUID | 1ull << CAP_MKNOD;

	if (cfg->keep_net_admin)
		keep |= 1ull << CAP_NET_ADMIN;
	return keep;
}

/* The bounding set first (dropping from it needs CAP_SETPCAP, which goes
 * next), then ambient, then the sets themselves. */
static int drop_caps(const struct jail_config *cfg, struct rv_err *err)
{
	uint64_t keep = jail_kept_caps(cfg);
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)keep, .permitted = (uint32_t)keep },
		{ .effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32) },
	};

	for (int cap = 0; cap < 64; cap++) {
		if (keep & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;          /* past the kernel's last capability */
			return rv_fail(err, errno, "jail: drop capability %d from the bounding set", cap);
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return rv_fail(err, errno, "jail: clear ambient capabilities");
	if (syscall(SYS_capset, &h, d) < 0)
		return rv_fail(err, errno, "jail: drop capabilities");
	return 0;
}

int jail_check_privileged(struct rv_err *err)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return rv_fail(err, errno, "jail: read our capabilities");
	if (!(d[0].effective & (1u << CAP_SYS_ADMIN)))
		return rv_failx(err, EPERM, "the VMM's jail (a mount namespace and pivot_root) needs "
				"root, with CAP_SYS_ADMIN: rootless use is not supported");
	return 0;
}

int jail_enter(const struct jail_config *cfg, struct rv_err *err)
{
	if (check_alone(err) < 0)
		return -1;
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return rv_fail(err, errno, "jail: enter new mount, IPC and UTS namespaces%s",
			       errno == EPERM ? " (runvm boot needs root: rootless use is not supported)" : "");
	/* Before anything is mounted: on a host whose / is shared, our mounts
	 * would otherwise appear in the host's namespace. Slave, not private:
	 * what the host mounts below an export later still reaches the guest. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return rv_fail(err, errno, "jail: keep its mounts from the host's namespace");
	if (cfg->prepare && cfg->prepare(cfg->furnish_arg, err) < 0)
		return -1;
	if (build_root(cfg, err) < 0 || pivot(err) < 0 || set_limits(err) < 0 || drop_caps(cfg, err) < 0)
		return -1;
	return 0;
}

static int cmp_fd(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int jail_close_fds(const int *keep, size_t n, struct rv_err *err)
{
	int sorted[JAIL_MAX_KEPT_FDS];
	size_t m = 0;
	unsigned next = 3;

	if (n > JAIL_MAX_KEPT_FDS)
		return rv_failx(err, EINVAL, "jail: %zu fds to keep, at most %u", n, JAIL_MAX_KEPT_FDS);
	for (size_t i = 0; i < n; i++)
		if (keep[i] > 2)
			sorted[m++] = keep[i];
	qsort(sorted, m, sizeof(sorted[0]), cmp_fd);
	for (size_t i = 0; i < m; i++) {
		unsigned fd = (unsigned)sorted[i];
		if (fd > next && close_range(next, fd - 1, 0) < 0)
			return rv_fail(err, errno, "jail: close fds %u to %u", next, fd - 1);
		if (fd >= next)
			next = fd + 1;
	}
	if (close_range(next, ~0u, 0) < 0)
		return rv_fail(err, errno, "jail: close fds from %u", next);
	return 0;
}
