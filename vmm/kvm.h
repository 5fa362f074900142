/* The KVM system and VM file descriptors: open or adopt /dev/kvm, check the API
 * and the capabilities runvm relies on, create the VM with its in-kernel
 * interrupt controllers. */
#ifndef RV_KVM_H
#define RV_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "common/err.h"

struct kvm {
	int sys_fd;                  /* /dev/kvm, opened here or donated (--device-fd) */
	int vm_fd;
	int run_size;                /* bytes of each vCPU's kvm_run mapping */
	unsigned max_vcpus;
	struct kvm_cpuid2 *cpuid;    /* KVM_GET_SUPPORTED_CPUID */
};

/* device_fd < 0 opens /dev/kvm; else the fd is adopted (and closed later). */
int kvm_open(struct kvm *kvm, int device_fd, struct rv_err *err);
int kvm_create_vm(struct kvm *kvm, struct rv_err *err);
void kvm_close(struct kvm *kvm);

/* Every capability runvm needs, asked through `query` (KVM_CHECK_EXTENSION in
 * production, a table in tests); the error names the first one missing. */
typedef int (*kvm_cap_query)(void *ctx, long cap);
int kvm_check_caps(kvm_cap_query query, void *ctx, struct rv_err *err);

#endif
