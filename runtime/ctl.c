#include "runtime/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

int ctl_sockaddr(const char *path, struct sockaddr_un *sa, int *dirfd, struct rv_err *err)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	*dirfd = -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sa->sun_path)) {
		strcpy(sa->sun_path, path);
		return 0;
	}
	if (!slash || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return rv_failx(err, ENAMETOOLONG, "socket %s: path too long", path);
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return rv_fail(err, errno, "socket %s: its directory", path);
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dirfd, slash + 1) >=
	    (int)sizeof(sa->sun_path)) {
		rv_closep(dirfd);
		return rv_failx(err, ENAMETOOLONG, "socket %s: its name is too long", path);
	}
	return 0;
}

int ctl_dial(const char *path, struct rv_err *err)
{
	struct sockaddr_un sa;
	_cleanup_close_ int dirfd = -1;

	if (ctl_sockaddr(path, &sa, &dirfd, err) < 0)
		return rv_wrap(err, "control socket");
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rv_fail(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return rv_fail(err, e, "connect to the sandbox's VMM at %s", path);
	}
	return fd;
}

/* "error ERRNO MESSAGE" into err. */
int ctl_vmm_error(const char *reply, struct rv_err *err)
{
	char *end;
	long code = strtol(reply + 6, &end, 10);

	if (end == reply + 6 || code <= 0 || code > 4095)
		code = EIO;
	return rv_failx(err, (int)code, "%s", *end == ' ' ? end + 1 : reply);
}

int ctl_call(const char *path, const char *req, char *reply, size_t size, struct rv_err *err)
{
	_cleanup_close_ int fd = ctl_dial(path, err);

	if (fd < 0)
		return -1;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "send '%s' to the sandbox's VMM", req);
	ssize_t n;
	do
		n = recv(fd, reply, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return rv_fail(err, errno, "the sandbox's VMM did not answer '%s'", req);
	if (n == 0)
		return rv_failx(err, ECONNRESET, "the sandbox's VMM went away during '%s'", req);
	reply[n] = '\0';
	if (!strncmp(reply, "error ", 6))
		return ctl_vmm_error(reply, err);
	if (strncmp(reply, "ok", 2) || (reply[2] && reply[2] != ' '))
		return rv_failx(err, EPROTO, "the sandbox's VMM answered '%s' with '%.40s'", req, reply);
	memmove(reply, reply + (reply[2] ? 3 : 2), strlen(reply) - (reply[2] ? 3 : 2) + 1);
	return 0;
}
