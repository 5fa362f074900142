/* The x86 machine a guest runs on, saved and restored for template clones
 * (vmm/template.h): each vCPU's registers, FPU, local APIC, MSRs and pending
 * events, and the VM's interrupt controllers, PIT and KVM clock. The order of
 * the calls inside follows what KVM requires (see each function). */
#ifndef RV_X86_VCPU_STATE_H
#define RV_X86_VCPU_STATE_H

#include "common/err.h"
#include "common/snapbuf.h"

/* The VM's devices inside KVM; after every vCPU is parked. */
int x86_vm_state_save(int vm_fd, struct snapbuf *b, struct rv_err *err);
/* Into a new VM, before its vCPUs are restored (their kvmclock reads it). */
int x86_vm_state_restore(int vm_fd, struct snapreader *r, struct rv_err *err);

/* One parked vCPU that has no I/O exit half done (its last KVM_RUN ended in
 * a kick, not an exit we served). sys_fd lists the MSRs KVM can save. */
int x86_vcpu_state_save(int sys_fd, int vcpu_fd, unsigned index, struct snapbuf *b,
			struct rv_err *err);
/* Into a vCPU made as for a boot (its CPUID set), before it first runs. */
int x86_vcpu_state_restore(int vcpu_fd, unsigned index, struct snapreader *r, struct rv_err *err);

#endif
