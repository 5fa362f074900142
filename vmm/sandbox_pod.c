/* Pods in the VMM (vmm/pod_host.h): the pod's verbs on the pod's VMM, and
 * a member container's process, which has no VM of its own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/ctl.h"
#include "vmm/boot_cli.h"
#include "vmm/jail.h"
#include "vmm/pod_host.h"
#include "vmm/sandbox_ctl.h"
#include "vmm/vm_priv.h"

/* A member's agent connections: a busy guest may take a moment to accept. */
#define MEMBER_DIAL_MS 5000u
/* From the agent's connection lost to the pod's VMM gone (its teardown). */
#define POD_END_GRACE_MS 15000u

/* --- the pod's VMM ---------------------------------------------------------------------- */

static int pod_export(struct sandbox *sb, struct control_call *call, const char *arg, char *reply,
		      size_t size, struct rv_err *err)
{
	bool ro = !strcmp(arg, "ro");

	if (!ro && strcmp(arg, "rw"))
		return rv_failx(err, EINVAL, "pod-export '%s': say ro or rw", arg);
	if (call->nfds != 1 || call->fds[0] < 0)
		return rv_failx(err, EINVAL, "pod-export takes the export's fd, and only it");
	pthread_mutex_lock(&sb->lock);
	struct pod_host *h = sb->status != SB_STOPPED && !sandbox_going_down(sb) ? sb->pod : NULL;
	pthread_mutex_unlock(&sb->lock);
	if (!h)
		return rv_failx(err, ESRCH, "the pod's VM is not running");
	return pod_host_export(h, call->fd, call->fds[0], ro, reply, size, err);
}

/* A connection to the agent, for the member to speak the agent protocol
 * on (the agent takes any number). Lock held, so that the VM stays. */
static int pod_dial(struct sandbox *sb, struct control_call *call, struct rv_err *err)
{
	if (!sb->vm || !sb->agent || sb->status == SB_STOPPED || sandbox_going_down(sb))
		return rv_failx(err, ESRCH, "the pod's VM is not running");
	int fd = vsock_connect(&sb->vm->vsock, PROTO_AGENT_PORT, err);
	if (fd < 0)
		return -1;
	call->reply_fd = fd;
	return 0;
}

void sandbox_closed(void *arg, int fd)
{
	struct sandbox *sb = arg;

	/* Set before the control server starts, stopped after it. */
	if (sb->pod)
		pod_host_conn_closed(sb->pod, fd);
}

int sandbox_pod_verb(struct sandbox *sb, struct control_call *call, const char *verb,
		     const char *arg, char *reply, size_t size, struct rv_err *err)
{
	if (!sb->cfg->pod_host)
		return rv_failx(err, ENOTSUP, "container %s is not a pod's sandbox (its annotation "
				"io.kubernetes.cri.container-type is not \"sandbox\"): no container can "
				"join its VM", sb->cfg->id);
	if (!strcmp(verb, "pod-export"))
		return pod_export(sb, call, arg, reply, size, err);
	if (strcmp(verb, "pod-dial"))
		return rv_failx(err, ENOSYS, "unknown control request '%s'", verb);
	pthread_mutex_lock(&sb->lock);
	int rc = pod_dial(sb, call, err);
	pthread_mutex_unlock(&sb->lock);
	return rc;
}

/* --- a member ------------------------------------------------------------------------- */

struct member {
	struct sandbox *sb;
	const char *pod;             /* the pod's VMM's control socket, for errors */
	int life;                    /* our exports live as long as this connection,
				      * which then waits for the pod's end ("wait") */
	int dialer;                  /* asks for agent connections, one at a time */
	pthread_mutex_t dial_lock;
	pthread_t watcher;
	bool watching;
};

/* Both before the jail, which leaves no way to the pod's socket. */
static int connect_pod(struct member *m, struct rv_err *err)
{
	if ((m->life = ctl_dial(m->pod, err)) < 0 || (m->dialer = ctl_dial(m->pod, err)) < 0)
		return rv_wrap(err, "the pod's VMM");
	return 0;
}

/* A host directory or file as a detached copy of its mounts (open_tree):
 * ".." from its root stays there, so the jailed pod's VMM reaches nothing
 * around it; read-only in the kernel too for a read-only export. */
static int clone_tree(const char *path, bool readonly, struct rv_err *err)
{
	int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return rv_fail(err, errno, "%s: a detached copy of its mounts (open_tree)", path);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	if (readonly && mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(fd);
		return rv_fail(err, e, "%s: make it read-only", path);
	}
	return fd;
}

static int export_one(const struct member *m, const char *path, bool readonly, char *name,
		      size_t size, struct rv_err *err)
{
	_cleanup_close_ int fd = clone_tree(path, readonly, err);
	char reply[FS_EXPORT_NAME_MAX + 8];

	if (fd < 0 || ctl_request(m->life, readonly ? "pod-export ro" : "pod-export rw", fd, reply,
				  sizeof(reply), NULL, err) < 0)
		return rv_wrap(err, "%s into the pod's VM", path);
	if (snprintf(name, size, "%s", reply) >= (int)size || !reply[0])
		return rv_failx(err, EPROTO, "the pod's VMM named the export of %s '%.40s'", path,
				reply);
	return 0;
}

/* The rootfs and each volume become the pod's exports (a member that
 * fails half-way leaves none: they go with its connection). */
static int export_files(struct member *m, struct rv_err *err)
{
	struct sandbox *sb = m->sb;
	const struct boot_fs *f = sb->fs;

	if (export_one(m, f->rootfs, f->readonly, sb->root_export, sizeof(sb->root_export), err) < 0)
		return rv_wrap(err, "root.path");
	for (unsigned i = 0; i < f->nvolumes; i++)
		if (export_one(m, f->vol[i].src, f->vol[i].readonly, sb->vol_export[i],
			       sizeof(sb->vol_export[i]), err) < 0)
			return rv_wrap(err, "mounts %s", f->vol[i].arg);
	sandbox_set_guest_root(sb);
	return 0;
}

static int dial_agent(void *ctx, struct rv_err *err)
{
	struct member *m = ctx;
	char reply[64];
	int fd = -1;

	pthread_mutex_lock(&m->dial_lock);
	int rc = ctl_request(m->dialer, "pod-dial", -1, reply, sizeof(reply), &fd, err);
	pthread_mutex_unlock(&m->dial_lock);
	if (rc < 0)
		return rv_wrap(err, "the pod's agent");
	if (fd < 0)
		return rv_failx(err, EPROTO, "the pod's VMM sent no connection to its agent");
	return fd;
}

/* "wait" on the connection our exports live on is answered once the
 * pod's sandbox has ended (its VM goes down with it), or fails once that
 * VMM is gone. Sent before the jail, its answer awaited by a thread after. */
static int open_watch(struct member *m, struct rv_err *err)
{
	if (send(m->life, "wait", 4, MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "the pod's VMM at %s", m->pod);
	return 0;
}

static void *watch_pod(void *arg)
{
	struct member *m = arg;
	char reply[64];

	while (recv(m->life, reply, sizeof(reply), 0) < 0 && errno == EINTR)
		;
	atomic_store(&m->sb->pod_gone, true);
	pthread_mutex_lock(&m->sb->lock);
	pthread_cond_broadcast(&m->sb->cond);
	pthread_mutex_unlock(&m->sb->lock);
	return NULL;
}

static int start_watch(struct member *m, struct rv_err *err)
{
	int rc = pthread_create(&m->watcher, NULL, watch_pod, m);
	if (rc)
		return rv_fail(err, rc, "start the pod watcher");
	m->watching = true;
	return 0;
}

static void stop_watch(struct member *m)
{
	if (m->life >= 0)
		shutdown(m->life, SHUT_RDWR);
	if (m->watching)
		pthread_join(m->watcher, NULL);
}

/* From here on the member reads what the guest's agent sends, so it goes
 * into the VMM's jail (no host path, no capability) under a filter of its
 * own, before its first thread: it keeps its fds, its two connections to
 * the pod's VMM among them, and can open no other. */
static int jail_member(struct rv_err *err)
{
	struct jail_config jail = { .no_caps = true };

	if (jail_enter(&jail, err) < 0 || jail_load(JAIL_POD_MEMBER, err) < 0)
		return rv_wrap(err, "the member's jail");
	return 0;
}

/* The agent's connections drop as the pod's VM stops, before its VMM
 * says so (its "wait" answers once the VM is gone): a lost connection is
 * the pod's end when the watcher hears of it soon after. */
static bool pod_ended(struct sandbox *sb)
{
	for (unsigned ms = 0; ms < POD_END_GRACE_MS && !atomic_load(&sb->pod_gone); ms += 50)
		usleep(50 * 1000);
	return atomic_load(&sb->pod_gone);
}

/* The member's init under the pod's agent; its status in *code (runc's:
 * 128 + the signal that ended it, which *sig then names). */
static int run_member(struct member *m, int *code, int *sig, struct rv_err *err)
{
	struct sandbox *sb = m->sb;
	struct agent_client client = { .dial = dial_agent, .ctx = m,
				       .connect_timeout_ms = MEMBER_DIAL_MS, .cancel = &sb->pod_gone };
	uint32_t status = 0;

	if (connect_pod(m, err) < 0 || export_files(m, err) < 0 || open_watch(m, err) < 0 ||
	    (sb->cfg->terminal && sandbox_console_claim(sb, err) < 0) || jail_member(err) < 0 ||
	    start_watch(m, err) < 0 || (sb->cfg->terminal && sandbox_console_start(sb, err) < 0) ||
	    control_server_start(sb->cfg->control_fd, sandbox_handle, NULL, sb, &sb->ctl, err) < 0)
		return -1;
	if (sandbox_controller(sb, NULL, &client, &status, err) < 0) {
		/* Only a lost agent (or pod's VMM) may mean the pod's end: any
		 * other error is the member's own, and reported at once. */
		bool lost = atomic_load(&sb->pod_gone) || err->code == ECONNRESET ||
			    err->code == EPIPE || err->code == ECONNREFUSED || err->code == ENOENT ||
			    err->code == ESRCH;
		if (!lost || !pod_ended(sb))
			return -1;
		status = VM_STATUS_SIGNALED | SIGKILL;   /* the pod's VM took it down */
	}
	*sig = status & VM_STATUS_SIGNALED ? (int)(status & 0xff) : 0;
	*code = *sig ? 128 + *sig : (int)(status & 0xff);
	return 0;
}

static void ignore_kick(int sig)
{
	(void)sig;      /* only interrupts a blocking call */
}

int vmm_pod_member(const struct sandbox_config *cfg, int *exit_code, struct rv_err *err)
{
	struct sandbox *sb = sandbox_new(cfg, err);
	struct member m = { .sb = sb, .pod = cfg->pod_control, .life = -1, .dialer = -1,
			    .dial_lock = PTHREAD_MUTEX_INITIALIZER };
	int code = 0, sig = 0;

	if (!sb)
		return -1;
	sb->member = true;
	/* The exec drain interrupts relays stuck on callers that do not read
	 * with this signal, as in a VMM (vmm/vm.c): it must not end us. */
	struct sigaction kick = { .sa_handler = ignore_kick };
	sigaction(VCPU_KICK_SIGNAL, &kick, NULL);
	int rc = sandbox_plan_exports(sb, err);
	if (rc == 0)
		rc = boot_fs_check(sb->fs, err);
	if (rc == 0)
		rc = run_member(&m, &code, &sig, err);
	sandbox_finish(sb, rc == 0 ? code : -1, err);
	control_server_stop(sb->ctl);
	stop_watch(&m);
	sandbox_write_exit(cfg->exit_fd, rc == 0 ? code : 1);
	sandbox_free(sb);
	rv_closep(&m.life);      /* our exports go with it */
	rv_closep(&m.dialer);
	if (rc < 0)
		return rv_wrap(err, "container %s in its pod's VM", cfg->id);
	*exit_code = code;
	if (sig)
		boot_reraise(sig);
	return 0;
}
