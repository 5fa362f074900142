/* Starting a process: pipes for its wanted streams (/dev/null for the rest),
 * or a terminal (tty.c), fork (into its root's PID namespace when it has
 * one: pidns.c), and in the child: a fresh session, default signals, stdio
 * (and the terminal as the controlling one), its root's mount namespace
 * (roots.c: its root and cwd become the container's root), for an init the
 * mounts held for it, groups, gid, uid, cwd, exec. Whatever fails in the
 * child is written to a CLOEXEC pipe as (step, errno, message); the parent
 * reads EOF there when the exec succeeded, so START is answered with
 * STARTED or an ERROR, never both. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

/* After the PRIVS_* steps of privs.c. */
enum spawn_step {
	STEP_STDIO = 32, STEP_CTTY, STEP_ROOT, STEP_INIT_MOUNTS, STEP_USERNS, STEP_GROUPS, STEP_GID,
	STEP_UID, STEP_CHDIR, STEP_EXEC
};

struct spawn_failure {
	int step;                     /* enum spawn_step */
	int err;                      /* errno */
	struct rv_err detail;         /* STEP_INIT_MOUNTS: what failed */
};
_Static_assert(sizeof(struct spawn_failure) <= PIPE_BUF, "a failure is written in one piece");

/* What the child needs, prepared before fork. */
struct child_plan {
	int fds[3];                   /* become 0, 1, 2 */
	int report_fd;                /* write end of the exec-status pipe */
	bool tty;                     /* fds are a terminal's slave */
	bool has_root;                /* root says where it goes (else the agent's namespaces) */
	struct root_join root;        /* its root's namespaces (the agent's fds) */
	int userns_fd;                /* the user namespace to join (the agent's fd), or -1 */
	const struct proto_exec *x;
	char **argv, **envp;
	gid_t *groups;
	struct rlimit nofile;
	pid_t agent_pid;
	int last_cap;                 /* the guest kernel's highest capability */
	bool die_with_agent;          /* --unix mode: no orphans outlive the test agent */
};

static __attribute__((noreturn)) void child_report(const struct child_plan *c,
						    const struct spawn_failure *f)
{
	if (write(c->report_fd, f, sizeof(*f)) < 0) {
		/* the parent then reads EOF and reports the exit status instead */
	}
	_exit(127);
}

static __attribute__((noreturn)) void child_fail(const struct child_plan *c, int step)
{
	struct spawn_failure f = { .step = step, .err = errno };

	child_report(c, &f);
}

/* The init, PID 1 of its namespace and pivoted, makes the mounts held for
 * it (its /proc and those on it), as root still. */
static void child_init_mounts(const struct child_plan *c)
{
	struct spawn_failure f = { .step = STEP_INIT_MOUNTS };

	if (!c->root.new_pidns || pidns_replay(&c->root, &f.detail) == 0)
		return;
	f.err = f.detail.code;
	child_report(c, &f);
}

static void child_reset_signals(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);   /* fails harmlessly for KILL, STOP and libc's own */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child_set_ids(const struct child_plan *c)
{
	const struct proto_exec *x = c->x;
	/* In its user namespace the process has every capability until it
	 * sets its ids, whatever id the agent's root maps to there. */
	bool root = geteuid() == 0 || c->userns_fd >= 0;
	int step;

	/* Without privileges (a test agent), only a change of identity is tried. */
	if ((step = privs_before_ids(x, c->last_cap)))
		child_fail(c, step);
	if ((root || x->ngroups) && setgroups(x->ngroups, c->groups) < 0)
		child_fail(c, STEP_GROUPS);
	if ((root || x->gid != getgid()) && setgid(x->gid) < 0)
		child_fail(c, STEP_GID);
	if ((root || x->uid != getuid()) && setuid(x->uid) < 0)
		child_fail(c, STEP_UID);
	if ((step = privs_after_ids(x, c->last_cap)))
		child_fail(c, step);
}

static __attribute__((noreturn)) void child_run(const struct child_plan *c)
{
	extern char **environ;

	child_reset_signals();
	setsid();
	for (int i = 0; i < 3; i++)
		if (dup2(c->fds[i], i) < 0)
			child_fail(c, STEP_STDIO);
	/* A session leader without one takes it: job control, and ^C is SIGINT. */
	if (c->tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
		child_fail(c, STEP_CTTY);
	setrlimit(RLIMIT_NOFILE, &c->nofile);
	int step = privs_limits(c->x);   /* over the agent's own NOFILE */
	if (step)
		child_fail(c, step);
	/* Before dropping privileges (setns needs CAP_SYS_ADMIN and
	 * CAP_SYS_CHROOT): the root and cwd become the namespace's root, the
	 * container's, pivoted there; the cwd asked for is inside it. */
	if (c->has_root && setns(c->root.mntns, CLONE_NEWNS) < 0)
		child_fail(c, STEP_ROOT);
	child_init_mounts(c);   /* root in the guest's user namespace still */
	/* After it: joining a mount namespace takes CAP_SYS_ADMIN over the
	 * guest's user namespace, which owns it, and which the process no
	 * longer has once in its own. */
	if (c->userns_fd >= 0 && setns(c->userns_fd, CLONE_NEWUSER) < 0)
		child_fail(c, STEP_USERNS);
	child_set_ids(c);
	if (c->die_with_agent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* after setuid, which clears it */
		/* In a container's PID namespace the agent, outside it, is
		 * parent 0: the race this closes cannot be seen from there. */
		bool own_pidns = c->root.new_pidns || c->root.pidns >= 0;
		if (!own_pidns && getppid() != c->agent_pid)
			_exit(137);
	}
	if (c->x->cwd && c->x->cwd[0] && chdir(c->x->cwd) < 0)
		child_fail(c, STEP_CHDIR);
	environ = c->envp;   /* execvp searches the PATH of this environment */
	execvp(c->x->path[0] ? c->x->path : c->argv[0], c->argv);
	child_fail(c, STEP_EXEC);
}

static void describe_failure(const struct proto_exec *x, const struct spawn_failure *f,
			     struct rv_err *err)
{
	switch (f->step) {
	case STEP_STDIO:
		rv_fail(err, f->err, "set up stdio of '%s'", x->argv[0]);
		break;
	case STEP_CTTY:
		rv_fail(err, f->err, "make the terminal the controlling one of '%s'", x->argv[0]);
		break;
	case STEP_ROOT:
		rv_fail(err, f->err, "join the mount namespace of the container root '%s'", x->root);
		break;
	case STEP_INIT_MOUNTS:
		*err = f->detail;
		err->msg[sizeof(err->msg) - 1] = '\0';
		rv_wrap(err, "the init '%s', as PID 1 of its namespace, mounting before its exec",
			x->argv[0]);
		break;
	case STEP_USERNS:
		rv_fail(err, f->err, "join the container's user namespace for '%s'", x->argv[0]);
		break;
	case STEP_GROUPS:
		rv_fail(err, f->err, "setgroups (%u groups)", x->ngroups);
		break;
	case STEP_GID:
		rv_fail(err, f->err, "setgid %u", x->gid);
		break;
	case STEP_UID:
		rv_fail(err, f->err, "setuid %u", x->uid);
		break;
	case STEP_CHDIR:
		if (x->root[0])
			rv_fail(err, f->err, "chdir '%s' below root '%s'", x->cwd, x->root);
		else
			rv_fail(err, f->err, "chdir '%s'", x->cwd);
		break;
	case STEP_EXEC:
		rv_fail(err, f->err, "exec '%s'", x->path[0] ? x->path : x->argv[0]);
		break;
	default:
		rv_fail(err, f->err, "%s for '%s'", privs_step_name(f->step), x->argv[0]);
		break;
	}
}

/* NULL-terminated copies of the spec's arrays; the default environment
 * when the host sent none. */
static int plan_arrays(struct child_plan *c, const struct proto_exec *x, struct rv_err *err)
{
	static const char *const default_env[] = { "PATH=" PROTO_DEFAULT_PATH, "HOME=/root" };
	uint32_t envc = x->envc ? x->envc : 2;
	const char *const *env = x->envc ? x->envp : default_env;

	c->argv = calloc(x->argc + 1, sizeof(char *));
	c->envp = calloc(envc + 1, sizeof(char *));
	c->groups = calloc(x->ngroups + 1, sizeof(gid_t));
	if (!c->argv || !c->envp || !c->groups)
		return rv_fail(err, ENOMEM, "start '%s'", x->argv[0]);
	memcpy(c->argv, x->argv, x->argc * sizeof(char *));
	memcpy(c->envp, env, envc * sizeof(char *));
	for (uint32_t i = 0; i < x->ngroups; i++)
		c->groups[i] = x->groups[i];
	return 0;
}

/* A pipe for stream i: the child's end in fds[i], ours (nonblocking) in the
 * stream. Both are CLOEXEC; dup2 in the child clears it on 0, 1, 2. */
static int plan_pipe(struct stream *s, int *child_fd, struct rv_err *err)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe for stream %d", (int)s->which);
	bool to_child = s->which == PROTO_STDIN;
	*child_fd = to_child ? p[0] : p[1];
	s->pipe.fd = to_child ? p[1] : p[0];
	if (fcntl(s->pipe.fd, F_SETFL, O_NONBLOCK) < 0)
		return rv_fail(err, errno, "nonblocking pipe");
	return 0;
}

static void plan_free(struct child_plan *c)
{
	for (int i = 0; i < 3; i++)
		rv_closep(&c->fds[i]);
	free(c->argv);
	free(c->envp);
	free(c->groups);
}

static int plan_make(struct agent *a, struct proc *p, int devnull, struct child_plan *c,
		     struct rv_err *err)
{
	c->x = &p->spec.exec;
	c->nofile = a->nofile;
	c->agent_pid = getpid();
	c->last_cap = privs_last_cap();
	c->die_with_agent = !a->pid1;
	c->tty = p->tty;
	c->has_root = c->x->root[0];
	if (c->has_root && roots_enter(a, c->x, &c->root, err) < 0)
		return -1;
	if (userns_get(a, c->x, &c->userns_fd, err) < 0)
		return -1;
	if (p->tty && tty_open(p, c->root.dir, c->fds, err) < 0)
		return -1;
	for (int i = 0; i < 3 && !p->tty; i++) {
		bool wanted = c->x->streams & (1u << i);
		if (!wanted && (c->fds[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 3)) < 0)
			return rv_fail(err, errno, "dup /dev/null");
		if (wanted && plan_pipe(&p->st[i], &c->fds[i], err) < 0)
			return -1;
	}
	return plan_arrays(c, c->x, err);
}

/* Waits for the child's exec; returns 0 when it ran, -1 with what failed. */
static int await_exec(const struct proto_exec *x, int report_fd, pid_t pid, struct rv_err *err)
{
	struct spawn_failure f;
	ssize_t n;

	do
		n = read(report_fd, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	waitpid(pid, NULL, 0);   /* the child _exits right after reporting */
	if (n != (ssize_t)sizeof(f))
		return rv_fail(err, n < 0 ? errno : EIO, "read the exec status of '%s'", x->argv[0]);
	describe_failure(x, &f, err);
	return -1;
}

/* The init's namespace, for the root's later processes: opened before the
 * init can be reaped (only the agent reaps it, and not before this). */
static int init_started(const struct child_plan *c, pid_t pid, int *ns, struct rv_err *err)
{
	*ns = -1;
	if (!c->root.new_pidns)
		return 0;
	*ns = pidns_open(pid, err);
	if (*ns >= 0)
		return 0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rv_wrap(err, "the init '%s' of the container root %s", c->x->argv[0], c->root.path);
}

/* Forks the child (which never returns) and waits for its exec. */
static int run_child(struct agent *a, struct proc *p, struct child_plan *c, int report_rd,
		     struct rv_err *err)
{
	int ns;
	pid_t pid = pidns_fork(a, c->has_root ? &c->root : NULL, err);

	if (pid == 0)
		child_run(c);
	if (pid < 0)
		return rv_wrap(err, "start '%s'", c->x->argv[0]);
	close(c->report_fd);
	c->report_fd = -1;
	if (init_started(c, pid, &ns, err) < 0)
		return -1;
	p->pid = pid;
	if (await_exec(c->x, report_rd, pid, err) < 0) {
		rv_closep(&ns);
		return -1;
	}
	if (ns >= 0)
		roots_init_started(c->root.root, pid, ns);
	return 0;
}

int spawn_proc(struct agent *a, struct proc *p, struct rv_err *err)
{
	struct child_plan c = { .fds = { -1, -1, -1 }, .userns_fd = -1,
				.root = { .mntns = -1, .dir = -1, .pidns = -1 } };
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int report_rd = -1;
	int report[2];
	int r = -1;

	if (devnull < 0)
		return rv_fail(err, errno, "open /dev/null");
	if (pipe2(report, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	report_rd = report[0];
	c.report_fd = report[1];
	if (plan_make(a, p, devnull, &c, err) == 0)
		r = run_child(a, p, &c, report_rd, err);
	rv_closep(&c.report_fd);
	plan_free(&c);
	return r;
}
