#include "runtime/exec_client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/ctl.h"
#include "common/proto.h"
#include "runtime/spec_vm.h"

/* A frame larger than a Unix socket's default send buffer needs a bigger
 * one; root may raise it past the sysctl limit. */
#define FRAME_SNDBUF (PROTO_HDR_BYTES + PROTO_MAX_PAYLOAD_BYTES + 4096)

/* Signals the process gets as runc's exec forwards them: every one we can
 * catch but these (and libc's own). */
#define EXEC_KILL_GRACE_MS 5000

static const int not_forwarded[] = { SIGCHLD, SIGURG, SIGWINCH, SIGPIPE, SIGKILL, SIGSTOP };

struct conv {
	const struct exec_call *c;
	int fd, sigfd;
	bool started;
	uint32_t exec_id;
	uint64_t pending;           /* signals that came before the process ran */
	uint64_t deadline_ms;       /* CLOCK_MONOTONIC; 0: none */
	bool timed_out;             /* killed at the deadline */
};

static int send_request(const struct exec_call *c, int fd, struct rv_err *err)
{
	int fds[3];
	unsigned n = 0;

	for (int i = 0; i < 3; i++)
		if (c->stdio[i] >= 0)
			fds[n++] = c->stdio[i];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(fds))];
	} cbuf;
	struct iovec iov = { .iov_base = "exec", .iov_len = 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "exec: send to the sandbox's VMM");
	for (int i = 0; c->hand_over_stdio && i < 3; i++)
		if (c->stdio[i] > 2 && (i == 0 || c->stdio[i] != c->stdio[i - 1]))
			close(c->stdio[i]);
	return 0;
}

static int send_process(const struct exec_call *c, const struct oci_process *p, int fd,
			struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_EXEC };
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	struct winsize ws = { 0 };
	int sndbuf = FRAME_SNDBUF;

	if (p->terminal) {
		if (c->winsize_fd >= 0)
			ioctl(c->winsize_fd, TIOCGWINSZ, &ws);
		if (p->console_height && p->console_width) {
			ws.ws_row = (unsigned short)p->console_height;
			ws.ws_col = (unsigned short)p->console_width;
		}
	}
	struct agent_attrs a;
	spec_vm_attrs(p, &a);
	m.exec = (struct proto_exec){
		.streams = (c->stdio[0] >= 0 ? PROTO_WANT_STDIN : 0) |
			   (c->stdio[1] >= 0 ? PROTO_WANT_STDOUT : 0) |
			   (c->stdio[2] >= 0 ? PROTO_WANT_STDERR : 0),
		.uid = p->uid, .gid = p->gid, .root = "", .cwd = p->cwd,
		.argc = (uint32_t)p->nargs, .argv = (const char **)p->args,
		.envc = (uint32_t)p->nenv, .envp = (const char **)p->env,
		.ngroups = (uint32_t)p->nadditional_gids, .groups = p->additional_gids,
		.flags = (p->terminal ? PROTO_EXEC_TTY : 0) |
			 (a.no_new_privs ? PROTO_EXEC_NO_NEW_PRIVS : 0) |
			 (a.has_oom_score_adj ? PROTO_EXEC_OOM_SCORE : 0),
		.rows = ws.ws_row, .cols = ws.ws_col,
		.umask = a.has_umask ? a.umask : 022, .oom_score_adj = a.oom_score_adj,
		.ncaps = a.has_caps ? PROTO_CAP_SETS : 0, .caps = a.caps,
		.nrlimit_vals = 3 * a.nrlimits, .rlimit_vals = a.rlimits, .hostname = "",
		.path = c->path ? c->path : "",
	};
	if (c->seccomp && c->seccomp->n) {
		m.exec.nseccomp = (uint32_t)c->seccomp->n;
		m.exec.seccomp = c->seccomp->insns;
		m.exec.seccomp_flags = c->seccomp->flags;
	}
	if (proto_encode(&m, &buf, &len, &cap, err) < 0)
		return rv_wrap(err, "exec: the process (args and env)");
	if (len > 200 * 1024 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (send(fd, buf, len, MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "exec: send the process (%zu bytes) to the sandbox's VMM",
			       len);
	return 0;
}

static void call_vmm(const struct conv *v, const char *req)
{
	char reply[256];
	struct rv_err ignored;

	ctl_call(v->c->ctl_path, req, reply, sizeof(reply), &ignored);
}

static void on_signal(struct conv *v, int sig)
{
	char req[64];
	struct winsize ws;

	if (!v->started) {
		if (sig != SIGWINCH)     /* a size is read when it starts anyway */
			v->pending |= 1ull << (sig - 1);
		return;
	}
	if (sig == SIGWINCH) {
		if (ioctl(v->c->winsize_fd, TIOCGWINSZ, &ws) < 0)
			return;
		snprintf(req, sizeof(req), "exec-resize %u %u %u", v->exec_id, ws.ws_row, ws.ws_col);
	} else {
		snprintf(req, sizeof(req), "exec-kill %u %d", v->exec_id, sig);
	}
	call_vmm(v, req);
}

/* One packet from the VMM: 1 when it was the final reply. */
static int on_packet(struct conv *v, const char *msg, int *status, struct rv_err *err)
{
	unsigned a, b;
	int n;
	char kind[8];

	if (sscanf(msg, "started %u %u%n", &a, &b, &n) == 2 && !msg[n] && !v->started) {
		v->started = true;
		v->exec_id = a;
		if (v->c->started && v->c->started(v->c->arg, a, b, err) < 0) {
			on_signal(v, SIGKILL);
			return -1;
		}
		if (v->c->winsize_fd >= 0)
			on_signal(v, SIGWINCH);   /* a resize while it started */
		for (int sig = 1; sig <= 64; sig++)
			if (v->pending & (1ull << (sig - 1)))
				on_signal(v, sig);
		v->pending = 0;
		return 0;
	}
	if (!strncmp(msg, "error ", 6))
		return ctl_vmm_error(msg, err);
	if (sscanf(msg, "ok %7s %u%n", kind, &a, &n) == 2 && !msg[n] && a < 256) {
		if (!strcmp(kind, "exit")) {
			*status = (int)a;
			return 1;
		}
		if (!strcmp(kind, "signal") && a >= 1 && a <= 64) {
			*status = 128 + (int)a;
			return 1;
		}
	}
	return rv_failx(err, EPROTO, "exec: the sandbox's VMM said '%.60s'", msg);
}

static int converse(struct conv *v, int *status, struct rv_err *err)
{
	char msg[1024];

	for (;;) {
		struct pollfd pf[2] = { { v->fd, POLLIN, 0 }, { v->sigfd, POLLIN, 0 } };
		int wait_ms = -1;
		if (v->deadline_ms) {
			uint64_t now = rv_now_ms(CLOCK_MONOTONIC);
			/* Its status comes once its output ends: a child it left
			 * holding stdout keeps it from coming; give up then. */
			if (now >= v->deadline_ms && v->timed_out)
				return rv_failx(err, ETIMEDOUT, "did not finish within its timeout of %u "
						"s, and its output did not end within %u s of SIGKILL",
						v->c->timeout_s, EXEC_KILL_GRACE_MS / 1000);
			if (now >= v->deadline_ms) {
				v->timed_out = true;
				on_signal(v, SIGKILL);
				v->deadline_ms = now + EXEC_KILL_GRACE_MS;
				continue;
			}
			wait_ms = (int)(v->deadline_ms - now);
		}
		if (poll(pf, 2, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			return rv_fail(err, errno, "exec: poll");
		}
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(v->sigfd, &si, sizeof(si)) == sizeof(si))
				on_signal(v, (int)si.ssi_signo);
		}
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = recv(v->fd, msg, sizeof(msg) - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return rv_failx(err, ECONNRESET, "exec: the sandbox's VMM went away (the "
					"container stopped?)");
		msg[n] = '\0';
		int rc = on_packet(v, msg, status, err);
		if (rc)
			return rc > 0 ? 0 : -1;
	}
}

int exec_call_run(const struct exec_call *c, const struct oci_process *p, int *status,
		  struct rv_err *err)
{
	sigset_t set, old;
	struct conv v = { .c = c, .fd = -1, .sigfd = -1 };
	int rc = -1;

	if (c->timeout_s)
		v.deadline_ms = rv_now_ms(CLOCK_MONOTONIC) + 1000ull * c->timeout_s;
	sigfillset(&set);
	for (size_t i = 0; i < sizeof(not_forwarded) / sizeof(not_forwarded[0]); i++)
		sigdelset(&set, not_forwarded[i]);
	for (int sig = 32; sig < SIGRTMIN; sig++)   /* glibc's own real-time signals */
		sigdelset(&set, sig);
	if (c->winsize_fd >= 0)
		sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, &old);
	v.sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (v.sigfd < 0)
		rv_fail(err, errno, "signalfd");
	else if ((v.fd = ctl_dial(c->ctl_path, err)) >= 0 && send_request(c, v.fd, err) == 0 &&
		 send_process(c, p, v.fd, err) == 0)
		rc = converse(&v, status, err);
	if (rc == 0 && v.timed_out)
		rc = rv_failx(err, ETIMEDOUT, "did not finish within its timeout of %u s (killed)",
			      c->timeout_s);
	if (v.fd >= 0)
		close(v.fd);
	if (v.sigfd >= 0)
		close(v.sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
