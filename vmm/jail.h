/* The VMM's seccomp filters (DESIGN §8): one allow-list per thread role,
 * anything else kills the whole VMM (SECCOMP_RET_KILL_PROCESS).
 *
 * Each thread loads its role's filter itself, once its setup is done; a
 * thread started later inherits its creator's filter and may only narrow
 * it. So the main thread loads JAIL_VMM just before the first vCPU runs, and
 * every thread started after inherits it: the vCPUs, which add JAIL_VCPU, the
 * agent's, the control socket's and the console's (vm_config.on_run). The
 * virtio-fs workers, started during setup, load JAIL_FS_WORKER at their start.
 *
 * The threads share one address space: a role's list bounds what its own code
 * paths can do, while code run by an attacker in any thread can, in the end,
 * reach what the vmm and fs-worker lists allow together. */
#ifndef RV_JAIL_H
#define RV_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum jail_role {
	JAIL_VMM,        /* main loop and devices, control socket, agent, console */
	JAIL_VCPU,       /* KVM_RUN and the exits it hands us */
	JAIL_FS_WORKER,  /* virtio-fs requests: host file calls, no sockets, no ioctl */
	JAIL_POD_MEMBER, /* a pod's member (vmm/sandbox.h), every thread: the vmm role's
			  * calls on the fds it has, no ioctl but the console's */
	JAIL_ROLES
};

/* "vmm", "vcpu", "fs-worker", "pod-member". */
const char *jail_role_name(enum jail_role role);
int jail_role_parse(const char *name, enum jail_role *out, struct rv_err *err);

/* Test builds under ASan (make check-sanitize, never shipped) also let the
 * sanitizer runtime open files and clone its leak checker (jail.c). */
#ifdef __SANITIZE_ADDRESS__
#define JAIL_SANITIZER_BUILD true
#else
#define JAIL_SANITIZER_BUILD false
#endif

/* JAIL_REPORT_ENV=1 (tests set it): a forbidden call is trapped, named on
 * stderr ("runvm: seccomp: a VMM thread made system call N ...") and the VMM
 * exits with 128 + SIGSYS, where it would otherwise be killed by SIGSYS
 * without a word. Either way the call is never made. */
#define JAIL_REPORT_ENV "RUNVM_SECCOMP_REPORT"

/* Loads role's filter on the calling thread. */
int jail_load(enum jail_role role, struct rv_err *err);

/* The test-only trigger of `runvm boot --seccomp-selftest ROLE`: a system
 * call no role allows (and that does nothing where none is loaded). */
void jail_forbidden_call(void);

/* The jail proper (jail_ns.c), entered by `runvm boot`'s main thread once it
 * has opened everything (exports as O_PATH fds, /dev/kvm, the tap) and before
 * it starts any thread, which would stay outside: new mount, IPC and UTS
 * namespaces; a read-only tmpfs root holding only our own /proc/PID (at
 * proc/self and proc/PID); the host's root detached; RLIMIT_CORE, _MEMLOCK
 * and _MSGQUEUE 0; and every capability dropped from all sets, bounding
 * included, but jail_kept_caps(). The seccomp filters come after. A user
 * namespace does not fit: the file server acts as any guest uid on the
 * host's files. Nor a pid namespace: `create` records our pid. */
struct jail_config {
	bool keep_net_admin;     /* the pod's tc redirect is removed at exit */
	bool no_caps;            /* keep none (a pod's member serves no files) */
	/* Optional: prepare runs first in the new mount namespace, before
	 * anything is mounted there (the jail's root covers /dev); furnish
	 * binds what the VMM goes on using (the file server's exports) below
	 * dir, just before the pivot; dir is JAIL_FURNISHED_DIR once pivoted. */
	int (*prepare)(void *arg, struct rv_err *err);
	int (*furnish)(void *arg, const char *dir, struct rv_err *err);
	void *furnish_arg;
};
#define JAIL_FURNISHED_DIR "/exports"


/* CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, SETUID, SETGID
 * (the file server's per-request fsuid) and MKNOD, as a mask of bits. */
uint64_t jail_kept_caps(const struct jail_config *cfg);
int jail_enter(const struct jail_config *cfg, struct rv_err *err);
/* EPERM, saying so, where jail_enter could not work: checked up front, so
 * that a caller without root learns it before a VM is set up. */
int jail_check_privileged(struct rv_err *err);

/* Closes every fd above 2 but keep's: whatever a caller leaked to the VMM
 * is gone before it reads a byte from a guest. */
#define JAIL_MAX_KEPT_FDS 16u
int jail_close_fds(const int *keep, size_t n, struct rv_err *err);

#endif
