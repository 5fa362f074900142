/* KVM self-check: proves that this machine's /dev/kvm runs guest code, before any
 * VMM code is trusted with it. One VM, one vCPU in real mode, a 14-byte payload:
 *
 *   mov al, 0x2a ; out 0x10, al      port write        -> KVM_EXIT_IO (out)
 *   in  al, 0x11                     port read, we answer 5
 *   add al, 1    ; out 0x10, al      the guest computed 6 -> KVM_EXIT_IO (out)
 *   mov [0x9000], al                 no RAM there        -> KVM_EXIT_MMIO (write)
 *   hlt                                                  -> KVM_EXIT_HLT
 *
 * Exit status: 0 passed, 1 failed, 77 not run (no usable /dev/kvm: the reason
 * is printed, so a skip is never silent).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "vmm/kvm_host.h"

#define EXIT_NOT_RUN 77
#define GUEST_RAM_BYTES 0x2000
#define PAYLOAD_GPA 0x1000
#define MMIO_GPA 0x9000
#define PORT_OUT 0x10
#define PORT_IN 0x11
#define IN_VALUE 0x05

static const uint8_t payload[] = {
	0xb0, 0x2a,             /* mov al, 0x2a */
	0xe6, PORT_OUT,         /* out PORT_OUT, al */
	0xe4, PORT_IN,          /* in al, PORT_IN */
	0x04, 0x01,             /* add al, 1 */
	0xe6, PORT_OUT,         /* out PORT_OUT, al */
	0xa2, 0x00, 0x90,       /* mov [MMIO_GPA], al */
	0xf4,                   /* hlt */
};

struct vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
};

static int vm_create(struct vm *v, struct rv_err *err)
{
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0)
		return rv_fail(err, errno, "open /dev/kvm");
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		return rv_fail(err, errno, "KVM_CREATE_VM");
	v->ram = mmap(NULL, GUEST_RAM_BYTES, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (v->ram == MAP_FAILED) {
		v->ram = NULL;
		return rv_fail(err, errno, "map guest RAM");
	}
	memcpy(v->ram + PAYLOAD_GPA, payload, sizeof(payload));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_RAM_BYTES,
		.userspace_addr = (uintptr_t)v->ram,
	};
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return rv_fail(err, errno, "KVM_SET_USER_MEMORY_REGION");
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		return rv_fail(err, errno, "KVM_CREATE_VCPU");
	int size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return rv_fail(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
	v->run_size = (size_t)size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return rv_fail(err, errno, "map kvm_run");
	}
	return 0;
}

static void vm_destroy(struct vm *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->ram)
		munmap(v->ram, GUEST_RAM_BYTES);
	rv_closep(&v->vcpu);
	rv_closep(&v->vm);
	rv_closep(&v->kvm);
}

static int vcpu_reset_real_mode(struct vm *v, struct rv_err *err)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = PAYLOAD_GPA, .rflags = 0x2 };

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_SET_SREGS");
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		return rv_fail(err, errno, "KVM_SET_REGS");
	return 0;
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	}
	return "other";
}

/* Run until the next exit and insist that it is `want`. */
static int run_until(struct vm *v, uint32_t want, struct rv_err *err)
{
	if (ioctl(v->vcpu, KVM_RUN, 0) < 0)
		return rv_fail(err, errno, "KVM_RUN");
	if (v->run->exit_reason == want)
		return 0;
	if (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		return rv_fail(err, EIO, "expected exit %s, got INTERNAL_ERROR suberror %u",
			       exit_name(want), v->run->internal.suberror);
	return rv_fail(err, EIO, "expected exit %s, got %s (%u)", exit_name(want),
		       exit_name(v->run->exit_reason), v->run->exit_reason);
}

static int expect_io(struct vm *v, uint8_t dir, uint16_t port, struct rv_err *err)
{
	if (run_until(v, KVM_EXIT_IO, err) < 0)
		return -1;
	if (v->run->io.direction != dir || v->run->io.port != port || v->run->io.size != 1)
		return rv_fail(err, EIO, "expected 1-byte %s on port 0x%x, got %u-byte %s on 0x%x",
			       dir == KVM_EXIT_IO_OUT ? "OUT" : "IN", port, v->run->io.size,
			       v->run->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN",
			       v->run->io.port);
	return 0;
}

static uint8_t *io_byte(struct vm *v)
{
	return (uint8_t *)v->run + v->run->io.data_offset;
}

static int run_payload(struct vm *v, struct rv_err *err)
{
	if (vcpu_reset_real_mode(v, err) < 0 || expect_io(v, KVM_EXIT_IO_OUT, PORT_OUT, err) < 0)
		return -1;
	if (*io_byte(v) != 0x2a)
		return rv_fail(err, EIO, "first OUT carried 0x%02x, expected 0x2a", *io_byte(v));
	if (expect_io(v, KVM_EXIT_IO_IN, PORT_IN, err) < 0)
		return -1;
	*io_byte(v) = IN_VALUE;
	if (expect_io(v, KVM_EXIT_IO_OUT, PORT_OUT, err) < 0)
		return -1;
	if (*io_byte(v) != IN_VALUE + 1)
		return rv_fail(err, EIO, "guest computed 0x%02x from IN 0x%02x, expected 0x%02x",
			       *io_byte(v), IN_VALUE, IN_VALUE + 1);
	if (run_until(v, KVM_EXIT_MMIO, err) < 0)
		return -1;
	if (!v->run->mmio.is_write || v->run->mmio.phys_addr != MMIO_GPA ||
	    v->run->mmio.len != 1 || v->run->mmio.data[0] != IN_VALUE + 1)
		return rv_fail(err, EIO, "unexpected MMIO %s of %u bytes at 0x%llx",
			       v->run->mmio.is_write ? "write" : "read", v->run->mmio.len,
			       (unsigned long long)v->run->mmio.phys_addr);
	return run_until(v, KVM_EXIT_HLT, err);
}

int main(void)
{
	struct kvm_host host;
	struct rv_err err = { 0 };
	struct vm v = { .kvm = -1, .vm = -1, .vcpu = -1 };

	kvm_host_detect("/", &host);
	if (!host.dev_present || host.dev_errno) {
		printf("kvm-selfcheck: NOT RUN: no usable /dev/kvm here (backend %s, %s)\n",
		       kvm_backend_name(host.backend),
		       host.dev_present ? strerror(host.dev_errno) : "device absent");
		return EXIT_NOT_RUN;
	}
	int rc = vm_create(&v, &err) < 0 ? -1 : run_payload(&v, &err);
	vm_destroy(&v);
	if (rc < 0) {
		printf("kvm-selfcheck: FAILED on %s: %s\n", kvm_backend_name(host.backend), err.msg);
		return 1;
	}
	printf("kvm-selfcheck: ok on %s (API %d): OUT 0x2a, IN 0x%02x, OUT 0x%02x, MMIO write, HLT\n",
	       kvm_backend_name(host.backend), host.api_version, IN_VALUE, IN_VALUE + 1);
	return 0;
}
