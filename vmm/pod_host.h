/* A pod's VMM lets the pod's other containers in (DESIGN §1: a Kubernetes
 * pod is one VM, as with Kata). The pod's sandbox container (the pause
 * container, annotation io.kubernetes.cri.container-type=sandbox) boots the
 * VM; each later container of the pod has a `runvm boot --pod` process of
 * its own (vmm/sandbox.h: vmm_pod_member) that stands for it on the host.
 * That process hands this VMM its files as open fds, which become exports
 * of the running file service, and reaches the agent through vsock
 * connections this VMM opens for it (control verbs pod-export, pod-dial).
 * Its exports live as long as the connection it asked for them on, which
 * it holds for its life (waiting there for the pod's end, "wait"). */
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
 * file service's root ("pod3"), where the guest finds it. It lives as long
 * as the caller's control connection conn: pod_host_conn_closed, told when
 * that ends, removes it, however the caller ended (SIGKILL included). */
int pod_host_export(struct pod_host *h, int conn, int fd, bool readonly, char *name, size_t size,
		    struct rv_err *err);
void pod_host_conn_closed(struct pod_host *h, int conn);

#endif
