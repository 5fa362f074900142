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
 * paths the host names them by lead nowhere in the namespace any more. */
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

struct root {
	char *path;                   /* the ROOT MOUNT's target, without a trailing '/' */
	int ns;                       /* its mount namespace */
	int dir;                      /* once pivoted: its "/" (O_PATH), else -1 */
	uint32_t propagation;         /* for "/" once pivoted; 0: leave it */
	bool pivoted;                 /* tried: its mounts are fixed */
	bool pivot_failed;            /* and pivot_err says why */
	struct rv_err pivot_err;
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
static int ns_call(int ns, ns_fn fn, const void *arg, int *fd, struct rv_err *err)
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

/* The root path is, or lies below; NULL when none. Roots never nest. */
static struct root *root_at(const struct agent *a, const char *path)
{
	for (struct root *r = a->roots; r; r = r->next)
		if (at_or_below(path, r->path, strlen(r->path)))
			return r;
	return NULL;
}

static void root_free(struct root *r)
{
	rv_closep(&r->ns);
	rv_closep(&r->dir);
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
	r->ns = r->dir = -1;
	/* The propagation waits for the pivot: pivot_root refuses a shared root. */
	r->propagation = m->propagation;
	struct proto_mount mnt = *m;
	mnt.propagation = 0;
	mnt.opts = 0;
	if (ns_call(-1, make_ns, &mnt, &r->ns, err) < 0) {
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
	return ns_call(r->ns, run_fn, &call, NULL, err);
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

int roots_enter(struct agent *a, const char *path, int *ns, int *dir, struct rv_err *err)
{
	size_t n = trimmed_len(path);
	struct root *r = a->roots;

	while (r && (strlen(r->path) != n || strncmp(r->path, path, n)))
		r = r->next;
	if (!r)
		return rv_failx(err, ENOENT, "root '%s' is no container's root (a MOUNT with the "
				"ROOT opt makes one)", path);
	if (!r->pivoted) {
		r->pivoted = true;
		r->pivot_failed = ns_call(r->ns, pivot, r, &r->dir, &r->pivot_err) < 0;
	}
	if (r->pivot_failed) {
		*err = r->pivot_err;
		return rv_wrap(err, "pivot into the container root %s", r->path);
	}
	*ns = r->ns;
	*dir = r->dir;
	return 0;
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
