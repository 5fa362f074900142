/* The container's state machine: the controller thread prepares the process
 * and holds it until `start`; the control socket's handlers move it along and
 * report it. One lock and one condition variable for all of it. */
#include "vmm/sandbox_ctl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "vmm/sandbox_report.h"
#include "vmm/vm_priv.h"

#define HOLD_POLL_MS 100u

static const char *const status_names[] = {
	[SB_CREATING] = "creating", [SB_CREATED] = "created", [SB_RUNNING] = "running",
	[SB_STOPPED] = "stopped",
};

/* Waits for a change; wakes every HOLD_POLL_MS to notice a VM that stops
 * (its stop does not signal our condition variable). Lock held. */
static void wait_change(struct sandbox *sb)
{
	struct timespec until = rv_deadline_in(CLOCK_MONOTONIC, HOLD_POLL_MS);

	pthread_cond_timedwait(&sb->cond, &sb->lock, &until);
}

bool sandbox_going_down(const struct sandbox *sb)
{
	return (sb->vm && atomic_load(&sb->vm->stopping)) || atomic_load(&sb->pod_gone);
}

bool sandbox_live(const struct sandbox *sb)
{
	return sb->vm || (sb->member && sb->agent && !atomic_load(&sb->pod_gone));
}

/* Ends the VM as if the container's init had died of sig: SIGKILL to init
 * needs no guest cooperation, so a hung or paused guest goes down too. */
static void end_vm_by_signal(struct sandbox *sb, int sig)
{
	atomic_store(&sb->vm->status, VM_STATUS_SIGNALED | (uint32_t)sig);
	atomic_store(&sb->vm->has_status, true);
	vm_request_stop(sb->vm, VM_STOP_RESET, NULL);
}

/* before_start: the process is prepared. Tell `create`, then wait for start. */
static int hold(void *arg, struct rv_err *err)
{
	struct sandbox *sb = arg;
	char one = 1;

	pthread_mutex_lock(&sb->lock);
	sb->status = SB_CREATED;
	pthread_cond_broadcast(&sb->cond);
	pthread_mutex_unlock(&sb->lock);
	if (write(sb->cfg->start_sync_fd, &one, 1) != 1)
		rv_logf(sb->cfg->vm.log, RV_LOG_DEBUG, "start-sync: %s (create went away)",
			strerror(errno));
	close(sb->cfg->start_sync_fd);

	pthread_mutex_lock(&sb->lock);
	while (!sb->start_wanted && !sb->kill_before_start && !sandbox_going_down(sb))
		wait_change(sb);
	bool go = sb->start_wanted && !sb->kill_before_start;
	if (go) {
		/* Released, as runc's start releases its init: START goes to
		 * the guest next, and `start` need not wait for the exec. */
		sb->status = SB_RUNNING;
		sb->released = true;
		pthread_cond_broadcast(&sb->cond);
	}
	pthread_mutex_unlock(&sb->lock);
	return go ? 0 : rv_failx(err, ECANCELED, "the container ended before it started");
}

void sandbox_wait_spawned(struct sandbox *sb)
{
	while (sb->status == SB_RUNNING && !sb->spawned && !sb->paused && sb->agent &&
	       !sb->agent_closing && !sandbox_going_down(sb))
		wait_change(sb);
}

/* A process released by `start` that the guest could not start: `start`
 * has returned, so the words go where runc's init writes its own, the
 * container's stderr (its terminal with one), for `docker logs` and the
 * like; wait and the boot log have them too. */
static void tell_container(const struct sandbox *sb, const struct rv_err *err)
{
	int fd = sb->cfg->terminal ? sb->cfg->stdio[1] : sb->cfg->stdio[2];

	if (fd >= 0)
		dprintf(fd, "runvm: %s\n", err->msg);
}

/* The exec id is known before start, so that a resize of the console
 * between create and start reaches the prepared process. */
static void on_prepared(void *arg, uint32_t exec_id)
{
	struct sandbox *sb = arg;

	pthread_mutex_lock(&sb->lock);
	sb->exec_id = exec_id;
	sb->prepared = true;
	pthread_mutex_unlock(&sb->lock);
}

static void on_started(void *arg, uint32_t exec_id, uint32_t guest_pid)
{
	struct sandbox *sb = arg;

	(void)guest_pid;
	pthread_mutex_lock(&sb->lock);
	sb->exec_id = exec_id;
	sb->spawned = true;          /* running since hold() released it */
	pthread_cond_broadcast(&sb->cond);
	pthread_mutex_unlock(&sb->lock);
}

int sandbox_controller(void *arg, struct vm *vm, const struct agent_client *agent,
		       uint32_t *status, struct rv_err *err)
{
	struct sandbox *sb = arg;
	const struct sandbox_config *cfg = sb->cfg;
	struct agent_exec x = { .argv = cfg->argv, .envp = cfg->envp, .root = sb->guest_root,
				.cwd = cfg->cwd, .uid = cfg->uid, .gid = cfg->gid,
				.groups = cfg->groups, .ngroups = cfg->ngroups, .attrs = cfg->attrs,
				.stdin_fd = cfg->stdio[0], .stdout_fd = cfg->stdio[1],
				.stderr_fd = cfg->stdio[2], .started = on_started, .started_arg = sb,
				.prepared = on_prepared, .prepared_arg = sb,
				.before_start = hold, .before_start_arg = sb };
	struct agent_status st;
	struct winsize ws;

	x.init = cfg->pidns;
	x.tty = cfg->terminal;
	if (x.tty) {
		x.stderr_fd = -1;      /* a terminal merges it into stdout */
		if (ioctl(cfg->stdio[0], TIOCGWINSZ, &ws) == 0) {
			x.rows = ws.ws_row;
			x.cols = ws.ws_col;
		}
	}
	pthread_mutex_lock(&sb->lock);
	sb->vm = vm;
	sb->agent = agent;
	pthread_mutex_unlock(&sb->lock);
	int rc = sb->mount(sb, agent, err);
	if (rc == 0)
		rc = agent_run(agent, &x, &st, err);
	pthread_mutex_lock(&sb->lock);
	if (rc < 0 && sb->released && !sb->spawned)
		tell_container(sb, err);
	sb->agent_closing = true;    /* no new exec from here on */
	pthread_cond_broadcast(&sb->cond);
	pthread_mutex_unlock(&sb->lock);
	sandbox_exec_drain(sb);
	pthread_mutex_lock(&sb->lock);
	if (rc < 0 && sb->kill_before_start) {
		st = (struct agent_status){ .signaled = true, .signo = sb->kill_before_start };
		rc = 0;
	}
	sb->agent = NULL;            /* the handlers' agent calls end with the VM */
	sb->vm = NULL;               /* whose struct vm_run frees once we return */
	pthread_mutex_unlock(&sb->lock);
	if (rc == 0)
		*status = st.signaled ? VM_STATUS_SIGNALED | (uint32_t)st.signo : (uint32_t)st.code & 0xff;
	return rc;
}

void sandbox_init(struct sandbox *sb, const struct sandbox_config *cfg, struct boot_fs *fs,
		  unsigned *vol_of)
{
	pthread_condattr_t attr;

	sb->cfg = cfg;
	sb->fs = fs;
	sb->vol_of = vol_of;
	sb->vm_cfg = cfg->vm;
	sb->vm_cfg.controller = sandbox_controller;
	sb->vm_cfg.controller_arg = sb;
	snprintf(sb->root_export, sizeof(sb->root_export), "rootfs");
	for (unsigned i = 0; i < BOOT_MAX_VOLUMES; i++)
		snprintf(sb->vol_export[i], sizeof(sb->vol_export[i]), "vol%u", i);
	sandbox_set_guest_root(sb);
	sb->vm_cfg.fs_tag = BOOT_FS_TAG;
	sb->exit_code = -1;
	pthread_mutex_init(&sb->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sb->cond, &attr);
	pthread_condattr_destroy(&attr);
}

void sandbox_set_guest_root(struct sandbox *sb)
{
	snprintf(sb->guest_root, sizeof(sb->guest_root), "%s/%s", BOOT_GUEST_FS, sb->root_export);
}

void sandbox_destroy(struct sandbox *sb)
{
	pthread_cond_destroy(&sb->cond);
	pthread_mutex_destroy(&sb->lock);
}

static void forward_size(struct sandbox *sb)
{
	struct winsize ws;
	struct rv_err err;

	if (ioctl(sb->cfg->stdio[0], TIOCGWINSZ, &ws) < 0)
		return;
	pthread_mutex_lock(&sb->lock);
	if (sb->agent && sb->prepared && sb->status != SB_STOPPED && !sb->paused &&
	    agent_resize(sb->agent, sb->exec_id, ws.ws_row, ws.ws_col, &err) < 0)
		rv_logf(sb->cfg->vm.log, RV_LOG_DEBUG, "window size: %s", err.msg);
	pthread_mutex_unlock(&sb->lock);
}

static void *winch_thread(void *arg)
{
	struct sandbox *sb = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	while (sigwait(&set, &sig) == 0 && !atomic_load(&sb->winch_stop))
		forward_size(sb);
	return NULL;
}

int sandbox_console_claim(struct sandbox *sb, struct rv_err *err)
{
	/* `create` made us a session leader: the console becomes our terminal,
	 * so that the kernel tells us (SIGWINCH) when the client resizes it. */
	if (ioctl(sb->cfg->stdio[0], TIOCSCTTY, 0) < 0)
		return rv_fail(err, errno, "make the console our terminal");
	return 0;
}

int sandbox_console_start(struct sandbox *sb, struct rv_err *err)
{
	int rc = pthread_create(&sb->winch, NULL, winch_thread, sb);
	if (rc)
		return rv_fail(err, rc, "start the console thread");
	sb->winch_started = true;
	return 0;
}

void sandbox_console_stop(struct sandbox *sb)
{
	if (!sb->winch_started)
		return;
	atomic_store(&sb->winch_stop, true);
	pthread_kill(sb->winch, SIGWINCH);
	pthread_join(sb->winch, NULL);
	sb->winch_started = false;
}

void sandbox_finish(struct sandbox *sb, int exit_code, const struct rv_err *why)
{
	pthread_mutex_lock(&sb->lock);
	sb->status = SB_STOPPED;
	sb->exit_code = exit_code;
	if (exit_code < 0 && why)
		snprintf(sb->failure, sizeof(sb->failure), "%s", why->msg);
	sb->vm = NULL;
	pthread_cond_broadcast(&sb->cond);
	pthread_mutex_unlock(&sb->lock);
}

/* --- the control socket's verbs (lock held unless said) ----------------------------- */

static int do_start(struct sandbox *sb, struct rv_err *err)
{
	if (sb->status == SB_RUNNING)
		return rv_failx(err, EBUSY, "cannot start an already running container");
	if (sb->status == SB_STOPPED)
		return rv_failx(err, EINVAL, "cannot start a container that has stopped");
	if (sb->status != SB_CREATED || sb->start_wanted)
		return rv_failx(err, EBUSY, "the container is not ready to start yet");
	sb->start_wanted = true;
	pthread_cond_broadcast(&sb->cond);
	while (!sb->released && sb->status == SB_CREATED)
		wait_change(sb);
	/* Released is started, as for runc, even if the guest's exec then fails. */
	return sb->released ? 0 :
	       rv_failx(err, EIO, "the container stopped while starting (see its log)");
}

static int parse_signal(const char *s, int *sig, struct rv_err *err)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 1 || v > 64)
		return rv_failx(err, EINVAL, "signal '%s': give a number from 1 to 64", s);
	*sig = (int)v;
	return 0;
}

static int do_kill(struct sandbox *sb, const char *arg, bool all, struct rv_err *err)
{
	int sig = 0;

	if (parse_signal(arg, &sig, err) < 0)
		return -1;
	if (sb->status == SB_STOPPED || !sandbox_live(sb))
		return rv_failx(err, ESRCH, "container not running");
	if (sb->status == SB_CREATING)
		return rv_failx(err, EBUSY, "the container is still being created");
	if (sb->member)
		all = false;   /* the guest's every process is the whole pod's */
	if (sig == SIGKILL && !sb->member) {
		end_vm_by_signal(sb, SIGKILL);
		return 0;
	}
	if (sb->status == SB_CREATED) {
		sb->kill_before_start = sig;
		pthread_cond_broadcast(&sb->cond);
		return 0;
	}
	sandbox_wait_spawned(sb);   /* released, its START still on the way */
	if (sb->paused)
		return rv_failx(err, EBUSY, "the container is paused: resume it first, or send "
				"SIGKILL");
	if (sb->status == SB_STOPPED || !sandbox_live(sb) || !sb->spawned)
		return rv_failx(err, ESRCH, "container not running");
	return sandbox_agent_signal(sb, sig, all, err);
}

static int do_pause(struct sandbox *sb, bool pause, struct rv_err *err)
{
	if (sb->member)
		return rv_failx(err, ENOTSUP, "container %s runs in its pod's VM, whose vCPUs are the "
				"pod's: pause the pod's sandbox container instead", sb->cfg->id);
	if (sb->status != SB_RUNNING || !sb->vm)
		return rv_failx(err, EINVAL, "container not running");
	if (sb->paused == pause)
		return rv_failx(err, EINVAL, pause ? "container already paused" :
				"container not paused");
	int rc = pause ? vm_pause(sb->vm, err) : vm_resume(sb->vm, err);
	if (rc == 0)
		sb->paused = pause;
	return rc;
}

/* The caller of a blocking verb has gone: its connection is free again,
 * and what a pod's member was given on it goes (sandbox_closed): a member
 * waits for its pod's end as long as it lives. */
static bool caller_gone(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLRDHUP };

	return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int do_wait(struct sandbox *sb, int fd, char *reply, size_t size, struct rv_err *err)
{
	while (sb->status != SB_STOPPED) {
		wait_change(sb);
		if (caller_gone(fd))
			return rv_failx(err, ECONNRESET, "the caller hung up");
	}
	if (sb->exit_code < 0)
		return rv_failx(err, EIO, "the sandbox failed: %s",
				sb->failure[0] ? sb->failure : "see its log");
	snprintf(reply, size, "%d", sb->exit_code);
	return 0;
}

static int dispatch(struct sandbox *sb, int fd, const char *verb, const char *arg, char *reply,
		    size_t size, struct rv_err *err)
{
	if (!strcmp(verb, "state")) {
		snprintf(reply, size, "%s", sb->paused && sb->status == SB_RUNNING ? "paused" :
			 status_names[sb->status]);
		return 0;
	}
	if (!strcmp(verb, "start"))
		return do_start(sb, err);
	if (!strcmp(verb, "kill") || !strcmp(verb, "kill-all"))
		return do_kill(sb, arg, verb[4] == '-', err);
	if (!strcmp(verb, "pause") || !strcmp(verb, "resume"))
		return do_pause(sb, verb[0] == 'p', err);
	if (!strcmp(verb, "wait"))
		return do_wait(sb, fd, reply, size, err);
	if (!strcmp(verb, "exec-kill"))
		return sandbox_exec_signal(sb, arg, err);
	if (!strcmp(verb, "exec-resize"))
		return sandbox_exec_resize(sb, arg, err);
	if (!strcmp(verb, "ps") || !strcmp(verb, "stats")) {
		if (sb->status != SB_RUNNING && sb->status != SB_CREATED)
			return rv_failx(err, ESRCH, "container not running");
		sandbox_wait_spawned(sb);
		if (sb->paused)
			return rv_failx(err, EBUSY, "the container is paused: resume it first");
		if (sb->status != SB_CREATED && !sb->spawned)
			return rv_failx(err, ESRCH, "container not running");
		return verb[0] == 'p' ? sandbox_report_ps(sb, reply, size, err) :
		       sandbox_report_stats(sb, reply, size, err);
	}
	return rv_failx(err, ENOSYS, "unknown control request '%s'", verb);
}

int sandbox_handle(void *arg, struct control_call *call, const char *req, char *reply,
		   size_t size, struct rv_err *err)
{
	struct sandbox *sb = arg;
	char verb[16];
	const char *sp = strchr(req, ' ');
	size_t n = sp ? (size_t)(sp - req) : strlen(req);

	if (n >= sizeof(verb))
		return rv_failx(err, EINVAL, "unknown control request");
	memcpy(verb, req, n);
	verb[n] = '\0';
	if (!strcmp(verb, "exec"))     /* runs for as long as its process: no lock */
		return sp ? rv_failx(err, EINVAL, "exec takes no arguments") :
		       sandbox_exec(sb, call, reply, size, err);
	if (!strncmp(verb, "pod-", 4))
		return sandbox_pod_verb(sb, call, verb, sp ? sp + 1 : "", reply, size, err);
	pthread_mutex_lock(&sb->lock);
	int rc = dispatch(sb, call->fd, verb, sp ? sp + 1 : "", reply, size, err);
	pthread_mutex_unlock(&sb->lock);
	return rc;
}
