/* A pod's VMM lets the pod's other containers in (DESIGN §1: a Kubernetes
 * pod is one VM, as with Kata). The pod's sandbox container (the pause
 * container, annotation io.kubernetes.cri.container-type=sandbox) boots the
 * VM; each later container of the pod has a `runvm boot --pod` process of
 * its own (vmm/sandbox.h: vmm_pod_member) that stands for it on the host.
 * That process hands this VMM its files as open fds, which become exports
 * of the running file service, and reaches the agent through vsock
 * connections this VMM opens for it (control verbs pod-export, pod-dial).
 * Its exports live as long as its pod-watch call: the member holds that
 * connection for its life, so its end, even by SIGKILL, removes them. */
#ifndef RV_POD_HOST_H
#define RV_POD_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct fs_server;
struct pod_host;
struct vm;

/* The exporter: a thread of its own under the file workers' filter (the
 * VMM's own has no openat), started jailed and before the VMM's filter. */
int pod_host_start(struct vm *vm, struct fs_server *fs, struct pod_host **out,
		   struct rv_err *err);
/* Ends the exporter; NULL: no-op. */
void pod_host_stop(struct pod_host *h);

/* Adds fd (kept by the caller) as a new export and says its name in the
 * file service's root ("pod3"), where the guest finds it. */
int pod_host_export(struct pod_host *h, int fd, bool readonly, char *name, size_t size,
		    struct rv_err *err);

/* Removes the export name (a member that has ended, or died): its files
 * are let go on the host; the guest's later requests for them fail. */
int pod_host_unexport(struct pod_host *h, const char *name, struct rv_err *err);

#endif
