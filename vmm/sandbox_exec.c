/* runvm exec in the VMM: one more process in the running container, its
 * stdio the caller's own fds, relayed on the control connection's thread
 * until it ends. The caller (runtime/cmd_exec.c) is trusted no more than
 * the guest is: its frame goes through the protocol's strict decoder. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/proto.h"
#include "vmm/sandbox_ctl.h"
#include "vmm/vm_priv.h"

/* How long the init's end waits for execs to die of SIGKILL before the
 * VM's connections are cut under them. */
#define DRAIN_GRACE_MS 5000u
#define DRAIN_POLL_MS 100u
/* Each exec holds a control connection while it runs: the rest are kept
 * for the short verbs (state, kill, delete), which must always get in. */
#define SANDBOX_MAX_EXECS (CONTROL_MAX_CONNS - 8)

struct exec_run {
	struct control_call *call;
	struct rv_err *send_err;
	const struct agent_client *agent;
	uint32_t exec_id;
	bool started;
	int stop_fd;                 /* eventfd: the process has ended */
	pthread_t watcher;
	bool watching;
};

/* The caller hung up while its process runs (a detached exec's relay was
 * SIGKILLed, as a shim ends an exec): the process goes too, rather than
 * live on with nothing on the host standing for it. */
static void *watch_caller(void *arg)
{
	struct exec_run *run = arg;
	struct pollfd pf[2] = { { run->call->fd, POLLRDHUP, 0 }, { run->stop_fd, POLLIN, 0 } };
	struct rv_err err;

	while (poll(pf, 2, -1) < 0 && errno == EINTR)
		;
	if (!(pf[1].revents & POLLIN) && (pf[0].revents & (POLLRDHUP | POLLHUP | POLLERR)))
		agent_signal(run->agent, run->exec_id, SIGKILL, &err);
	return NULL;
}

/* Takes a place among the exec threads while the container can run one. */
static int enter(struct sandbox *sb, struct agent_client *agent, struct rv_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&sb->lock);
	/* An exec racing the init's START would land outside its PID namespace. */
	sandbox_wait_spawned(sb);
	if (sb->status == SB_STOPPED || !sb->agent || sb->agent_closing || sandbox_going_down(sb))
		rc = rv_failx(err, ESRCH, "cannot exec in a stopped container");
	else if (sb->status == SB_CREATING)
		rc = rv_failx(err, EBUSY, "the container is still being created");
	else if (sb->paused)
		rc = rv_failx(err, EBUSY, "cannot exec in a paused container: resume it first");
	else if (sb->nexecs == SANDBOX_MAX_EXECS)
		rc = rv_failx(err, EAGAIN, "%u execs run already; wait for one to end",
			      SANDBOX_MAX_EXECS);
	else {
		*agent = *sb->agent;
		sb->execs[sb->nexecs++] = pthread_self();
	}
	pthread_mutex_unlock(&sb->lock);
	return rc;
}

static void leave(struct sandbox *sb)
{
	pthread_mutex_lock(&sb->lock);
	for (unsigned i = 0; i < sb->nexecs; i++)
		if (pthread_equal(sb->execs[i], pthread_self())) {
			sb->execs[i] = sb->execs[--sb->nexecs];
			break;
		}
	pthread_cond_broadcast(&sb->cond);
	pthread_mutex_unlock(&sb->lock);
}

static void on_started(void *arg, uint32_t exec_id, uint32_t guest_pid)
{
	struct exec_run *run = arg;
	char msg[48];

	snprintf(msg, sizeof(msg), "started %u %u", exec_id, guest_pid);
	control_send(run->call, msg, run->send_err);
	run->exec_id = exec_id;
	run->started = true;
	run->watching = run->stop_fd >= 0 &&
			pthread_create(&run->watcher, NULL, watch_caller, run) == 0;
}

/* The container's init has ended or its VM is stopping. */
static bool container_going(struct sandbox *sb)
{
	pthread_mutex_lock(&sb->lock);
	bool going = sb->agent_closing || sb->status == SB_STOPPED || !sandbox_live(sb) ||
		     sandbox_going_down(sb);
	pthread_mutex_unlock(&sb->lock);
	return going;
}

/* The frame after "exec": a PROTO_EXEC that fits the fds that came. */
static int read_process(struct control_call *call, struct proto_msg *m, struct rv_err *err)
{
	size_t cap = PROTO_HDR_BYTES + PROTO_MAX_PAYLOAD_BYTES;
	_cleanup_free_ uint8_t *buf = malloc(cap);

	if (!buf)
		return rv_fail(err, ENOMEM, "exec");
	long n = control_recv(call, buf, cap, err);
	if (n < 0)
		return rv_wrap(err, "exec: the process");
	if (proto_frame_check(buf, (size_t)n, err) != n)
		return rv_failx(err, EINVAL, "exec: the process is not one whole frame%s%s",
				err->msg[0] ? ": " : "", err->msg);
	if (proto_decode(buf, (size_t)n, m, err) < 0)
		return rv_wrap(err, "exec: the process");
	if (m->type != PROTO_EXEC) {
		proto_msg_free(m);
		return rv_failx(err, EINVAL, "exec: the process is a %s frame, not EXEC",
				proto_type_name(m->type));
	}
	return 0;
}

/* The fds came in stdin, stdout, stderr order, one per wanted stream. */
static int take_stdio(struct control_call *call, const struct proto_exec *e,
		      struct agent_exec *x, struct rv_err *err)
{
	int *slot[3] = { &x->stdin_fd, &x->stdout_fd, &x->stderr_fd };
	unsigned k = 0;

	for (unsigned s = 0; s < 3; s++) {
		*slot[s] = -1;
		if (!(e->streams & (1u << s)))
			continue;
		if (k == call->nfds)
			return rv_failx(err, EINVAL, "exec: stream %u wanted but no fd came for it", s);
		*slot[s] = call->fds[k++];
	}
	if (k != call->nfds)
		return rv_failx(err, EINVAL, "exec: %u fds came for %u streams", call->nfds, k);
	if ((e->flags & PROTO_EXEC_TTY) && x->stdout_fd < 0)
		return rv_failx(err, EINVAL, "exec: a terminal needs its stdout");
	return 0;
}

/* NULL-terminated copies of the decoded vectors (which are not). */
static const char **vec(const char **v, uint32_t n)
{
	const char **out = calloc(n + 1, sizeof(*out));

	if (out && n)
		memcpy(out, v, n * sizeof(*out));
	return out;
}

/* The decoded process as agent_run takes it; what only create may set (the
 * container's hostname, domainname and sysctls) is refused. */
static int to_agent_exec(const struct sandbox *sb, const struct proto_exec *e, const char **argv,
			 const char **envp, struct agent_exec *x, struct rv_err *err)
{
	if (!argv || !envp)
		return rv_fail(err, ENOMEM, "exec");
	if (e->hostname[0] || e->domainname[0] || e->nsysctls || e->nuid_map || e->ngid_map)
		return rv_failx(err, EINVAL, "exec: the hostname, domainname, sysctls and user "
				"namespace are the container's, set by create");
	if (e->flags & PROTO_EXEC_INIT)
		return rv_failx(err, EINVAL, "exec: only the container's own process is its init");
	if (e->cwd[0] && e->cwd[0] != '/')
		return rv_failx(err, EINVAL, "exec: cwd '%s' must be absolute", e->cwd);
	*x = (struct agent_exec){ .argv = argv, .path = e->path, .envp = envp,
				  .root = sb->guest_root, .cwd = e->cwd[0] ? e->cwd : "/",
				  .uid = e->uid, .gid = e->gid,
				  .groups = e->groups, .ngroups = e->ngroups,
				  .tty = e->flags & PROTO_EXEC_TTY, .rows = e->rows, .cols = e->cols };
	struct agent_attrs *a = &x->attrs;
	*a = (struct agent_attrs){ .has_umask = true, .umask = e->umask,
				   .no_new_privs = e->flags & PROTO_EXEC_NO_NEW_PRIVS,
				   .has_oom_score_adj = e->flags & PROTO_EXEC_OOM_SCORE,
				   .oom_score_adj = e->oom_score_adj, .has_caps = e->ncaps != 0,
				   .nrlimits = e->nrlimit_vals / 3, .seccomp = e->seccomp,
				   .nseccomp = e->nseccomp, .seccomp_flags = e->seccomp_flags };
	if (e->ncaps)
		memcpy(a->caps, e->caps, sizeof(a->caps));
	if (e->nrlimit_vals)
		memcpy(a->rlimits, e->rlimit_vals, e->nrlimit_vals * sizeof(uint64_t));
	return 0;
}

static int run(struct sandbox *sb, struct control_call *call, const struct agent_client *agent,
	       const struct proto_exec *e, char *reply, size_t size, struct rv_err *err)
{
	struct agent_status st;
	struct agent_exec x;
	struct rv_err send_err = { 0 };
	_cleanup_free_ const char **argv = vec(e->argv, e->argc);
	_cleanup_free_ const char **envp = vec(e->envp, e->envc);

	if (to_agent_exec(sb, e, argv, envp, &x, err) < 0 || take_stdio(call, e, &x, err) < 0)
		return -1;
	/* In the container's user namespace, as runc's exec joins it. */
	x.attrs.uid_map = sb->cfg->attrs.uid_map;
	x.attrs.nuid_map = sb->cfg->attrs.nuid_map;
	x.attrs.gid_map = sb->cfg->attrs.gid_map;
	x.attrs.ngid_map = sb->cfg->attrs.ngid_map;
	struct exec_run er = { .call = call, .send_err = &send_err, .agent = agent,
			       .stop_fd = eventfd(0, EFD_CLOEXEC) };
	x.started = on_started;
	x.started_arg = &er;
	int rc = agent_run(agent, &x, &st, err);
	if (er.watching) {
		eventfd_write(er.stop_fd, 1);
		pthread_join(er.watcher, NULL);
	}
	if (er.stop_fd >= 0)
		close(er.stop_fd);
	if (rc < 0 && er.started && container_going(sb)) {
		/* The VM went down under a running process: in a pid namespace
		 * whose init died, the kernel SIGKILLs it; say the same. */
		st = (struct agent_status){ .signaled = true, .signo = SIGKILL };
		rc = 0;
	}
	if (rc < 0)
		return -1;
	snprintf(reply, size, "%s %d", st.signaled ? "signal" : "exit",
		 st.signaled ? st.signo : st.code & 0xff);
	return 0;
}

int sandbox_exec(struct sandbox *sb, struct control_call *call, char *reply, size_t size,
		 struct rv_err *err)
{
	struct agent_client agent;
	struct proto_msg m = { 0 };
	sigset_t kick;

	/* The whole request first: a caller that never sends its process holds
	 * only its own connection, never the drain at the init's end. */
	if (read_process(call, &m, err) < 0)
		return -1;
	int rc = enter(sb, &agent, err);
	if (rc == 0) {
		/* The drain interrupts a write to a caller that stopped reading. */
		sigemptyset(&kick);
		sigaddset(&kick, VCPU_KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
		rc = run(sb, call, &agent, &m.exec, reply, size, err);
		pthread_sigmask(SIG_BLOCK, &kick, NULL);
		leave(sb);
	}
	if (rc < 0)
		rv_logf(sb->cfg->vm.log, RV_LOG_DEBUG, "exec: %s", err->msg);
	proto_msg_free(&m);
	return rc;
}

static int parse_u32s(const char *arg, unsigned n, uint32_t *out, uint32_t max,
		      struct rv_err *err)
{
	const char *p = arg;

	for (unsigned i = 0; i < n; i++) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v > max || (*end != (i + 1 < n ? ' ' : '\0')))
			return rv_failx(err, EINVAL, "malformed arguments '%s'", arg);
		out[i] = (uint32_t)v;
		p = end + 1;
	}
	return 0;
}

int sandbox_exec_signal(struct sandbox *sb, const char *arg, struct rv_err *err)
{
	uint32_t v[2] = { 0 };

	if (parse_u32s(arg, 2, v, UINT32_MAX, err) < 0)
		return -1;
	if (v[1] < 1 || v[1] > 64)
		return rv_failx(err, EINVAL, "signal %u: give a number from 1 to 64", v[1]);
	if (!sb->agent || sb->status == SB_STOPPED)
		return rv_failx(err, ESRCH, "container not running");
	if (sb->paused)
		return rv_failx(err, EBUSY, "the container is paused: resume it first");
	return agent_signal(sb->agent, v[0], (int)v[1], err);
}

int sandbox_exec_resize(struct sandbox *sb, const char *arg, struct rv_err *err)
{
	uint32_t v[3] = { 0 };

	if (parse_u32s(arg, 3, v, UINT32_MAX, err) < 0)
		return -1;
	if (v[1] > UINT16_MAX || v[2] > UINT16_MAX)
		return rv_failx(err, EINVAL, "a window of %u x %u", v[1], v[2]);
	if (!sb->agent || sb->status == SB_STOPPED || sb->paused)
		return rv_failx(err, ESRCH, "container not running");
	return agent_resize(sb->agent, v[0], (uint16_t)v[1], (uint16_t)v[2], err);
}

static bool drained_within(struct sandbox *sb, unsigned ms)
{
	uint64_t until = rv_now_ms(CLOCK_MONOTONIC) + ms;

	pthread_mutex_lock(&sb->lock);
	while (sb->nexecs && rv_now_ms(CLOCK_MONOTONIC) < until) {
		struct timespec step = rv_deadline_in(CLOCK_MONOTONIC, DRAIN_POLL_MS);
		pthread_cond_timedwait(&sb->cond, &sb->lock, &step);
	}
	bool done = sb->nexecs == 0;
	pthread_mutex_unlock(&sb->lock);
	return done;
}

void sandbox_exec_drain(struct sandbox *sb)
{
	struct rv_err err;

	pthread_mutex_lock(&sb->lock);
	unsigned n = sb->nexecs;
	pthread_mutex_unlock(&sb->lock);
	if (!n)
		return;
	/* A pod member's init is PID 1 of a namespace of its own, whose end
	 * the kernel makes every exec's; the guest's other processes are the
	 * rest of the pod's. */
	if (!sb->member && agent_signal_all(sb->agent, SIGKILL, &err) < 0)
		rv_logf(sb->cfg->vm.log, RV_LOG_DEBUG, "exec drain: %s", err.msg);
	if (drained_within(sb, DRAIN_GRACE_MS))
		return;
	/* A guest that does not end them: cut its connections (their relays
	 * fail at once) and interrupt writes to callers that do not read. */
	if (sb->vm)
		vm_request_stop(sb->vm, VM_STOP_RESET, NULL);
	for (;;) {
		pthread_mutex_lock(&sb->lock);
		for (unsigned i = 0; i < sb->nexecs; i++)
			pthread_kill(sb->execs[i], VCPU_KICK_SIGNAL);
		pthread_mutex_unlock(&sb->lock);
		if (drained_within(sb, DRAIN_POLL_MS))
			return;
	}
}
