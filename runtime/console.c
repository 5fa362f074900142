#include "runtime/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"

/* As runc's utils.SendFd: the pty's name as the data, the fd as the right. */
static int send_master(const char *path, int master, const char *name, struct rv_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };

	if (strlen(path) >= sizeof(sa.sun_path))
		return rv_failx(err, ENAMETOOLONG, "--console-socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return rv_fail(err, errno, "--console-socket %s", path);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "--console-socket %s: send the terminal", path);
	return 0;
}

int console_make(unsigned rows, unsigned cols, int *master, int *slave, struct rv_err *err)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[64];

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		return rv_fail(err, errno, "make a terminal for the container");
	if (rows && cols) {
		struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
		ioctl(m, TIOCSWINSZ, &ws);
	}
	int fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "open %s", name);
	/* The guest's pty does the line discipline; ours passes bytes through. */
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	*master = rv_steal_fd(&m);
	*slave = fd;
	return 0;
}

int console_open(const char *socket_path, unsigned rows, unsigned cols, int *slave,
		 struct rv_err *err)
{
	_cleanup_close_ int master = -1;
	char name[64];
	int fd;

	if (console_make(rows, cols, &master, &fd, err) < 0)
		return -1;
	int e = ptsname_r(master, name, sizeof(name));
	if (e) {
		close(fd);
		return rv_fail(err, e, "name the container's terminal");
	}
	if (send_master(socket_path, master, name, err) < 0) {
		close(fd);
		return -1;
	}
	*slave = fd;
	return 0;
}

bool console_raw_begin(struct console_raw *r, int fd)
{
	r->fd = -1;
	if (tcgetattr(fd, &r->saved) < 0)
		return false;
	struct termios t = r->saved;
	cfmakeraw(&t);
	tcsetattr(fd, TCSANOW, &t);
	r->fd = fd;
	return true;
}

void console_raw_end(struct console_raw *r)
{
	if (r->fd >= 0)
		tcsetattr(r->fd, TCSANOW, &r->saved);
	r->fd = -1;
}
