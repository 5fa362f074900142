/* The container's /dev (MOUNT with PROTO_MOUNT_DEVICES): a fresh tmpfs gets
 * the device nodes and links every container may count on, as runc makes
 * them. The nodes are the guest kernel's devices, so the container sees its
 * own VM's null, random or tty, never the host's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define DEV_NODE_MODE 0666

static const struct { const char *name; unsigned major, minor; } std_nodes[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
	{ "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* ptmx leads to the devpts the spec mounts on /dev/pts (newinstance), so a
 * terminal opened inside the container is one of its own ptys. */
static const struct { const char *name, *to; } std_links[] = {
	{ "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
	{ "stderr", "/proc/self/fd/2" }, { "ptmx", "pts/ptmx" },
};

int devnodes_make(int dir, const char *name, const struct proto_mknod *d, const char **step)
{
	mode_t type = d->kind == 'c' ? S_IFCHR : d->kind == 'b' ? S_IFBLK : S_IFIFO;
	struct stat st;

	/* A node there (our standard /dev ones) gives way; a file or directory
	 * of the container's never does. */
	*step = "replace what is there";
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISFIFO(st.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		if (unlinkat(dir, name, 0) < 0)
			return -1;
	}
	*step = "mknod";
	if (mknodat(dir, name, type | d->mode, makedev(d->major, d->minor)) < 0)
		return -1;
	*step = "set its mode";   /* the umask took bits off mknod's */
	if (fchmodat(dir, name, d->mode, 0) < 0)
		return -1;
	*step = "set its owner";
	return fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW);
}

int devnodes_populate(const char *target, const char **what)
{
	_cleanup_close_ int dir = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	*what = target;
	if (dir < 0)
		return -1;
	for (size_t i = 0; i < sizeof(std_nodes) / sizeof(std_nodes[0]); i++) {
		struct proto_mknod d = { .kind = 'c', .major = std_nodes[i].major,
					 .minor = std_nodes[i].minor, .mode = DEV_NODE_MODE };
		const char *step;
		*what = std_nodes[i].name;
		if (devnodes_make(dir, std_nodes[i].name, &d, &step) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(std_links) / sizeof(std_links[0]); i++) {
		*what = std_links[i].name;
		if (symlinkat(std_links[i].to, dir, std_links[i].name) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}
