#include "common/ctl.h"

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

ssize_t ctl_sendv_fd(int sock, const struct iovec *iov, size_t n, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };

	if (fd >= 0) {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* One packet and the first fd that came with it (-1: none; any other is
 * closed: a reply carries one at most). */
static ssize_t recv_with_fd(int sock, char *buf, size_t size, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return n;
}

int ctl_request(int sock, const char *req, int send_fd, char *reply, size_t size, int *recv_fd,
		struct rv_err *err)
{
	int got = -1;

	if (recv_fd)
		*recv_fd = -1;
	struct iovec iov = { .iov_base = (void *)req, .iov_len = strlen(req) };
	if (ctl_sendv_fd(sock, &iov, 1, send_fd) < 0)
		return rv_fail(err, errno, "send '%s' to the sandbox's VMM", req);
	ssize_t n = recv_with_fd(sock, reply, size - 1, &got);
	if (n < 0)
		return rv_fail(err, errno, "the sandbox's VMM did not answer '%s'", req);
	if (n == 0)
		return rv_failx(err, ECONNRESET, "the sandbox's VMM went away during '%s'", req);
	reply[n] = '\0';
	int rc = 0;
	if (!strncmp(reply, "error ", 6))
		rc = ctl_vmm_error(reply, err);
	else if (strncmp(reply, "ok", 2) || (reply[2] && reply[2] != ' '))
		rc = rv_failx(err, EPROTO, "the sandbox's VMM answered '%s' with '%.40s'", req, reply);
	if (rc == 0 && recv_fd)
		*recv_fd = got;
	else
		rv_closep(&got);
	if (rc < 0)
		return rc;
	memmove(reply, reply + (reply[2] ? 3 : 2), strlen(reply) - (reply[2] ? 3 : 2) + 1);
	return 0;
}

int ctl_call(const char *path, const char *req, char *reply, size_t size, struct rv_err *err)
{
	_cleanup_close_ int fd = ctl_dial(path, err);

	if (fd < 0)
		return -1;
	return ctl_request(fd, req, -1, reply, size, NULL, err);
}
