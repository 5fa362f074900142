/* The PID namespace of a container's root (PROTO_MOUNT_PIDNS), as runc
 * gives a container one: its init is PID 1 of a namespace of its own, and
 * the root's later processes join that namespace.
 *
 * The agent never enters one. unshare(CLONE_NEWPID) and setns(CLONE_NEWPID)
 * change only where the caller's next children go (the kernel's
 * pid_ns_for_children), never the caller's own namespace: the agent points
 * that at a new namespace or at the init's, forks, and points it back at
 * its own (an fd opened at start). The child stays the agent's, so
 * waitpid, exit statuses, SIGNAL, PS and SIGNAL_ALL go on with the agent's
 * pids and its /proc. The agent is single-threaded, which both calls need
 * and which leaves no other fork in between. Should the way back fail,
 * every later child would land in the container's namespace: the agent
 * then forks nothing more (pidns_stuck), and each request says why.
 *
 * A proc mount shows the PID namespace of whoever mounts it: the root's
 * proc mounts, and those on them, are held (roots_hold) until the init,
 * PID 1 of the namespace, makes them before its exec (pidns_replay). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/agent/agent.h"

void pidns_setup(struct agent *a)
{
	a->pidns_self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (a->pidns_self < 0)
		agent_warn("open /proc/self/ns/pid: %s (no container gets a PID namespace of its own)",
			   strerror(errno));
}

void pidns_release(struct agent *a)
{
	if (a->pidns_self >= 0)
		close(a->pidns_self);
	a->pidns_self = -1;
}

int pidns_forkable(const struct agent *a, struct rv_err *err)
{
	if (a->pidns_stuck)
		return rv_failx(err, EIO, "the agent could not return to its own PID namespace after "
				"forking into a container's: it starts no more processes");
	return 0;
}

/* Points the agent's next child at j's namespace: a new one, or the init's. */
static int aim(const struct root_join *j, struct rv_err *err)
{
	if (j->new_pidns && unshare(CLONE_NEWPID) < 0)
		return rv_fail(err, errno, "unshare a PID namespace for the init of the container "
			       "root %s", j->path);
	if (!j->new_pidns && setns(j->pidns, CLONE_NEWPID) < 0)
		return rv_fail(err, errno, "aim at the PID namespace of the init of the container "
			       "root %s", j->path);
	return 0;
}

/* Back to the agent's own for its next children. A child forked meanwhile
 * is ended: nothing may go on from a half-done switch. */
static int aim_home(struct agent *a, const struct root_join *j, pid_t pid, struct rv_err *err)
{
	if (setns(a->pidns_self, CLONE_NEWPID) == 0)
		return 0;
	int code = errno;
	a->pidns_stuck = true;
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return rv_fail(err, code, "return to the agent's own PID namespace after forking for the "
		       "container root %s (the agent starts no more processes)", j->path);
}

pid_t pidns_fork(struct agent *a, const struct root_join *j, struct rv_err *err)
{
	bool away = j && (j->new_pidns || j->pidns >= 0);

	if (pidns_forkable(a, err) < 0)
		return -1;
	if (away && a->pidns_self < 0)
		return rv_failx(err, ENOTSUP, "the container root %s wants a PID namespace, and the "
				"agent could not open its own at start", j->path);
	if (away && aim(j, err) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0)
		return 0;
	int code = errno;
	if (away && aim_home(a, j, pid, err) < 0)
		return -1;
	/* A namespace whose init has died takes no new process (alloc_pid). */
	if (pid < 0 && away && !j->new_pidns && code == ENOMEM)
		return rv_failx(err, ESRCH, "the init of the container root %s has ended: its PID "
				"namespace takes no new process", j->path);
	if (pid < 0)
		return rv_fail(err, code, "fork");
	return pid;
}

int pidns_open(pid_t pid, struct rv_err *err)
{
	char path[48];

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : rv_fail(err, errno, "open %s, the init's PID namespace", path);
}

/* path as the init sees it: the root is its "/". */
static const char *inside(const struct root_join *j, const char *path)
{
	const char *rest = path + strlen(j->path);

	return rest[0] ? rest : "/";
}

int pidns_replay(const struct root_join *j, struct rv_err *err)
{
	for (unsigned i = 0; i < j->nmounts; i++) {
		struct proto_mount m = j->mounts[i].mount;
		bool bind = (m.flags & MS_BIND) && !(m.flags & MS_REMOUNT);
		/* roots_hold took a bind's source only from inside the root. */
		if (bind && roots_within(m.source, j->path))
			m.source = inside(j, m.source);
		m.target = inside(j, m.target);
		if (mounts_apply(&m, err) < 0)
			return -1;
	}
	return 0;
}
