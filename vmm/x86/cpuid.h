/* The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, made to describe our own
 * topology (one socket, one thread per core, APIC id = vCPU index) and stripped of
 * what a sandbox must not use or learn (nested virtualisation, PMU, MWAIT). */
#ifndef RV_X86_CPUID_H
#define RV_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "common/err.h"

enum cpuid_vendor { CPUID_VENDOR_INTEL, CPUID_VENDOR_AMD, CPUID_VENDOR_OTHER };

struct cpuid_topology {
	unsigned cpu_index;   /* this vCPU, 0-based; also its APIC id */
	unsigned ncpus;       /* vCPUs in the VM: one socket, one thread per core */
};

/* From leaf 0; Hygon counts as AMD. OTHER when leaf 0 is missing. */
enum cpuid_vendor cpuid_vendor(const struct kvm_cpuid_entry2 *entries, unsigned n);

/* Rewrite, in place, a copy of what KVM_GET_SUPPORTED_CPUID returned into what
 * vCPU `t->cpu_index` should see. Pure function: no ioctls, unit-testable.
 * Returns 0, or -1 with err set when the topology is invalid (ncpus 0 or
 * cpu_index >= ncpus). */
int cpuid_apply(struct kvm_cpuid_entry2 *entries, unsigned n, const struct cpuid_topology *t,
		struct rv_err *err);

#endif
