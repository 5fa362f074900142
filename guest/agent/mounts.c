/* PID 1's filesystems and console. Nothing here is fatal: a missing mount is
 * reported on the console and the agent still serves the host. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

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

void mounts_setup(void)
{
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
