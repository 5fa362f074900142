#include "vmm/kvm.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/kvm_host.h"
#include "vmm/x86/layout.h"

#define CPUID_MAX_ENTRIES 256

static const struct { long cap; const char *name, *why; } needed_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM from our memfd" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel timer" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device notifications" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "guest CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 task state" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs" },
};

int kvm_check_caps(kvm_cap_query query, void *ctx, struct rv_err *err)
{
	for (size_t i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++)
		if (query(ctx, needed_caps[i].cap) <= 0)
			return rv_failx(err, ENOTSUP, "KVM lacks %s, needed for %s: upgrade the host "
					"kernel", needed_caps[i].name, needed_caps[i].why);
	return 0;
}

static int ioctl_query(void *ctx, long cap)
{
	return ioctl(*(int *)ctx, KVM_CHECK_EXTENSION, cap);
}

static int get_supported_cpuid(struct kvm *kvm, struct rv_err *err)
{
	kvm->cpuid = calloc(1, sizeof(*kvm->cpuid) + CPUID_MAX_ENTRIES * sizeof(kvm->cpuid->entries[0]));
	if (!kvm->cpuid)
		return rv_fail(err, ENOMEM, "allocate CPUID table");
	kvm->cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, kvm->cpuid) < 0)
		return rv_fail(err, errno, "KVM_GET_SUPPORTED_CPUID");
	return 0;
}

int kvm_open(struct kvm *kvm, int device_fd, struct rv_err *err)
{
	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	kvm->sys_fd = device_fd >= 0 ? device_fd : open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		int code = errno;
		struct kvm_host host;
		kvm_host_detect("/", &host);
		if (kvm_host_check_bootable(&host, err) < 0)
			return -1;
		return rv_fail(err, code, "open /dev/kvm");
	}
	int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (version < 0 && device_fd >= 0)
		return rv_failx(err, EBADF, "--device-fd %d is not an open /dev/kvm", device_fd);
	if (version != KVM_HOST_API_VERSION)
		return rv_failx(err, ENOTSUP, "/dev/kvm speaks KVM API %d, runvm needs %d", version,
				KVM_HOST_API_VERSION);
	if (kvm_check_caps(ioctl_query, &kvm->sys_fd, err) < 0)
		return -1;
	kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size < (int)sizeof(struct kvm_run))
		return rv_fail(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
	int max = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = max > 0 ? (unsigned)max : 1;
	return get_supported_cpuid(kvm, err);
}

int kvm_create_vm(struct kvm *kvm, struct rv_err *err)
{
	struct kvm_pit_config pit = { .flags = 0 };
	uint64_t identity_map = KVM_IDENTITY_MAP_GPA;

	kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	if (kvm->vm_fd < 0)
		return rv_fail(err, errno, "KVM_CREATE_VM");
	if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA) < 0)
		return rv_fail(err, errno, "KVM_SET_TSS_ADDR");
	/* Intel only, and harmless elsewhere: where KVM keeps real-mode page tables. */
	ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map);
	if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return rv_fail(err, errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_CREATE_PIT2");
	return 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	kvm->vm_fd = kvm->sys_fd = -1;
	kvm->cpuid = NULL;
}
