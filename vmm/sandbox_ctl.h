/* Inside vmm/sandbox: the container's state machine, shared by the
 * controller thread (which talks to the agent) and the control socket's
 * handlers (which the CLI drives). Not for other modules. */
#ifndef RV_SANDBOX_CTL_H
#define RV_SANDBOX_CTL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/boot_fs.h"
#include "vmm/control.h"
#include "vmm/sandbox.h"

/* runc's statuses; paused is a flag on top of running. */
enum sandbox_status { SB_CREATING, SB_CREATED, SB_RUNNING, SB_STOPPED };

struct pod_net_conf;
struct pod_host;

struct sandbox {
	const struct sandbox_config *cfg;
	struct vm_config vm_cfg;
	struct boot_fs *fs;
	unsigned *vol_of;                /* mount index -> its volume */
	char **mount_rel;                /* mount index -> its place in the rootfs (not a volume's) */
	const struct pod_net_conf *net;  /* the pod's interface, when vm_cfg.net is set */
	struct control_server *ctl;
	int (*mount)(struct sandbox *sb, const struct agent_client *a, struct rv_err *err);
	/* Where the container's files are: its entries in the file service
	 * ("rootfs", "volN"; a pod member's "podN"), its root in the guest. */
	char root_export[FS_EXPORT_NAME_MAX];
	char vol_export[BOOT_MAX_VOLUMES][FS_EXPORT_NAME_MAX];
	char guest_root[sizeof(BOOT_GUEST_FS) + FS_EXPORT_NAME_MAX];
	/* Pods (vmm/pod_host.h): the pod's VMM lets members in; a member has no
	 * VM of its own and learns that the pod's has ended. */
	struct pod_host *pod;
	bool member;
	atomic_bool pod_gone;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum sandbox_status status;
	bool paused;
	bool start_wanted;
	int kill_before_start;           /* a signal `kill` sent to a created container */
	int exit_code;                   /* once stopped: code or 128 + signal; -1: the VM failed */
	char failure[RV_ERR_MSG_BYTES];  /* with -1: why */
	struct vm *vm;                   /* while the controller runs */
	const struct agent_client *agent;
	uint32_t exec_id;
	bool prepared;                   /* exec_id is known */
	/* As runc's start, ours returns once the process is released: the
	 * status is "running" from then on, and this says the guest has
	 * spawned it (signals, exec and ps wait for it; a paused VM spawns
	 * nothing, so they do not wait then). */
	bool released, spawned;
	/* runvm exec: the control threads running a process in the guest.
	 * The controller waits for them before the agent client goes away. */
	bool agent_closing;              /* the init has ended: no new exec */
	unsigned nexecs;
	pthread_t execs[CONTROL_MAX_CONNS];
	pthread_t winch;                 /* with a terminal: forwards window-size changes */
	bool winch_started;
	atomic_bool winch_stop;
};

void sandbox_init(struct sandbox *sb, const struct sandbox_config *cfg, struct boot_fs *fs,
		  unsigned *vol_of);
/* A sandbox for cfg (sandbox_init, with its file service's plan and the
 * mounts' places to fill), SIGPIPE ignored and, with a terminal, SIGWINCH
 * blocked before any thread starts. NULL with err. */
struct sandbox *sandbox_new(const struct sandbox_config *cfg, struct rv_err *err);
void sandbox_free(struct sandbox *sb);
/* The container's mounts in the guest (sb->mount). */
int sandbox_mount_container(struct sandbox *sb, const struct agent_client *a, struct rv_err *err);
/* "STATUS\n" to the exit file; fd -1: none. */
int sandbox_write_exit(int fd, int code);

/* Plans the exports into sb->fs (vmm/sandbox.c): the rootfs's mount points
 * on a read-only root, each volume, where each guest mount lands. */
int sandbox_plan_exports(struct sandbox *sb, struct rv_err *err);
/* Says where the root is once root_export is set (sandbox_init sets "rootfs"). */
void sandbox_set_guest_root(struct sandbox *sb);

/* Lock held: until a released process has been spawned in the guest (or
 * the container goes down), so that what reaches it finds it there. */
void sandbox_wait_spawned(struct sandbox *sb);
/* The VM's controller (vm_config.controller); a pod member calls it with
 * vm NULL, on an agent reached through the pod's VMM. */
int sandbox_controller(void *arg, struct vm *vm, const struct agent_client *agent,
		       uint32_t *status, struct rv_err *err);

/* The container can be signalled: its VM runs, or (a member) its agent
 * is reached and the pod's VM has not ended. Lock held. */
bool sandbox_live(const struct sandbox *sb);
/* Its VM (or its pod's) is on the way down. Lock held. */
bool sandbox_going_down(const struct sandbox *sb);

/* The pod's verbs (vmm/pod_host.h) on the pod's VMM: "pod-export ro|rw"
 * with an fd, answered with the export's name, which lives as long as the
 * caller's connection (sandbox_closed); "pod-dial", answered with a
 * connection to the agent. A member waits for the pod's end with "wait" on
 * the connection its exports live on. */
int sandbox_pod_verb(struct sandbox *sb, struct control_call *call, const char *verb,
		     const char *arg, char *reply, size_t size, struct rv_err *err);
/* The control server's word that a caller's connection has ended
 * (control_closed_fn): what a pod's member was given on it goes. */
void sandbox_closed(void *arg, int fd);
void sandbox_destroy(struct sandbox *sb);

/* The VM is over: wakes every waiter (wait, start) with exit_code; failed
 * (exit_code -1, why set): what `wait` answers, since `start`
 * returns before a process that fails to start in the guest has failed. */
void sandbox_finish(struct sandbox *sb, int exit_code, const struct rv_err *why);

/* With a terminal: claim makes the console our controlling terminal (before
 * the VMM's filters, which allow no TIOCSCTTY); start forwards its window-size
 * changes (SIGWINCH, which every thread must block) to the guest process. */
int sandbox_console_claim(struct sandbox *sb, struct rv_err *err);
int sandbox_console_start(struct sandbox *sb, struct rv_err *err);
void sandbox_console_stop(struct sandbox *sb);

/* The control socket's handler (vmm/control.h). */
int sandbox_handle(void *arg, struct control_call *call, const char *req, char *reply,
		   size_t size, struct rv_err *err);

/* --- runvm exec (vmm/sandbox_exec.c) -------------------------------------------------
 * "exec" with the caller's stdio fds, then a PROTO_EXEC frame (common/proto.h:
 * the process, its streams saying which fds came, in stdin, stdout, stderr
 * order) as the next packet. Runs the process in the container's root; sends
 * "started EXEC_ID GUEST_PID" once it runs, and answers "exit CODE" or
 * "signal SIGNO" once it has ended. Called without the lock. */
int sandbox_exec(struct sandbox *sb, struct control_call *call, char *reply, size_t size,
		 struct rv_err *err);
/* "exec-kill EXEC_ID SIGNO" and "exec-resize EXEC_ID ROWS COLS" (lock held). */
int sandbox_exec_signal(struct sandbox *sb, const char *arg, struct rv_err *err);
int sandbox_exec_resize(struct sandbox *sb, const char *arg, struct rv_err *err);
/* The container's init has ended: SIGKILL what execs still run (as a pid
 * namespace's end does) and wait until every exec thread is done with the
 * agent. Called by the controller, without the lock, before the agent goes. */
void sandbox_exec_drain(struct sandbox *sb);

#endif
