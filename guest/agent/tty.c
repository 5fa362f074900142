/* A process's terminal (PROTO_EXEC_TTY): a pty from the /dev/ptmx of the
 * process's root when it has one (a container's devpts instance, so that
 * `tty` and /dev/pts inside it agree), else the agent's own (PID 1 mounts
 * devpts on /dev/pts; the host-mode agent uses the host's), allocated before
 * the fork by the agent, which is in none of the roots' mount namespaces:
 * the root's directory fd (roots.c) reaches that namespace's mounts from
 * here. The slave becomes the process's fds 0, 1 and 2 and, after its
 * setsid, its controlling terminal (spawn.c); the master stays with the
 * agent, which relays it like a pipe pair (relay.c).
 *
 * The master is never read or written by anyone else, and the agent keeps
 * no slave fd: once the process and everything that inherited its terminal
 * have closed it, reading the master fails with EIO after the last byte
 * they wrote, which is the end of the output. The master itself is closed
 * only once the process is reaped, or the host has stopped reading it: its
 * close hangs the terminal up (SIGHUP). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define PTS_NAME_BYTES 64

/* The slave of master, without making it anybody's controlling terminal.
 * TIOCGPTPEER (Linux 4.13) opens it through the master's own devpts, with
 * no path to look up; older kernels take the path. */
static int open_slave(int master, struct rv_err *err)
{
	char name[PTS_NAME_BYTES];
	int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno != EINVAL && errno != ENOTTY)
		return rv_fail(err, errno, "open the terminal's slave");
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return rv_fail(err, errno, "name the terminal's slave");
	fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	return fd >= 0 ? fd : rv_fail(err, errno, "open %s", name);
}

/* dev/ptmx of the root dir, resolved as the process will see it (a link to
 * pts/ptmx stays inside root), or -1 with errno. Only a ptmx (5:2) is
 * opened: the container owns its root, and an open of anything else could
 * block the agent (a FIFO) or be something else's. */
static int open_root_ptmx(int dir)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	_cleanup_close_ int node = (int)syscall(SYS_openat2, dir, "dev/ptmx", &how, sizeof(how));
	struct stat st;
	char path[32];

	if (node < 0 || fstat(node, &st) < 0)
		return -1;
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2)) {
		errno = ENOTTY;
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", node);
	return open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static int open_master(const char *root, int root_dir, struct rv_err *err)
{
	_cleanup_close_ int fd = root_dir >= 0 ? open_root_ptmx(root_dir) : -1;

	if (fd < 0 && root_dir >= 0 && errno != ENOENT)
		return rv_fail(err, errno, "allocate a terminal (%s/dev/ptmx)", root);
	if (fd < 0)
		fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "allocate a terminal (/dev/ptmx)");
	if (grantpt(fd) < 0 || unlockpt(fd) < 0)
		return rv_fail(err, errno, "unlock the terminal");
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		return rv_fail(err, errno, "make the terminal's master nonblocking");
	return rv_steal_fd(&fd);
}

int tty_master(const struct proc *p)
{
	int out = p->st[PROTO_STDOUT].pipe.fd;

	return out >= 0 ? out : p->st[PROTO_STDIN].pipe.fd;
}

int tty_resize(const struct proc *p, struct rv_err *err)
{
	struct winsize ws = { .ws_row = p->rows, .ws_col = p->cols };
	int fd = tty_master(p);

	if (fd < 0)
		return rv_failx(err, ESRCH, "the terminal of exec %u is closed: its process has ended",
				p->exec_id);
	if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
		return rv_fail(err, errno, "set the terminal size of exec %u to %ux%u", p->exec_id,
			       p->rows, p->cols);
	return 0;
}

/* On failure the fds handed out so far are the caller's to close, as with
 * pipes: the streams' in proc_free, child_fds in plan_free. */
int tty_open(struct proc *p, int root_dir, int child_fds[3], struct rv_err *err)
{
	struct stream *in = &p->st[PROTO_STDIN], *out = &p->st[PROTO_STDOUT];

	out->pipe.fd = open_master(p->spec.exec.root, root_dir, err);
	if (out->pipe.fd < 0)
		return -1;
	if ((p->rows || p->cols) && tty_resize(p, err) < 0)
		return -1;
	if (!in->done && (in->pipe.fd = fcntl(out->pipe.fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return rv_fail(err, errno, "dup the terminal's master");
	child_fds[0] = open_slave(out->pipe.fd, err);
	if (child_fds[0] < 0)
		return -1;
	/* The process owns its terminal, as a login does (devpts made it ours);
	 * the group and mode stay devpts' (gid=, mode=). */
	const struct proto_exec *x = &p->spec.exec;
	uid_t owner = x->uid;
	bool mapped = !x->nuid_map || proto_id_map_outside(x->uid_map, x->nuid_map, x->uid, &owner);
	if (geteuid() == 0 && mapped && fchown(child_fds[0], owner, (gid_t)-1) < 0)
		return rv_fail(err, errno, "give the terminal to uid %u", owner);
	for (int i = 1; i < 3; i++)
		if ((child_fds[i] = fcntl(child_fds[0], F_DUPFD_CLOEXEC, 3)) < 0)
			return rv_fail(err, errno, "dup the terminal's slave");
	return 0;
}
