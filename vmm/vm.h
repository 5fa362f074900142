/* One microVM, from plain-data config to exit: memory, kernel, devices, vCPU
 * threads and the main thread's event loop (DESIGN §1, §3). */
#ifndef RV_VM_H
#define RV_VM_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>

#include "common/err.h"
#include "common/log.h"
#include "vmm/agent_client.h"

struct fs_server;
struct vm;

#define VM_DEFAULT_MEM_BYTES (256ull << 20)
#define VM_CONSOLE_TAIL_BYTES 2048
/* A guest without the agent (a test payload) reports its exit status by
 * writing it to this port: the exit code, or VM_STATUS_SIGNALED | signal. */
#define VM_STATUS_PORT 0x4f0
#define VM_STATUS_SIGNALED 0x100u

struct vm_net {
	int tap_fd;
	uint8_t mac[6];
	uint16_t mtu;                /* 0: 1500 */
};

struct vm_config {
	unsigned cpus;
	uint64_t mem_bytes;
	int device_fd;               /* donated /dev/kvm, or -1 to open it */
	const char *kernel;          /* vmlinux (PVH) or bzImage */
	const char *initrd;          /* NULL: none */
	const char *cmdline;         /* appended to ours; NULL: nothing */
	int console_fd;              /* -1: serial console off */
	unsigned timeout_ms;         /* 0: no limit */
	const struct rv_log *log;    /* device warnings (hostile guest input); may be NULL */
	/* With the agent as the guest's init: runs on its own thread once the agent
	 * has announced itself on vsock, talks to it through `agent`, and sets
	 * *status (VM_STATUS_* encoding); the VM then shuts down. An error ends the
	 * VM with that error. NULL for payload guests. */
	int (*controller)(void *arg, struct vm *vm, const struct agent_client *agent,
			  uint32_t *status, struct rv_err *err);
	void *controller_arg;
	unsigned agent_timeout_ms;   /* boot to agent ready; 0: VM_AGENT_TIMEOUT_MS */
	/* The files the guest mounts over virtio-fs (DESIGN §5). Owned by the
	 * caller, who frees it after vm_run returns. NULL: no virtio-fs device. */
	struct fs_server *fs;
	const char *fs_tag;          /* the guest's mount tag; NULL: "runvm" */
	/* A virtio-net interface over this tap (vmm/pod_net.h), which the VM
	 * uses through a dup of tap_fd. NULL: no network device. */
	const struct vm_net *net;
	/* The caller removes the pod's tc redirect over netlink after vm_run,
	 * still in the jail, which then keeps CAP_NET_ADMIN. */
	bool net_admin_at_end;
	/* Optional: host signals for the caller (`runvm do` forwards them to the
	 * guest process). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
	 * SIGWINCH are then blocked in every VMM thread and each one that arrives
	 * goes to on_signal on the main loop's thread, which must not block. One
	 * it does not take (false) ends the VM as without it (SIGTERM, SIGINT,
	 * SIGHUP) or is dropped (the others). */
	bool (*on_signal)(void *arg, int sig);
	void *on_signal_arg;
	/* The VMM enters its jail and each of its threads loads its seccomp
	 * filter (vmm/jail.h) before the guest runs; the caller's own threads
	 * load theirs. No thread of the caller's may run by vm_run. */
	bool jail;
	/* Optional: called on the main thread once it is jailed, just before the
	 * first vCPU runs; threads it starts inherit the VMM's filter. An error
	 * ends the VM with it. */
	int (*on_run)(void *arg, struct rv_err *err);
	void *on_run_arg;
	/* Optional: called on the main thread once it is jailed and before it
	 * loads its filter, so that a thread it starts is under none and loads
	 * its own role's first (vm_jail_thread, vmm/vm_priv.h). An error ends
	 * the VM with it. */
	int (*on_jailed)(void *arg, struct vm *vm, struct rv_err *err);
	void *on_jailed_arg;
	/* Template clones (vmm/template.h): the store directory, which the VMM
	 * opens before its jail. A guest the agent runs, with no console and no
	 * network, then starts from the template of its kernel, initrd and
	 * shape when there is one, and saves one at agent ready when there is
	 * not. NULL: always a plain boot. */
	const char *template_dir;
	/* Tests only: 1 + enum jail_role, whose thread then makes a forbidden
	 * call (the VMM must die of it); 0: none. */
	unsigned jail_selftest;
};

/* The signals vm_config.on_signal is handed, for a caller that holds them
 * blocked around vm_run too. */
void vm_caller_signals(sigset_t *set);

#define VM_AGENT_TIMEOUT_MS 120000u
#define VM_SHUTDOWN_GRACE_MS 2000u

enum vm_stop_reason {
	VM_STOP_NONE,
	VM_STOP_RESET,               /* i8042 reset or KVM system event */
	VM_STOP_HOST_SIGNAL,         /* SIGTERM/SIGINT/SIGHUP to the VMM */
	VM_STOP_ERROR,               /* internal error, triple fault, panic, timeout */
};

struct vm_result {
	enum vm_stop_reason reason;
	bool has_status;
	uint32_t status;             /* as written to VM_STATUS_PORT */
	int host_signal;
	double cpu_ms_before_run;    /* VMM CPU time (since exec) before the first KVM_RUN */
	char console_tail[VM_CONSOLE_TAIL_BYTES];
};

/* Pause and resume every vCPU, from any thread (a controller's, say): the
 * guest stops running; devices, vsock and virtio-fs keep being served on
 * the host side, but nothing in the guest moves (an agent request then waits
 * for resume). vm_pause returns once every vCPU thread is out of KVM_RUN and
 * parked. A second pause, or a resume of a running VM, fails with EALREADY
 * and changes nothing; both fail with ECANCELED once the VM is stopping (a
 * VM that stops while paused stops as always, and vm_run returns). Calls from
 * several threads are serialized. vm_is_paused is true from a completed
 * vm_pause to the next vm_resume. */
int vm_pause(struct vm *vm, struct rv_err *err);
int vm_resume(struct vm *vm, struct rv_err *err);
bool vm_is_paused(struct vm *vm);

/* 0 when the guest ran and stopped (res says how); -1 with err when it could
 * not be booted or died badly (res->console_tail then holds its last words). */
int vm_run(const struct vm_config *cfg, struct vm_result *res, struct rv_err *err);

#endif
