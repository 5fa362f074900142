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

/* The umask takes bits off mknod's mode; fchmodat sets the whole of it. */
static int make_node(int dir, const char *name, unsigned major, unsigned minor)
{
	if (mknodat(dir, name, S_IFCHR | DEV_NODE_MODE, makedev(major, minor)) < 0 && errno != EEXIST)
		return -1;
	return fchmodat(dir, name, DEV_NODE_MODE, 0);
}

int devnodes_populate(const char *target, const char **what)
{
	_cleanup_close_ int dir = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	*what = target;
	if (dir < 0)
		return -1;
	for (size_t i = 0; i < sizeof(std_nodes) / sizeof(std_nodes[0]); i++) {
		*what = std_nodes[i].name;
		if (make_node(dir, std_nodes[i].name, std_nodes[i].major, std_nodes[i].minor) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(std_links) / sizeof(std_links[0]); i++) {
		*what = std_links[i].name;
		if (symlinkat(std_links[i].to, dir, std_links[i].name) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}
