/* Containers' roots (MOUNT with PROTO_MOUNT_ROOT), made as runc makes one: a
 * mount namespace of the container's own, where its mounts are made and its
 * processes run, pivoted into the root. A chroot, which this replaces, can
 * be climbed out of by any process that holds CAP_SYS_CHROOT (chroot into a
 * subdirectory, then ".." from the cwd left outside it); after pivot_root
 * and the old root's detach there is nothing above the root to climb to.
 *
 * The agent itself never enters one: it serves every container and keeps
 * the guest's own root (the file service's mount, its /proc and devices).
 * What must happen inside is done by a short-lived child that joins the
 * namespace (setns), does it, and reports on a socket: its result with the
 * message, and an fd when it opens one for the agent (SCM_RIGHTS). The
 * agent waits for it, as for the user namespace's maker (userns.c): a few
 * system calls, while no other request is served, so that no PS or
 * SIGNAL_ALL ever sees the child. Whatever fails there fails in the child.
 *
 * A root's life: MOUNT ROOT makes the namespace (unshare; every mount made a
 * slave, so that nothing mounted in it reaches the guest's namespace, or a
 * test agent's host) and mounts the root in it; the MOUNTs and MKNODs below
 * the root follow, made in it. The first process with that root (spawn.c)
 * has it pivoted: pivot_root into the root, the old root (the guest's,
 * with its /dev, /proc and the file service) detached, and then the root's
 * propagation (linux.rootfsPropagation: pivot_root refuses a shared new
 * root). Processes join with setns, which puts their root and cwd at the
 * container's root. From the pivot on, the root's mounts are fixed: the
 * paths the host names them by lead nowhere in the namespace any more.
 *
 * A root with a PID namespace (PROTO_MOUNT_PIDNS, pidns.c) has an init,
 * PID 1 there. Its proc mounts, and those on them, are held here until
 * the init makes them; the init's namespace is kept (an fd) for the
 * root's later processes to join, until the init is reaped. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define AGENT_MAX_ROOTS 64u
#define ROOT_MAX_HELD_MOUNTS 256u     /* a spec's /proc, its masked and read-only paths */

struct root {
	char *path;                   /* the ROOT MOUNT's target, without a trailing '/' */
	int ns;                       /* its mount namespace */
	int dir;                      /* once pivoted: its "/" (O_PATH), else -1 */
	uint32_t propagation;         /* for "/" once pivoted; 0: leave it */
	bool pivoted;                 /* tried: its mounts are fixed */
	bool pivot_failed;            /* and pivot_err says why */
	struct rv_err pivot_err;
	bool pidns;                   /* PROTO_MOUNT_PIDNS: its init's namespace for all */
	struct proto_msg *held;       /* MOUNTs waiting for the init (they own their arenas) */
	unsigned nheld;
	pid_t init_pid;               /* once started, the agent's pid of its init, else 0 */
	bool ended;                   /* its init was reaped: its namespace and mounts are let
				       * go (a pod's member that has ended), the entry kept to
				       * say so; not counted in nroots */
	int init_ns;                  /* the init's PID namespace until it is reaped, else -1 */
	struct root *next;
};

/* --- a child in a namespace ------------------------------------------------------ */

/* What runs in the child: 0, or -1 with err; *fd, when fn sets it, goes to
 * the agent. */
typedef int (*ns_fn)(const void *arg, int *fd, struct rv_err *err);

struct ns_report {
	int rc;
	struct rv_err err;
};

static __attribute__((noreturn)) void ns_child(int sock, int ns, ns_fn fn, const void *arg)
{
	struct ns_report r = { 0 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fd = -1;

	if (ns >= 0 && setns(ns, CLONE_NEWNS) < 0)
		r.rc = rv_fail(&r.err, errno, "join the container's mount namespace");
	else
		r.rc = fn(arg, &fd, &r.err);
	if (r.rc == 0 && fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	_exit(sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(r) ? 0 : 1);
}

/* The fd that came with msg, or -1. */
static int received_fd(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int))) {
			int fd;
			memcpy(&fd, CMSG_DATA(c), sizeof(fd));
			return fd;
		}
	}
	return -1;
}

/* Runs fn in a child: in mount namespace ns, or in the agent's (ns -1, for
 * fn to leave it by unshare). Returns fn's result with its message; *fd
 * (when fd is not NULL) gets the fd fn handed over, else -1. */
static int ns_call(const struct agent *a, int ns, ns_fn fn, const void *arg, int *fd,
		   struct rv_err *err)
{
	struct ns_report r;
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	int sv[2], status = 0;
	ssize_t n;

	if (fd)
		*fd = -1;
	if (pidns_forkable(a, err) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return rv_fail(err, errno, "a socket to the container's mount namespace");
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		ns_child(sv[1], ns, fn, arg);
	}
	int code = errno;
	close(sv[1]);
	_cleanup_close_ int sock = sv[0];
	if (pid < 0)
		return rv_fail(err, code, "fork a child for the container's mount namespace");
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	code = errno;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	_cleanup_close_ int got = n > 0 ? received_fd(&msg) : -1;
	if (n < 0)
		return rv_fail(err, code, "hear from the child in the container's mount namespace");
	if (n != (ssize_t)sizeof(r))
		return rv_failx(err, EIO, "the child in the container's mount namespace ended "
				"(wait status 0x%x) without saying how it went", (unsigned)status);
	if (r.rc < 0) {
		*err = r.err;
		err->msg[sizeof(err->msg) - 1] = '\0';
		return -1;
	}
	if (fd)
		*fd = rv_steal_fd(&got);
	return 0;
}

/* --- the table --------------------------------------------------------------------- */

/* path's length without its trailing slashes ("/" keeps its one). */
static size_t trimmed_len(const char *path)
{
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	return n;
}

/* path is dir (its first n bytes, no trailing '/', not "/") or lies below it. */
static bool at_or_below(const char *path, const char *dir, size_t n)
{
	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

bool roots_within(const char *path, const char *dir)
{
	size_t n = trimmed_len(dir);

	return n == 1 && dir[0] == '/' ? path[0] == '/' : at_or_below(path, dir, n);
}

/* The root path is, or lies below; NULL when none. Roots never nest. */
static struct root *root_at(const struct agent *a, const char *path)
{
	for (struct root *r = a->roots; r; r = r->next)
		if (at_or_below(path, r->path, strlen(r->path)))
			return r;
	return NULL;
}

static void free_held(struct root *r)
{
	for (unsigned i = 0; i < r->nheld; i++)
		proto_msg_free(&r->held[i]);
	free(r->held);
	r->held = NULL;
	r->nheld = 0;
}

static void root_free(struct root *r)
{
	rv_closep(&r->ns);
	rv_closep(&r->dir);
	rv_closep(&r->init_ns);
	free_held(r);
	free(r->path);
	free(r);
}

/* --- making one ------------------------------------------------------------------ */

/* In the child, still in the agent's namespace: a namespace of its own,
 * runc's rslave of everything in it, the root's mount there. */
static int make_ns(const void *arg, int *fd, struct rv_err *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return rv_fail(err, errno, "unshare a mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return rv_fail(err, errno, "make every mount in it a slave");
	if (mounts_apply(arg, err) < 0)
		return -1;
	*fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	return *fd >= 0 ? 0 : rv_fail(err, errno, "open /proc/self/ns/mnt");
}

int roots_mount(struct agent *a, const struct proto_mount *m, struct rv_err *err)
{
	size_t n = trimmed_len(m->target);
	struct root *r;

	if (n == 1)
		return rv_failx(err, EINVAL, "a container's root on /: the guest's own root cannot "
				"be one");
	if (m->flags & MS_REMOUNT)
		return rv_failx(err, EINVAL, "a container's root on %s: a remount makes none",
				m->target);
	if ((r = root_at(a, m->target)))
		return rv_failx(err, EBUSY, "a container's root on %s: %s is one already", m->target,
				r->path);
	for (r = a->roots; r; r = r->next)
		if (at_or_below(r->path, m->target, n))
			return rv_failx(err, EBUSY, "a container's root on %s: the root %s is below it",
					m->target, r->path);
	if (a->nroots >= AGENT_MAX_ROOTS)
		return rv_failx(err, ENOSPC, "a container's root on %s: at most %u roots", m->target,
				AGENT_MAX_ROOTS);
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strndup(m->target, n))) {
		free(r);
		return rv_fail(err, ENOMEM, "a container's root on %s", m->target);
	}
	r->ns = r->dir = r->init_ns = -1;
	/* The propagation waits for the pivot: pivot_root refuses a shared root. */
	r->propagation = m->propagation;
	r->pidns = m->opts & PROTO_MOUNT_PIDNS;
	struct proto_mount mnt = *m;
	mnt.propagation = 0;
	mnt.opts = 0;
	if (ns_call(a, -1, make_ns, &mnt, &r->ns, err) < 0) {
		root_free(r);
		return rv_wrap(err, "the container root %s", m->target);
	}
	r->next = a->roots;
	a->roots = r;
	a->nroots++;
	return 0;
}

/* --- using one ------------------------------------------------------------------- */

struct run_call {
	roots_fn fn;
	const void *arg;
};

static int run_fn(const void *arg, int *fd, struct rv_err *err)
{
	const struct run_call *call = arg;

	(void)fd;
	return call->fn(call->arg, err);
}

int roots_run(const struct agent *a, const char *path, roots_fn fn, const void *arg,
	      struct rv_err *err)
{
	const struct root *r = root_at(a, path);
	struct run_call call = { fn, arg };

	if (!r)
		return fn(arg, err);
	if (r->pivoted)
		return rv_failx(err, EBUSY, "%s is in the container root %s, whose processes have "
				"started: its mounts come before them", path, r->path);
	return ns_call(a, r->ns, run_fn, &call, NULL, err);
}

/* --- held for the init ------------------------------------------------------------ */

static bool new_proc(const struct proto_mount *m)
{
	return !strcmp(m->fstype, "proc") && !(m->flags & (MS_BIND | MS_REMOUNT));
}

/* A proc mount shows the PID namespace of whoever mounts it: the root's
 * are the init's to make, and so are those on them, which must land on
 * that mount rather than on the directory below it. */
static bool for_init(const struct root *r, const struct proto_mount *m)
{
	if (new_proc(m))
		return true;
	for (unsigned i = 0; i < r->nheld; i++)
		if (new_proc(&r->held[i].mount) && roots_within(m->target, r->held[i].mount.target))
			return true;
	return false;
}

int roots_hold(struct agent *a, struct proto_msg *req, struct rv_err *err)
{
	const struct proto_mount *m = &req->mount;
	struct root *r = root_at(a, m->target);

	/* Once pivoted, roots_run refuses it as for any root. */
	if (!r || !r->pidns || r->pivoted || !for_init(r, m))
		return 0;
	bool bind = (m->flags & MS_BIND) && !(m->flags & MS_REMOUNT) && !(m->opts & PROTO_MOUNT_MASK);
	if (bind && !roots_within(m->source, r->path))
		return rv_failx(err, EINVAL, "bind '%s' on %s: the init of the container root %s "
				"makes the mounts on its /proc, and sees nothing outside the root",
				m->source, m->target, r->path);
	if (r->nheld == ROOT_MAX_HELD_MOUNTS)
		return rv_failx(err, ENOSPC, "mount on %s: the container root %s holds %u mounts "
				"for its init already", m->target, r->path, ROOT_MAX_HELD_MOUNTS);
	struct proto_msg *held = realloc(r->held, (r->nheld + 1) * sizeof(*held));
	if (!held)
		return rv_fail(err, ENOMEM, "hold the mount on %s for the init of %s", m->target,
			       r->path);
	r->held = held;
	r->held[r->nheld++] = *req;
	return 1;
}

/* In the child, in the root's namespace (runc's pivot_root(".", ".")): the
 * old root ends up stacked on the new one, where "." finds it to detach. */
static int pivot(const void *arg, int *fd, struct rv_err *err)
{
	const struct root *r = arg;

	if (chdir(r->path) < 0)
		return rv_fail(err, errno, "chdir %s", r->path);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return rv_fail(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return rv_fail(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return rv_fail(err, errno, "chdir / once pivoted");
	if (r->propagation && mount(NULL, "/", NULL, r->propagation, NULL) < 0)
		return rv_fail(err, errno, "give / its propagation (0x%x)", r->propagation);
	*fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *fd >= 0 ? 0 : rv_fail(err, errno, "open / once pivoted");
}

/* Where a process of r goes: the init into a PID namespace of its own,
 * the others into the init's; before there is one (a hook), or in a root
 * without, the agent's. */
static int place(struct root *r, bool init, struct root_join *j, struct rv_err *err)
{
	if (init && !r->pidns)
		return rv_failx(err, EINVAL, "an init for the container root %s, which has no PID "
				"namespace of its own (its MOUNT had no PIDNS opt)", r->path);
	if (init && r->init_pid)
		return rv_failx(err, EBUSY, "the container root %s has had its init already (pid %d)",
				r->path, (int)r->init_pid);
	if (!init && r->init_pid && r->init_ns < 0)
		return rv_failx(err, ESRCH, "the init of the container root %s (pid %d) has ended: "
				"no process joins its PID namespace any more", r->path,
				(int)r->init_pid);
	j->new_pidns = init;
	j->pidns = init ? -1 : r->init_ns;
	j->mounts = init ? r->held : NULL;
	j->nmounts = init ? r->nheld : 0;
	return 0;
}

int roots_enter(struct agent *a, const struct proto_exec *x, struct root_join *j,
		struct rv_err *err)
{
	size_t n = trimmed_len(x->root);
	struct root *r = a->roots;

	while (r && (strlen(r->path) != n || strncmp(r->path, x->root, n)))
		r = r->next;
	if (!r)
		return rv_failx(err, ENOENT, "root '%s' is no container's root (a MOUNT with the "
				"ROOT opt makes one)", x->root);
	*j = (struct root_join){ .root = r, .path = r->path, .mntns = -1, .dir = -1, .pidns = -1 };
	if (place(r, x->flags & PROTO_EXEC_INIT, j, err) < 0)
		return -1;
	if (!r->pivoted) {
		r->pivoted = true;
		r->pivot_failed = ns_call(a, r->ns, pivot, r, &r->dir, &r->pivot_err) < 0;
	}
	if (r->pivot_failed) {
		*err = r->pivot_err;
		return rv_wrap(err, "pivot into the container root %s", r->path);
	}
	j->mntns = r->ns;
	j->dir = r->dir;
	return 0;
}

/* The held mounts are the init's now (it made them before its exec). */
void roots_init_started(struct root *r, pid_t pid, int pidns)
{
	r->init_pid = pid;
	r->init_ns = pidns;
	free_held(r);
}

/* At most AGENT_MAX_ROOTS ended roots are remembered: the oldest (last in
 * the list, which grows at its head) goes first. */
static void forget_ended(struct agent *a)
{
	unsigned seen = 0;

	for (struct root **p = &a->roots; *p;) {
		struct root *r = *p;
		if (r->ended && ++seen > AGENT_MAX_ROOTS) {
			*p = r->next;
			root_free(r);
			continue;
		}
		p = &r->next;
	}
}

/* Its init was PID 1 of its namespace: with it every process of the root
 * has gone, and nothing may join any more (place says so). Its mount
 * namespace goes now, not with the VM: a pod's VM outlives its containers
 * (their files, served by the host, are released with their mounts). */
void roots_reaped(struct agent *a, pid_t pid)
{
	for (struct root *r = a->roots; r; r = r->next) {
		if (r->init_pid != pid || r->ended)
			continue;
		rv_closep(&r->init_ns);     /* place() tells the end by init_ns < 0 */
		rv_closep(&r->ns);
		rv_closep(&r->dir);
		free_held(r);
		r->ended = true;
		a->nroots--;
	}
	forget_ended(a);
}

void roots_release(struct agent *a)
{
	while (a->roots) {
		struct root *r = a->roots;
		a->roots = r->next;
		root_free(r);
	}
	a->nroots = 0;
}
