/* What serves /dev/kvm on this host, and whether it can boot a Linux guest.
 * kvm_pvm (a software backend, DESIGN §11) cannot: we refuse early and point to
 * the testbed instead of failing later with an emulation error. */
#ifndef RV_KVM_HOST_H
#define RV_KVM_HOST_H

#include <stdbool.h>

#include "common/err.h"

enum kvm_backend {
	KVM_BACKEND_NONE,    /* no KVM module and no /dev/kvm */
	KVM_BACKEND_INTEL,   /* kvm_intel: VMX hardware */
	KVM_BACKEND_AMD,     /* kvm_amd: SVM hardware */
	KVM_BACKEND_PVM,     /* kvm_pvm: software, cannot run a stock guest */
	KVM_BACKEND_UNKNOWN, /* /dev/kvm exists, but nothing says what serves it */
};

#define KVM_HOST_API_VERSION 12

struct kvm_host {
	enum kvm_backend backend;
	bool cpu_vmx, cpu_svm;       /* flags in /proc/cpuinfo */
	bool dev_present;            /* /dev/kvm exists */
	int dev_errno;               /* 0 when /dev/kvm opened and answered */
	int api_version;             /* KVM_GET_API_VERSION, -1 when not opened */
};

/* root is "/" on a real host; tests pass a directory laid out like one. Never
 * fails: what cannot be read is recorded as absent. */
void kvm_host_detect(const char *root, struct kvm_host *host);

const char *kvm_backend_name(enum kvm_backend backend);

/* 0 when a guest can be booted here; else -1 with one line saying why and what to
 * do instead (for kvm_pvm: the testbed). */
int kvm_host_check_bootable(const struct kvm_host *host, struct rv_err *err);

#endif
