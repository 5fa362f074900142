/* Pods (DESIGN §1: a Kubernetes pod is one VM, as with Kata). An engine's
 * CRI plugin marks each container of a pod by annotation: the pod's sandbox
 * (the pause container) boots the VM, and every other container of the pod
 * joins it instead of booting one (vmm/sandbox.h: vmm_pod_member). */
#ifndef RV_POD_H
#define RV_POD_H

#include <stddef.h>

#include "common/err.h"
#include "runtime/cli.h"
#include "runtime/spec.h"

enum pod_role {
	POD_NONE,       /* a container of its own (no pod annotations) */
	POD_SANDBOX,    /* a pod's sandbox: its VM is the pod's */
	POD_MEMBER,     /* another container of a pod: joins the sandbox's VM */
};

/* The role containerd's CRI plugin (io.kubernetes.cri.container-type,
 * .sandbox-id) or CRI-O (io.kubernetes.cri-o.ContainerType, .SandboxID)
 * gives the spec; *sandbox_id (may be NULL) gets a member's pod sandbox.
 * A member whose sandbox id is missing is an error naming the annotation. */
int pod_role(const struct oci_spec *s, enum pod_role *role, const char **sandbox_id,
	     struct rv_err *err);

/* The control socket of sandbox_id's VMM under cli->root, which a member
 * joins: the sandbox must exist there, be a pod's and be running. */
int pod_control_path(const struct cli *cli, const char *sandbox_id, char *out, size_t size,
		     struct rv_err *err);

#endif
