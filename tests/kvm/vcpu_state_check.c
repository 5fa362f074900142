/* KVM check of a saved vCPU (vmm/x86/vcpu_state.h; DESIGN §10, layer 5): a
 * template clone's machine state put into a second VM on this machine's
 * /dev/kvm must go on exactly where the first stopped. One vCPU in real
 * mode, VMs made as the VMM makes them (kvm_create_vm: in-kernel irqchip
 * and PIT, which x86_vm_state_save reads; they change nothing for a payload
 * that only does port I/O with interrupts off), a payload that leaves state
 * in registers, flags, the stack and RAM before its first exit and uses all
 * of it after:
 *
 *   mov al, 0x2a ; mov bx, 0x1234 ; mov cx, 0x42 ; mov dx, 0xbeef ; push dx
 *   mov byte [0x1500], 7 ; stc
 *   out 0x10, al                        -> OUT 0x2a
 *   in al, 0x11                         -> IN, we answer 5: the template stops here
 *   adc al, 0 ; add al, bl ; add al, cl ; add al, [0x1500]
 *   out 0x10, al                        -> OUT 0x83       5 + CF + 0x34 + 0x42 + 7
 *   pop dx ; mov al, dl ; out 0x10, al  -> OUT 0xef
 *   mov al, dh ; out 0x10, al           -> OUT 0xbe
 *   mov [0x9000], al                    -> MMIO write 0xbe (no RAM there)
 *   out 0x12, al                        -> OUT on the done port
 *
 * (Not HLT at the end, as kvm-selfcheck: with the in-kernel irqchip KVM
 * halts the vCPU itself, and with interrupts off it would never wake.)
 *
 * The template VM serves the IN, then completes it as the VMM does before
 * a save (immediate_exit: KVM puts our answer in AL, steps past the IN and
 * returns EINTR without running the guest; an IN, because KVM completes it
 * at the next KVM_RUN whatever the backend, where an OUT may be finished
 * before the exit already), is saved (x86_vm_state_save, then
 * x86_vcpu_state_save) with its RAM, and runs on to the end as the
 * reference. A second VM gets the same CPUID and a copy of the RAM, is
 * restored, must read back the same vCPU state, and must make the same
 * exits from the sum on: never the IN again. Before the run, every other
 * area the save covers (FPU and AVX registers, XCR0, debug registers, MSRs,
 * the LAPIC, pending events, PIC, I/O APIC, PIT, KVM clock) is given a value
 * of ours, so that none reads back equal by being KVM's default in both
 * VMs; the clone's KVM clock and TSC must go on from the template's.
 *
 * Exit status: 0 passed, 1 failed, 77 not run (no usable /dev/kvm, or it
 * lacks what templates need: the reason is printed, naming the ioctl). */
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/snapbuf.h"
#include "vmm/kvm.h"
#include "vmm/kvm_host.h"
#include "vmm/x86/vcpu_state.h"

#define EXIT_NOT_RUN 77
#define GUEST_RAM_BYTES 0x2000
#define PAYLOAD_GPA 0x1000
#define STACK_TOP_GPA 0x1800
#define DATA_GPA 0x1500
#define MMIO_GPA 0x9000
#define PORT_OUT 0x10
#define PORT_IN 0x11
#define PORT_DONE 0x12
#define IN_VALUE 0x05
#define SAVED_RIP (PAYLOAD_GPA + 0x16)   /* just past the IN */
#define MSR_IA32_TSC 0x10u

static const uint8_t payload[] = {
	0xb0, 0x2a,                     /* mov al, 0x2a */
	0xbb, 0x34, 0x12,               /* mov bx, 0x1234 */
	0xb9, 0x42, 0x00,               /* mov cx, 0x0042 */
	0xba, 0xef, 0xbe,               /* mov dx, 0xbeef */
	0x52,                           /* push dx */
	0xc6, 0x06, 0x00, 0x15, 0x07,   /* mov byte [DATA_GPA], 7 */
	0xf9,                           /* stc */
	0xe6, PORT_OUT,                 /* out PORT_OUT, al             (0x12) */
	0xe4, PORT_IN,                  /* in al, PORT_IN               (0x14) */
	0x14, 0x00,                     /* adc al, 0                    (0x16) */
	0x00, 0xd8,                     /* add al, bl */
	0x00, 0xc8,                     /* add al, cl */
	0x02, 0x06, 0x00, 0x15,         /* add al, [DATA_GPA] */
	0xe6, PORT_OUT,                 /* out PORT_OUT, al */
	0x5a,                           /* pop dx */
	0x88, 0xd0,                     /* mov al, dl */
	0xe6, PORT_OUT,                 /* out PORT_OUT, al */
	0x88, 0xf0,                     /* mov al, dh */
	0xe6, PORT_OUT,                 /* out PORT_OUT, al */
	0xa2, 0x00, 0x90,               /* mov [MMIO_GPA], al */
	0xe6, PORT_DONE,                /* out PORT_DONE, al */
};

#define SUM_VALUE ((uint8_t)(IN_VALUE + 1 + 0x34 + 0x42 + 7))

struct vm {
	struct kvm kvm;
	int vcpu;
	struct kvm_run *run;
	uint8_t *ram;
};

/* A failure that says this /dev/kvm cannot do what is asked (as opposed to
 * doing it wrong): the check is then not run, with the reason. */
static bool not_supported(int code)
{
	return code == ENOTTY || code == ENOSYS || code == EOPNOTSUPP || code == ENOTSUP;
}

static int vm_create(struct vm *v, const uint8_t *image, struct rv_err *err)
{
	if (kvm_open(&v->kvm, -1, err) < 0 || kvm_create_vm(&v->kvm, err) < 0)
		return -1;
	v->ram = mmap(NULL, GUEST_RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (v->ram == MAP_FAILED) {
		v->ram = NULL;
		return rv_fail(err, errno, "map guest RAM");
	}
	memcpy(v->ram, image, GUEST_RAM_BYTES);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_RAM_BYTES,
		.userspace_addr = (uintptr_t)v->ram,
	};
	if (ioctl(v->kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return rv_fail(err, errno, "KVM_SET_USER_MEMORY_REGION");
	v->vcpu = ioctl(v->kvm.vm_fd, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		return rv_fail(err, errno, "KVM_CREATE_VCPU");
	/* Both VMs see the same CPUID, as a clone made on the template's host. */
	if (ioctl(v->vcpu, KVM_SET_CPUID2, v->kvm.cpuid) < 0)
		return rv_fail(err, errno, "KVM_SET_CPUID2");
	v->run = mmap(NULL, (size_t)v->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return rv_fail(err, errno, "map kvm_run");
	}
	return 0;
}

static void vm_destroy(struct vm *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->kvm.run_size);
	if (v->ram)
		munmap(v->ram, GUEST_RAM_BYTES);
	if (v->vcpu >= 0)
		close(v->vcpu);
	kvm_close(&v->kvm);
}

static int vcpu_reset_real_mode(struct vm *v, struct rv_err *err)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = PAYLOAD_GPA, .rsp = STACK_TOP_GPA, .rflags = 0x2 };

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_GET_SREGS");
	sregs.cs.base = sregs.ds.base = sregs.ss.base = 0;
	sregs.cs.selector = sregs.ds.selector = sregs.ss.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_SET_SREGS");
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		return rv_fail(err, errno, "KVM_SET_REGS");
	return 0;
}

static uint8_t *io_byte(struct vm *v)
{
	return (uint8_t *)v->run + v->run->io.data_offset;
}

/* One exit, in words, for messages: "OUT 0x10 0x2a", "MMIO write 0x9000". */
static void describe_exit(struct vm *v, char *buf, size_t size)
{
	const struct kvm_run *r = v->run;

	if (r->exit_reason == KVM_EXIT_IO)
		snprintf(buf, size, "%s 0x%x 0x%02x (%u bytes)",
			 r->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN", r->io.port, *io_byte(v),
			 r->io.size);
	else if (r->exit_reason == KVM_EXIT_MMIO)
		snprintf(buf, size, "MMIO %s 0x%llx 0x%02x", r->mmio.is_write ? "write" : "read",
			 (unsigned long long)r->mmio.phys_addr, r->mmio.data[0]);
	else if (r->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		snprintf(buf, size, "INTERNAL_ERROR suberror %u", r->internal.suberror);
	else
		snprintf(buf, size, "exit reason %u", r->exit_reason);
}

static int expect_io(struct vm *v, const char *who, uint8_t dir, uint16_t port, int value,
		     struct rv_err *err)
{
	char got[96];

	if (ioctl(v->vcpu, KVM_RUN, 0) < 0)
		return rv_fail(err, errno, "%s: KVM_RUN", who);
	describe_exit(v, got, sizeof(got));
	if (v->run->exit_reason != KVM_EXIT_IO || v->run->io.direction != dir ||
	    v->run->io.port != port || v->run->io.size != 1 ||
	    (value >= 0 && *io_byte(v) != value))
		return rv_failx(err, EIO, "%s: expected %s 0x%x%s, got %s", who,
				dir == KVM_EXIT_IO_OUT ? "OUT" : "IN", port,
				value >= 0 ? " with the computed value" : "", got);
	if (dir == KVM_EXIT_IO_IN)
		*io_byte(v) = IN_VALUE;
	return 0;
}

/* Everything after the IN: what both VMs must do alike. */
static int run_rest(struct vm *v, const char *who, struct rv_err *err)
{
	char got[96];

	if (expect_io(v, who, KVM_EXIT_IO_OUT, PORT_OUT, SUM_VALUE, err) < 0 ||
	    expect_io(v, who, KVM_EXIT_IO_OUT, PORT_OUT, 0xef, err) < 0 ||
	    expect_io(v, who, KVM_EXIT_IO_OUT, PORT_OUT, 0xbe, err) < 0)
		return -1;
	if (ioctl(v->vcpu, KVM_RUN, 0) < 0)
		return rv_fail(err, errno, "%s: KVM_RUN", who);
	describe_exit(v, got, sizeof(got));
	if (v->run->exit_reason != KVM_EXIT_MMIO || !v->run->mmio.is_write ||
	    v->run->mmio.phys_addr != MMIO_GPA || v->run->mmio.len != 1 || v->run->mmio.data[0] != 0xbe)
		return rv_failx(err, EIO, "%s: expected MMIO write 0x%x 0xbe, got %s", who, MMIO_GPA, got);
	return expect_io(v, who, KVM_EXIT_IO_OUT, PORT_DONE, 0xbe, err);
}

/* What the VMM does before a save: the IN just served is completed by a
 * KVM_RUN that KVM ends at once (EINTR) instead of entering the guest.
 * *pending_rip: where the vCPU was before, for the report. */
static int complete_pending_io(struct vm *v, uint64_t *pending_rip, struct rv_err *err)
{
	struct kvm_regs regs;
	char got[96];

	if (ioctl(v->vcpu, KVM_GET_REGS, &regs) < 0)
		return rv_fail(err, errno, "KVM_GET_REGS");
	*pending_rip = regs.rip;
	v->run->immediate_exit = 1;
	int rc = ioctl(v->vcpu, KVM_RUN, 0);
	int code = errno;
	v->run->immediate_exit = 0;
	if (rc == 0) {
		describe_exit(v, got, sizeof(got));
		return rv_failx(err, EIO, "KVM_RUN with immediate_exit entered the guest: %s", got);
	}
	if (code != EINTR)
		return rv_fail(err, code, "KVM_RUN with immediate_exit");
	if (ioctl(v->vcpu, KVM_GET_REGS, &regs) < 0)
		return rv_fail(err, errno, "KVM_GET_REGS");
	if (regs.rip != SAVED_RIP || (uint8_t)regs.rax != IN_VALUE)
		return rv_failx(err, EIO, "after KVM_RUN with immediate_exit the vCPU is at 0x%llx "
				"with al 0x%02x, not at 0x%x with al 0x%02x: the IN was not completed",
				(unsigned long long)regs.rip, (uint8_t)regs.rax, SAVED_RIP, IN_VALUE);
	return 0;
}

/* When a save fails: which of its ioctls this KVM refuses, by name (the
 * save's own error says only what it was reading). */
static void name_refused_ioctls(struct vm *v, char *buf, size_t size)
{
	static struct kvm_xsave xsave;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct kvm_irqchip chip = { .chip_id = 0 };
	const struct { const char *name; int fd; unsigned long req; void *arg; } probes[] = {
		{ "KVM_GET_PIT2", v->kvm.vm_fd, KVM_GET_PIT2, &pit },
		{ "KVM_GET_CLOCK", v->kvm.vm_fd, KVM_GET_CLOCK, &clock },
		{ "KVM_GET_IRQCHIP", v->kvm.vm_fd, KVM_GET_IRQCHIP, &chip },
		{ "KVM_GET_MP_STATE", v->vcpu, KVM_GET_MP_STATE, &mp },
		{ "KVM_GET_REGS", v->vcpu, KVM_GET_REGS, &regs },
		{ "KVM_GET_SREGS", v->vcpu, KVM_GET_SREGS, &sregs },
		{ "KVM_GET_XSAVE", v->vcpu, KVM_GET_XSAVE, &xsave },
		{ "KVM_GET_XCRS", v->vcpu, KVM_GET_XCRS, &xcrs },
		{ "KVM_GET_DEBUGREGS", v->vcpu, KVM_GET_DEBUGREGS, &dregs },
		{ "KVM_GET_LAPIC", v->vcpu, KVM_GET_LAPIC, &lapic },
		{ "KVM_GET_VCPU_EVENTS", v->vcpu, KVM_GET_VCPU_EVENTS, &events },
	};
	size_t n = 0;

	buf[0] = '\0';
	memset(&clock, 0, sizeof(clock));
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]) && n < size; i++)
		if (ioctl(probes[i].fd, probes[i].req, probes[i].arg) < 0)
			n += (size_t)snprintf(buf + n, size - n, "%s%s (%s)", n ? ", " : "",
					      probes[i].name, strerror(errno));
}

/* --- state the payload does not touch: given to the template by the host ----- */

/* Each area the save covers holds a value of ours in the template, not
 * KVM's default, so that a record saved or restored wrongly cannot read
 * back equal by luck (two default states). */
#define MSR_SYSENTER_ESP 0x175u
#define MSR_STAR 0xc0000081u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define LAPIC_LVT_TIMER 0x320u
#define LAPIC_TIMER_DIVIDE 0x3e0u
#define PIC_MASTER 0u
#define IOAPIC 2u
#define IOAPIC_PIN 3u

static int get_msr(struct vm *v, uint32_t index, uint64_t *val, struct rv_err *err)
{
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} one = { .hdr = { .nmsrs = 1 } };

	one.hdr.entries[0].index = index;
	if (ioctl(v->vcpu, KVM_GET_MSRS, &one) != 1)
		return rv_fail(err, errno, "KVM_GET_MSRS 0x%x", index);
	*val = one.hdr.entries[0].data;
	return 0;
}

static const struct kvm_msr_entry distinct_msrs[] = {
	{ .index = MSR_SYSENTER_ESP, .data = 0x12345000ull },
	{ .index = MSR_STAR, .data = 0x0023001000000000ull },
	{ .index = MSR_KERNEL_GS_BASE, .data = 0xffff888000001000ull },
};
#define NDISTINCT_MSRS (sizeof(distinct_msrs) / sizeof(distinct_msrs[0]))
#define DISTINCT_DR(i) (0x1111ull * ((i) + 1))
#define DISTINCT_MXCSR 0x7f80u              /* round toward zero */
#define DISTINCT_FCW 0x027fu                /* 53-bit precision */
/* The XSAVE image as KVM's uABI lays it out (standard format). */
#define XSAVE_FCW_OFF 0u
#define XSAVE_MXCSR_OFF 24u
#define XSAVE_XMM_OFF 160u
#define XSAVE_BV_OFF 512u
#define XSAVE_YMMH_OFF 576u
#define XSAVE_VEC_BYTES 256u                /* 16 registers of 16 bytes */
#define XFEATURE_X87_SSE 0x3u
#define XFEATURE_AVX 0x4u
/* Not the TPR: KVM_SET_SREGS carries it too, as CR8. */
#define DISTINCT_LVT_TIMER 0x000100ecu     /* masked, vector 0xec */
#define DISTINCT_TIMER_DIVIDE 0xbu         /* divide by 1 */
#define DISTINCT_PIC_IMR 0xfau
#define DISTINCT_PIT_COUNT 0x4321u           /* channel 2 (gated off): never counts */
#define DISTINCT_PIT_MODE 3u
#define DISTINCT_CLOCK_NS (1000ull * 1000000000ull)   /* the template has run 1000 s */
#define TIME_SLACK_S 60ull
#define DISTINCT_IOAPIC_RTE 0x1000000000010031ull   /* masked, vector 0x31, dest 0x10 */

/* Byte i of the xmm registers (0x40...) or of the upper ymm halves (0x80...). */
static uint8_t vec_byte(uint8_t base, unsigned i)
{
	return (uint8_t)(base + i);
}

/* XCR0 the guest's CPUID allows (leaf 0xd, which KVM checks XCR0 against):
 * x87 and SSE, AVX when there; 0 without the leaf. (kvm_pvm lists the leaf
 * but not the XSAVE bit of leaf 1.) */
static uint64_t distinct_xcr0(const struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function == 0xd && e->index == 0 && (e->eax & XFEATURE_X87_SSE) == XFEATURE_X87_SSE)
			return e->eax & (XFEATURE_X87_SSE | XFEATURE_AVX);
	}
	return 0;
}

/* Not KVM_SET_FPU: it writes the legacy area without marking it in use in
 * the XSAVE header, so KVM_GET_XSAVE would still say "initial state". */
static int give_distinct_fpu(struct vm *v, uint64_t xcr0, struct rv_err *err)
{
	static struct kvm_xsave xsave;
	uint8_t *x = (uint8_t *)xsave.region;
	uint16_t fcw = DISTINCT_FCW;
	uint32_t mxcsr = DISTINCT_MXCSR;
	uint64_t bv;

	if (ioctl(v->vcpu, KVM_GET_XSAVE, &xsave) < 0)
		return rv_fail(err, errno, "KVM_GET_XSAVE");
	memcpy(x + XSAVE_FCW_OFF, &fcw, sizeof(fcw));
	memcpy(x + XSAVE_MXCSR_OFF, &mxcsr, sizeof(mxcsr));
	for (unsigned i = 0; i < XSAVE_VEC_BYTES; i++)
		x[XSAVE_XMM_OFF + i] = vec_byte(0x40, i);
	memcpy(&bv, x + XSAVE_BV_OFF, sizeof(bv));
	bv |= XFEATURE_X87_SSE;
	if (xcr0 & XFEATURE_AVX) {
		for (unsigned i = 0; i < XSAVE_VEC_BYTES; i++)
			x[XSAVE_YMMH_OFF + i] = vec_byte(0x80, i);
		bv |= XFEATURE_AVX;
	}
	memcpy(x + XSAVE_BV_OFF, &bv, sizeof(bv));
	if (ioctl(v->vcpu, KVM_SET_XSAVE, &xsave) < 0)
		return rv_fail(err, errno, "KVM_SET_XSAVE");
	return 0;
}

static int check_distinct_fpu(struct vm *v, uint64_t xcr0, struct rv_err *err)
{
	static struct kvm_xsave xsave;
	const uint8_t *x = (const uint8_t *)xsave.region;
	uint16_t fcw;
	uint32_t mxcsr;

	if (ioctl(v->vcpu, KVM_GET_XSAVE, &xsave) < 0)
		return rv_fail(err, errno, "KVM_GET_XSAVE");
	memcpy(&fcw, x + XSAVE_FCW_OFF, sizeof(fcw));
	memcpy(&mxcsr, x + XSAVE_MXCSR_OFF, sizeof(mxcsr));
	if (fcw != DISTINCT_FCW || mxcsr != DISTINCT_MXCSR)
		return rv_failx(err, EIO, "the clone's FPU has fcw 0x%x mxcsr 0x%x, the template's "
				"0x%x 0x%x", fcw, mxcsr, DISTINCT_FCW, DISTINCT_MXCSR);
	for (unsigned i = 0; i < XSAVE_VEC_BYTES; i++)
		if (x[XSAVE_XMM_OFF + i] != vec_byte(0x40, i))
			return rv_failx(err, EIO, "the clone's xmm%u byte %u is 0x%02x, the template's "
					"0x%02x", i / 16, i % 16, x[XSAVE_XMM_OFF + i], vec_byte(0x40, i));
	for (unsigned i = 0; (xcr0 & XFEATURE_AVX) && i < XSAVE_VEC_BYTES; i++)
		if (x[XSAVE_YMMH_OFF + i] != vec_byte(0x80, i))
			return rv_failx(err, EIO, "the clone's ymm%u byte %u is 0x%02x, the template's "
					"0x%02x", i / 16, 16 + i % 16, x[XSAVE_YMMH_OFF + i],
					vec_byte(0x80, i));
	return 0;
}

static int give_distinct_state(struct vm *v, struct rv_err *err)
{
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_irqchip pic = { .chip_id = PIC_MASTER }, ioapic = { .chip_id = IOAPIC };
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(distinct_msrs)];
	} msrs = { .hdr = { .nmsrs = NDISTINCT_MSRS } };
	uint64_t xcr0 = distinct_xcr0(v->kvm.cpuid);

	if (xcr0) {
		struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = xcr0 } } };
		if (ioctl(v->vcpu, KVM_SET_XCRS, &xcrs) < 0)
			return rv_fail(err, errno, "KVM_SET_XCRS 0x%llx", (unsigned long long)xcr0);
	}
	if (give_distinct_fpu(v, xcr0, err) < 0)
		return -1;
	if (ioctl(v->vcpu, KVM_GET_DEBUGREGS, &dregs) < 0)
		return rv_fail(err, errno, "KVM_GET_DEBUGREGS");
	for (unsigned i = 0; i < 4; i++)
		dregs.db[i] = DISTINCT_DR(i);   /* DR7 enables none of them */
	if (ioctl(v->vcpu, KVM_SET_DEBUGREGS, &dregs) < 0)
		return rv_fail(err, errno, "KVM_SET_DEBUGREGS");
	memcpy(msrs.hdr.entries, distinct_msrs, sizeof(distinct_msrs));
	int set = ioctl(v->vcpu, KVM_SET_MSRS, &msrs);
	if (set != (int)NDISTINCT_MSRS)
		return rv_fail(err, set < 0 ? errno : EINVAL, "KVM_SET_MSRS set %d of %zu", set,
			       NDISTINCT_MSRS);
	if (ioctl(v->vcpu, KVM_GET_LAPIC, &lapic) < 0)
		return rv_fail(err, errno, "KVM_GET_LAPIC");
	uint32_t lvt = DISTINCT_LVT_TIMER, divide = DISTINCT_TIMER_DIVIDE;
	memcpy(&lapic.regs[LAPIC_LVT_TIMER], &lvt, sizeof(lvt));
	memcpy(&lapic.regs[LAPIC_TIMER_DIVIDE], &divide, sizeof(divide));
	if (ioctl(v->vcpu, KVM_SET_LAPIC, &lapic) < 0)
		return rv_fail(err, errno, "KVM_SET_LAPIC");
	if (ioctl(v->vcpu, KVM_GET_VCPU_EVENTS, &events) < 0)
		return rv_fail(err, errno, "KVM_GET_VCPU_EVENTS");
	events.nmi.masked = 1;
	events.flags = 0;
	if (ioctl(v->vcpu, KVM_SET_VCPU_EVENTS, &events) < 0)
		return rv_fail(err, errno, "KVM_SET_VCPU_EVENTS");
	if (ioctl(v->kvm.vm_fd, KVM_GET_IRQCHIP, &pic) < 0 ||
	    ioctl(v->kvm.vm_fd, KVM_GET_IRQCHIP, &ioapic) < 0)
		return rv_fail(err, errno, "KVM_GET_IRQCHIP");
	pic.chip.pic.imr = DISTINCT_PIC_IMR;
	ioapic.chip.ioapic.redirtbl[IOAPIC_PIN].bits = DISTINCT_IOAPIC_RTE;
	if (ioctl(v->kvm.vm_fd, KVM_SET_IRQCHIP, &pic) < 0 ||
	    ioctl(v->kvm.vm_fd, KVM_SET_IRQCHIP, &ioapic) < 0)
		return rv_fail(err, errno, "KVM_SET_IRQCHIP");
	struct kvm_pit_state2 pit;
	if (ioctl(v->kvm.vm_fd, KVM_GET_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_GET_PIT2");
	pit.channels[2].count = DISTINCT_PIT_COUNT;
	pit.channels[2].mode = DISTINCT_PIT_MODE;
	pit.channels[2].gate = 0;
	if (ioctl(v->kvm.vm_fd, KVM_SET_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_SET_PIT2");
	struct kvm_clock_data clock = { .clock = DISTINCT_CLOCK_NS };
	if (ioctl(v->kvm.vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return rv_fail(err, errno, "KVM_SET_CLOCK");
	return 0;
}

/* The clone holds every value give_distinct_state put in the template. */
static int check_distinct_state(struct vm *v, struct rv_err *err)
{
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_irqchip pic = { .chip_id = PIC_MASTER }, ioapic = { .chip_id = IOAPIC };
	uint64_t xcr0 = distinct_xcr0(v->kvm.cpuid);

	if (check_distinct_fpu(v, xcr0, err) < 0)
		return -1;
	if (xcr0) {
		if (ioctl(v->vcpu, KVM_GET_XCRS, &xcrs) < 0)
			return rv_fail(err, errno, "KVM_GET_XCRS");
		if (xcrs.nr_xcrs < 1 || xcrs.xcrs[0].xcr != 0 || xcrs.xcrs[0].value != xcr0)
			return rv_failx(err, EIO, "the clone's XCR0 is 0x%llx, the template's 0x%llx",
					(unsigned long long)xcrs.xcrs[0].value, (unsigned long long)xcr0);
	}
	if (ioctl(v->vcpu, KVM_GET_DEBUGREGS, &dregs) < 0)
		return rv_fail(err, errno, "KVM_GET_DEBUGREGS");
	for (unsigned i = 0; i < 4; i++)
		if (dregs.db[i] != DISTINCT_DR(i))
			return rv_failx(err, EIO, "the clone's DR%u is 0x%llx, the template's 0x%llx",
					i, (unsigned long long)dregs.db[i],
					(unsigned long long)DISTINCT_DR(i));
	for (size_t i = 0; i < NDISTINCT_MSRS; i++) {
		uint64_t val;
		if (get_msr(v, distinct_msrs[i].index, &val, err) < 0)
			return -1;
		if (val != distinct_msrs[i].data)
			return rv_failx(err, EIO, "the clone's MSR 0x%x is 0x%llx, the template's 0x%llx",
					distinct_msrs[i].index, (unsigned long long)val,
					(unsigned long long)distinct_msrs[i].data);
	}
	if (ioctl(v->vcpu, KVM_GET_LAPIC, &lapic) < 0)
		return rv_fail(err, errno, "KVM_GET_LAPIC");
	uint32_t lvt, divide;
	memcpy(&lvt, &lapic.regs[LAPIC_LVT_TIMER], sizeof(lvt));
	memcpy(&divide, &lapic.regs[LAPIC_TIMER_DIVIDE], sizeof(divide));
	if (lvt != DISTINCT_LVT_TIMER || divide != DISTINCT_TIMER_DIVIDE)
		return rv_failx(err, EIO, "the clone's APIC timer LVT 0x%x divide 0x%x, the "
				"template's 0x%x 0x%x", lvt, divide, DISTINCT_LVT_TIMER,
				DISTINCT_TIMER_DIVIDE);
	if (ioctl(v->vcpu, KVM_GET_VCPU_EVENTS, &events) < 0)
		return rv_fail(err, errno, "KVM_GET_VCPU_EVENTS");
	if (!events.nmi.masked)
		return rv_failx(err, EIO, "the clone's NMIs are not masked, the template's were");
	if (ioctl(v->kvm.vm_fd, KVM_GET_IRQCHIP, &pic) < 0 ||
	    ioctl(v->kvm.vm_fd, KVM_GET_IRQCHIP, &ioapic) < 0)
		return rv_fail(err, errno, "KVM_GET_IRQCHIP");
	if (pic.chip.pic.imr != DISTINCT_PIC_IMR)
		return rv_failx(err, EIO, "the clone's PIC mask is 0x%02x, the template's 0x%02x",
				pic.chip.pic.imr, DISTINCT_PIC_IMR);
	if (ioapic.chip.ioapic.redirtbl[IOAPIC_PIN].bits != DISTINCT_IOAPIC_RTE)
		return rv_failx(err, EIO, "the clone's I/O APIC pin %u is 0x%llx, the template's "
				"0x%llx", IOAPIC_PIN,
				(unsigned long long)ioapic.chip.ioapic.redirtbl[IOAPIC_PIN].bits,
				(unsigned long long)DISTINCT_IOAPIC_RTE);
	struct kvm_pit_state2 pit;
	if (ioctl(v->kvm.vm_fd, KVM_GET_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_GET_PIT2");
	if (pit.channels[2].count != DISTINCT_PIT_COUNT || pit.channels[2].mode != DISTINCT_PIT_MODE)
		return rv_failx(err, EIO, "the clone's PIT channel 2 has count 0x%x mode %u, the "
				"template's 0x%x %u", pit.channels[2].count, pit.channels[2].mode,
				DISTINCT_PIT_COUNT, DISTINCT_PIT_MODE);
	return 0;
}

#include "tests/kvm/state_compare.h"

/* The vCPU records begin after the VM's (PIT, clock, three irqchips). */
#define VM_RECORDS 5

static const struct record *find_record(const struct record *r, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].tag == tag)
			return &r[i];
	return NULL;
}

/* The clone's clocks go on from the template's: the KVM clock and the TSC
 * read no less than saved, and not more than TIME_SLACK_S later. */
static int check_time_went_on(struct vm *v, const struct snapbuf *saved, struct rv_err *err)
{
	struct record recs[MAX_RECORDS];
	size_t n = split_records(saved, recs, MAX_RECORDS);
	const struct record *clck = find_record(recs, n, SNAP_TAG('c', 'l', 'c', 'k'));
	const struct record *msrs = find_record(recs, n, SNAP_TAG('m', 's', 'r', 's'));
	struct kvm_clock_data then, now;

	if (!clck || clck->len != sizeof(then) || !msrs)
		return rv_failx(err, EIO, "the saved state has no clock or MSR record");
	memcpy(&then, clck->data, sizeof(then));
	if (ioctl(v->kvm.vm_fd, KVM_GET_CLOCK, &now) < 0)
		return rv_fail(err, errno, "KVM_GET_CLOCK");
	if (then.clock < DISTINCT_CLOCK_NS || now.clock < then.clock ||
	    now.clock - then.clock > TIME_SLACK_S * 1000000000ull)
		return rv_failx(err, EIO, "the clone's KVM clock reads %llu ns, the template's was "
				"%llu", (unsigned long long)now.clock, (unsigned long long)then.clock);
	for (size_t i = 0; i < msrs->len / sizeof(struct kvm_msr_entry); i++) {
		struct kvm_msr_entry e = record_msr(msrs, i);
		if (e.index != MSR_IA32_TSC)
			continue;
		uint64_t tsc;
		if (get_msr(v, MSR_IA32_TSC, &tsc, err) < 0)
			return -1;
		int khz = ioctl(v->vcpu, KVM_GET_TSC_KHZ, 0);
		if (tsc < e.data ||
		    (khz > 0 && tsc - e.data > TIME_SLACK_S * 1000ull * (uint64_t)khz))
			return rv_failx(err, EIO, "the clone's TSC reads %llu, the template's was %llu "
					"(%d kHz)", (unsigned long long)tsc, (unsigned long long)e.data,
					khz);
		return 0;
	}
	return rv_failx(err, EIO, "the saved MSRs have no TSC");
}

/* What the run found, for the closing line. */
struct outcome {
	uint64_t pending_rip, xcr0;
	size_t state_bytes, nmsrs;
};

static int check(struct outcome *o, struct rv_err *err, bool *not_run)
{
	static uint8_t image[GUEST_RAM_BYTES];
	struct vm tpl = { .vcpu = -1, .kvm = { .sys_fd = -1, .vm_fd = -1 } };
	struct vm cln = tpl;
	struct snapbuf saved = { 0 }, readback = { 0 };
	struct kvm_regs regs_saved, regs_restored;
	char refused[512];
	int rc = -1;

	memcpy(image + PAYLOAD_GPA, payload, sizeof(payload));
	if (vm_create(&tpl, image, err) < 0) {
		*not_run = not_supported(err->code);
		goto out;
	}
	if (vcpu_reset_real_mode(&tpl, err) < 0 || give_distinct_state(&tpl, err) < 0) {
		*not_run = not_supported(err->code);
		goto out;
	}
	if (expect_io(&tpl, "template", KVM_EXIT_IO_OUT, PORT_OUT, 0x2a, err) < 0 ||
	    expect_io(&tpl, "template", KVM_EXIT_IO_IN, PORT_IN, -1, err) < 0 ||
	    complete_pending_io(&tpl, &o->pending_rip, err) < 0)
		goto out;
	if (x86_vm_state_save(tpl.kvm.vm_fd, &saved, err) < 0 ||
	    x86_vcpu_state_save(tpl.kvm.sys_fd, tpl.vcpu, 0, &saved, err) < 0 ||
	    snapbuf_check(&saved, err) < 0) {
		name_refused_ioctls(&tpl, refused, sizeof(refused));
		*not_run = not_supported(err->code);
		rv_wrap(err, "save (refused here: %s)", refused[0] ? refused : "none alone");
		goto out;
	}
	if (ioctl(tpl.vcpu, KVM_GET_REGS, &regs_saved) < 0) {
		rv_fail(err, errno, "KVM_GET_REGS");
		goto out;
	}
	memcpy(image, tpl.ram, GUEST_RAM_BYTES);
	struct record recs[MAX_RECORDS];
	size_t nrecs = split_records(&saved, recs, MAX_RECORDS);
	const struct record *msrs = find_record(recs, nrecs, SNAP_TAG('m', 's', 'r', 's'));
	o->nmsrs = msrs ? msrs->len / sizeof(struct kvm_msr_entry) : 0;
	o->state_bytes = saved.len;
	o->xcr0 = distinct_xcr0(tpl.kvm.cpuid);
	/* The template goes on, undisturbed by the save: the reference. */
	if (run_rest(&tpl, "template after the save", err) < 0)
		goto out;

	struct snapreader r = { .data = saved.data, .len = saved.len };
	if (vm_create(&cln, image, err) < 0 || x86_vm_state_restore(cln.kvm.vm_fd, &r, err) < 0 ||
	    x86_vcpu_state_restore(cln.vcpu, 0, &r, err) < 0 || snapreader_end(&r, err) < 0) {
		*not_run = not_supported(err->code);
		rv_wrap(err, "restore");
		goto out;
	}
	if (ioctl(cln.vcpu, KVM_GET_REGS, &regs_restored) < 0) {
		rv_fail(err, errno, "KVM_GET_REGS");
		goto out;
	}
	if (compare_regs(&regs_saved, &regs_restored, err) < 0)
		goto out;
	if (check_distinct_state(&cln, err) < 0 || check_time_went_on(&cln, &saved, err) < 0)
		goto out;
	if (x86_vcpu_state_save(cln.kvm.sys_fd, cln.vcpu, 0, &readback, err) < 0 ||
	    snapbuf_check(&readback, err) < 0 ||
	    compare_vcpu_state(&saved, VM_RECORDS, &readback, err) < 0) {
		rv_wrap(err, "the clone's vCPU read back");
		goto out;
	}
	rc = run_rest(&cln, "clone", err);
out:
	snapbuf_free(&saved);
	snapbuf_free(&readback);
	vm_destroy(&cln);
	vm_destroy(&tpl);
	return rc;
}

int main(void)
{
	struct kvm_host host;
	struct rv_err err = { 0 };
	bool not_run = false;
	struct outcome o = { 0 };

	kvm_host_detect("/", &host);
	const char *backend = kvm_backend_name(host.backend);
	if (!host.dev_present || host.dev_errno) {
		printf("kvm-vcpu-state: NOT RUN: no usable /dev/kvm here (backend %s, %s)\n", backend,
		       host.dev_present ? strerror(host.dev_errno) : "device absent");
		return EXIT_NOT_RUN;
	}
	if (check(&o, &err, &not_run) < 0) {
		if (not_run) {
			printf("kvm-vcpu-state: NOT RUN: %s cannot save or restore a vCPU: %s\n",
			       backend, err.msg);
			return EXIT_NOT_RUN;
		}
		printf("kvm-vcpu-state: FAILED on %s: %s\n", backend, err.msg);
		return 1;
	}
	printf("kvm-vcpu-state: ok on %s: IN 0x%02x pending at rip 0x%llx, completed by an "
	       "immediate exit (EINTR) and saved at rip 0x%x (%zu bytes of state, %zu MSRs, XCR0 "
	       "0x%llx); the clone read back the same vCPU state and went on: OUT 0x%02x, OUT 0xef, "
	       "OUT 0xbe, MMIO write, done\n", backend, IN_VALUE, (unsigned long long)o.pending_rip,
	       SAVED_RIP, o.state_bytes, o.nmsrs, (unsigned long long)o.xcr0, SUM_VALUE);
	return 0;
}
