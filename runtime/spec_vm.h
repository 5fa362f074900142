/* A container's spec as its sandbox's VMM runs it (DESIGN §1, §7): a pure
 * translation from struct oci_spec to struct sandbox_config. */
#ifndef RV_SPEC_VM_H
#define RV_SPEC_VM_H

#include "runtime/spec.h"
#include "vmm/sandbox.h"

/* The mount(2) flags and data of an OCI mount's options ("ro", "nosuid",
 * "mode=755", ...): flags get the MS_* ones, *data (malloc'd, NULL when none)
 * the rest joined by commas; *bind says whether it is a bind (or rbind). */
int spec_mount_options(const struct oci_mount *m, uint32_t *flags, char **data, bool *bind,
		       struct rv_err *err);

/* The I-th option name spec_mount_options turns into mount(2) flags (as `runvm
 * features` lists them), NULL past the last; any other option is passed on as
 * data for the guest's filesystem to judge. */
const char *spec_mount_option_name(size_t i);

/* Fills cfg's container part (rootfs, mounts, process) from s; *mounts
 * (malloc'd, with its strings, freed by spec_vm_free) backs cfg->mounts.
 * Errors name the spec field ("mounts[3] /etc/hosts: ..."). */
int spec_to_sandbox(const struct oci_spec *s, const char *bundle, struct sandbox_config *cfg,
		    struct sandbox_mount **mounts, struct rv_err *err);
void spec_vm_free(struct sandbox_mount *mounts, size_t n);

/* The process's umask, capabilities, rlimits, oomScoreAdj and
 * noNewPrivileges as the agent applies them (the hostname is not the
 * process's: spec_to_sandbox adds it). */
void spec_vm_attrs(const struct oci_process *p, struct agent_attrs *a);

#endif
