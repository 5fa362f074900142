/* The file server's part of the VMM's jail (server.h): the exports moved
 * from the host's mount tree into the jail's. Each at DIR/<its slot>; a slot
 * whose export was removed (none should be, this early) is passed over. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* fd must be e's root as first opened: the path was looked up again, and
 * the host may have moved something in between. */
static int check_same(const struct fs_export *e, int fd, struct rv_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || st.st_dev != e->root->dev || st.st_ino != e->root->ino)
		return rv_failx(err, ESTALE, "export %s: %s changed on the host while the VMM "
				"entered its jail; start the container again", e->name, e->path);
	return 0;
}

int fs_server_open_exports(struct fs_server *s, struct rv_err *err)
{
	for (unsigned i = 0; i < s->nslots; i++) {
		struct fs_export *e = &s->exports[i];
		if (e->state != FS_EXPORT_LIVE)
			continue;
		e->jail_fd = open(e->path, O_PATH | O_CLOEXEC);
		if (e->jail_fd < 0)
			return rv_fail(err, errno, "export %s: open %s for the jail", e->name, e->path);
		if (check_same(e, e->jail_fd, err) < 0)
			return -1;
	}
	return 0;
}

/* Read-only all the way down, submounts too, keeping each mount's other
 * flags (nosuid, noatime, ...), which a bind remount would reset. */
static int make_readonly(const char *target)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

	return mount_setattr(AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof(attr));
}

int fs_server_bind_exports(struct fs_server *s, const char *dir, struct rv_err *err)
{
	char target[PATH_MAX], source[32];

	for (unsigned i = 0; i < s->nslots; i++) {
		struct fs_export *e = &s->exports[i];
		if (e->state != FS_EXPORT_LIVE)
			continue;
		snprintf(target, sizeof(target), "%s/%u", dir, i);
		/* A file export (a bind of /etc/hosts) needs a file to cover. */
		int rc = e->root->type == S_IFDIR ? mkdir(target, 0500) : mknod(target, S_IFREG | 0400, 0);
		if (rc < 0)
			return rv_fail(err, errno, "export %s: make its place %s in the jail", e->name, target);
		/* Through the fd opened before the jail's root covered anything:
		 * an export below /dev is still the host's. */
		snprintf(source, sizeof(source), "/proc/self/fd/%d", e->jail_fd);
		if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return rv_fail(err, errno, "export %s: bind %s into the jail", e->name, e->path);
		close(e->jail_fd);
		e->jail_fd = -1;
		if (e->readonly && make_readonly(target) < 0)
			return rv_fail(err, errno, "export %s: make its bind read-only", e->name);
	}
	return 0;
}

/* Swaps e's root fd for the one reached through the jail. */
static int reopen_export(struct fs_server *s, struct fs_export *e, const char *path,
			 struct rv_err *err)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return rv_fail(err, errno, "export %s: reopen it in the jail", e->name);
	if (check_same(e, fd, err) < 0) {
		close(fd);
		return -1;
	}
	close(e->root->fd);
	e->root->fd = fd;
	if (e->mount_fd >= 0)
		close(e->mount_fd);
	fs_export_anchor(s, e, fd);     /* the bind is a mount of its own */
	return 0;
}

int fs_server_reopen_in_jail(struct fs_server *s, const char *dir, struct rv_err *err)
{
	char path[PATH_MAX];
	int proc = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (proc < 0)
		return rv_fail(err, errno, "file server: open the jail's /proc/self/fd");
	close(s->proc_fd);
	s->proc_fd = proc;
	for (unsigned i = 0; i < s->nslots; i++) {
		if (s->exports[i].state != FS_EXPORT_LIVE)
			continue;
		snprintf(path, sizeof(path), "%s/%u", dir, i);
		if (reopen_export(s, &s->exports[i], path, err) < 0)
			return -1;
	}
	return 0;
}
