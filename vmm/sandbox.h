/* The VMM of one OCI container (DESIGN §1): `runvm boot` as `create` starts
 * it. Boots the VM, mounts the container's files, prepares its process, says
 * so on the start-sync fd and then serves the control socket: start, kill,
 * pause, resume, state, wait, ps, stats. Ends when the process has exited. */
#ifndef RV_SANDBOX_H
#define RV_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/agent_client.h"
#include "vmm/vm.h"

/* One mount of the spec, already translated to guest terms (runtime/). */
struct sandbox_mount {
	const char *destination;   /* absolute, in the container */
	const char *host_source;   /* a host directory bound there (exported over
				    * virtio-fs); NULL: a mount made in the guest */
	const char *source, *fstype, *data;   /* mount(2)'s, for a guest mount */
	uint32_t flags;            /* MS_*; MS_RDONLY makes a bind read-only */
	uint32_t opts;             /* PROTO_MOUNT_*: DEVICES for a tmpfs /dev */
	uint32_t propagation;      /* MS_PRIVATE, MS_SHARED, ... (| MS_REC), or 0 */
};

struct sandbox_config {
	const char *id;
	struct vm_config vm;       /* shape, kernel, initrd, device fd, log */
	const char *rootfs;        /* host directory */
	bool readonly;
	uint32_t rootfs_propagation;   /* linux.rootfsPropagation as MS_* bits, 0: none */
	const struct sandbox_mount *mounts;
	size_t nmounts;
	/* linux.maskedPaths and linux.readonlyPaths, absolute in the container;
	 * a missing one is skipped, as runc does. */
	const char *const *masked_paths, *const *readonly_paths;
	size_t nmasked, nreadonly;
	/* linux.devices, each target the path in the container: made after
	 * the mounts (in the container's /dev), owned by the ids its user
	 * namespace maps them to. */
	const struct proto_mknod *devices;
	size_t ndevices;
	/* linux.namespaces' network path: its interface becomes the guest's
	 * (vmm/pod_net.h). NULL: the guest has its loopback only. */
	const char *netns_path;
	/* linux.namespaces has a "pid" without a path: the process is PID 1 of
	 * a PID namespace of its own in the guest, later execs join it (runc's
	 * semantics). Else it shares the guest's, as runc's shares the host's. */
	bool pidns;
	/* Pods (vmm/pod_host.h). pod_host: this container is a pod's sandbox
	 * (its pause container), whose VM the pod's other containers join.
	 * pod_control: this container is one of those, with no VM of its own:
	 * the control socket of its pod's VMM. */
	bool pod_host;
	const char *pod_control;
	const char *const *argv, *const *envp;
	const char *cwd;
	uint32_t uid, gid;
	const uint32_t *groups;    /* process.user.additionalGids */
	uint32_t ngroups;
	struct agent_attrs attrs;  /* umask, caps, rlimits, ... and the hostname */
	int stdio[3];              /* relayed to the process; -1: /dev/null */
	bool terminal;             /* stdio[0] is a pty slave (the console): the process
				    * gets a guest pty, its window size follows ours */
	int control_fd;            /* listening SOCK_SEQPACKET socket (vmm/control.h) */
	int start_sync_fd;         /* one byte once the process is ready to start */
	int exit_fd;               /* gets "STATUS\n" once the process has exited; -1: none */
	int user_log_fd;           /* where a failed guest's last console lines go; -1: stderr */
};

/* The process's status in runc's terms: its exit code, or 128 + signal. The
 * VMM exits with it (re-raising a signal) as DESIGN §1 says. Sets *exit_code;
 * -1 with err when the sandbox could not be brought up or died badly. */
int vmm_sandbox(const struct sandbox_config *cfg, int *exit_code, struct rv_err *err);

/* The same for a container that joins its pod's VM (cfg->pod_control): its
 * rootfs and volumes become exports of the pod's file service, its process
 * runs in the pod's guest beside the others, and this process stands for it
 * on the host until it ends: its status, or SIGKILL's when the pod's VM
 * ends first. Nothing of the VM (vCPUs, memory, cgroup) is its own, so
 * pause and resume are refused. */
int vmm_pod_member(const struct sandbox_config *cfg, int *exit_code, struct rv_err *err);

#endif
