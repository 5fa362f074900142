/* The container's user namespace (EXEC's uid_map and gid_map, OCI
 * linux.uidMappings): made once by a short-lived child that unshares it and
 * waits while the agent, root outside, writes its maps; the agent keeps an
 * fd of it, and every process with the same maps joins it with setns after
 * its chroot (spawn.c), as runc's exec joins the container's namespaces.
 * The "outside" ids are the guest's, which virtio-fs shows as the host's. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define MAP_TEXT_MAX 4095   /* the kernel takes a map in one write of less than a page */

static int write_map(pid_t pid, const char *name, const uint32_t *v, uint32_t n,
		     struct rv_err *err)
{
	char path[64], text[MAP_TEXT_MAX + 1];
	size_t len = 0;

	for (uint32_t i = 0; i < n; i += 3) {
		int w = snprintf(text + len, sizeof(text) - len, "%u %u %u\n", v[i], v[i + 1],
				 v[i + 2]);
		if (w < 0 || (size_t)w >= sizeof(text) - len)
			return rv_failx(err, E2BIG, "%s: %u lines are more than the %u bytes the "
					"kernel takes", name, n / 3, MAP_TEXT_MAX);
		len += (size_t)w;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		return rv_fail(err, errno, "write the user namespace's %s", name);
	return 0;
}

/* The helper unshares, says how that went on `ready` (0 or its errno), and
 * lives until `go` closes: it keeps no other end of the pipes, or it would
 * wait for itself. */
static __attribute__((noreturn)) void helper(const int ready[2], const int go[2])
{
	int code = 0;
	char c;

	close(ready[0]);
	close(go[1]);
	if (unshare(CLONE_NEWUSER) < 0)
		code = errno;
	if (write(ready[1], &code, sizeof(code)) != sizeof(code) || code)
		_exit(1);
	if (read(go[0], &c, 1) < 0)
		_exit(1);
	_exit(0);
}

static int make_userns(const struct agent *a, const struct proto_exec *x, struct rv_err *err)
{
	int ready[2], go[2];

	if (pidns_forkable(a, err) < 0)
		return -1;
	if (pipe2(ready, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	if (pipe2(go, O_CLOEXEC) < 0) {
		int code = errno;
		close(ready[0]);
		close(ready[1]);
		return rv_fail(err, code, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0)
		helper(ready, go);
	close(ready[1]);
	close(go[0]);
	int fd = -1, code = EIO;
	if (pid < 0)
		rv_fail(err, errno, "fork the user namespace's maker");
	else if (read(ready[0], &code, sizeof(code)) != sizeof(code) || code)
		rv_fail(err, code, "make the container's user namespace (unshare)");
	else if (write_map(pid, "uid_map", x->uid_map, x->nuid_map, err) == 0 &&
		 write_map(pid, "gid_map", x->gid_map, x->ngid_map, err) == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			rv_fail(err, errno, "open %s", path);
	}
	close(ready[0]);
	close(go[1]);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return fd;
}

static bool same_maps(const struct agent *a, const struct proto_exec *x)
{
	return a->userns_nuid == x->nuid_map && a->userns_ngid == x->ngid_map &&
	       !memcmp(a->userns_maps, x->uid_map, x->nuid_map * sizeof(uint32_t)) &&
	       !memcmp(a->userns_maps + x->nuid_map, x->gid_map, x->ngid_map * sizeof(uint32_t));
}

int userns_get(struct agent *a, const struct proto_exec *x, int *fd, struct rv_err *err)
{
	*fd = -1;
	if (!x->nuid_map)
		return 0;
	if (a->userns_fd >= 0 && same_maps(a, x)) {
		*fd = a->userns_fd;
		return 0;
	}
	size_t n = (size_t)x->nuid_map + x->ngid_map;
	_cleanup_free_ uint32_t *maps = malloc(n * sizeof(uint32_t));
	if (!maps)
		return rv_fail(err, ENOMEM, "user namespace maps");
	int ns = make_userns(a, x, err);
	if (ns < 0)
		return -1;
	memcpy(maps, x->uid_map, x->nuid_map * sizeof(uint32_t));
	memcpy(maps + x->nuid_map, x->gid_map, x->ngid_map * sizeof(uint32_t));
	userns_release(a);   /* processes in the old one keep it alive */
	a->userns_fd = *fd = ns;
	a->userns_maps = maps;
	maps = NULL;
	a->userns_nuid = x->nuid_map;
	a->userns_ngid = x->ngid_map;
	return 0;
}

void userns_release(struct agent *a)
{
	if (a->userns_fd >= 0)
		close(a->userns_fd);
	a->userns_fd = -1;
	free(a->userns_maps);
	a->userns_maps = NULL;
	a->userns_nuid = a->userns_ngid = 0;
}
