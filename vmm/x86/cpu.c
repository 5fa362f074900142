#include "vmm/x86/cpu.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/x86/layout.h"

#define GDT_CODE32 0x00cf9b000000ffffull    /* flat 4 GiB, execute/read, 32-bit */
#define GDT_CODE64 0x00af9b000000ffffull    /* long-mode code */
#define GDT_DATA   0x00cf93000000ffffull    /* flat 4 GiB, read/write */
#define GDT_TSS    0x008f8b000000ffffull    /* busy 32-bit TSS, as PVH asks */
#define GDT_ENTRIES 5
#define SEL_CODE 2                           /* __BOOT_CS = 0x10 */
#define SEL_DATA 3                           /* __BOOT_DS = 0x18 */
#define SEL_TSS  4

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define PTE_PRESENT_RW 0x3ull
#define PDE_2M_PAGE 0x83ull
#define PAGE_TABLE_ENTRIES 512
#define IDENTITY_MAP_GIB 4

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_TSC          0x10
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102
#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE_WRITEBACK ((1ull << 11) | 6)

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

struct kvm_segment x86_segment_from_gdt(uint64_t d, unsigned index)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	bool gran = (d >> 55) & 1;
	return (struct kvm_segment){
		.base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)),
		.limit = gran ? (limit << 12) | 0xfff : limit,
		.selector = (uint16_t)(index * 8),
		.type = (d >> 40) & 0xf,
		.s = (d >> 44) & 1,
		.dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1,
		.avl = (d >> 52) & 1,
		.l = (d >> 53) & 1,
		.db = (d >> 54) & 1,
		.g = gran,
		.unusable = !((d >> 47) & 1),
	};
}

static void gdt_for(enum kernel_format fmt, uint64_t gdt[GDT_ENTRIES])
{
	memset(gdt, 0, GDT_ENTRIES * sizeof(gdt[0]));
	gdt[SEL_CODE] = fmt == KERNEL_ELF_PVH ? GDT_CODE32 : GDT_CODE64;
	gdt[SEL_DATA] = GDT_DATA;
	gdt[SEL_TSS] = GDT_TSS;
}

int x86_write_boot_tables(const struct guest_mem *mem, enum kernel_format fmt, struct rv_err *err)
{
	uint64_t *gdt = guest_mem_slice(mem, BOOT_GDT_GPA, GDT_ENTRIES * 8);
	uint64_t *pml4 = guest_mem_slice(mem, PML4_GPA, 4096);
	uint64_t *pdpt = guest_mem_slice(mem, PDPT_GPA, 4096);
	uint64_t *pd = guest_mem_slice(mem, PD_GPA, IDENTITY_MAP_GIB * 4096);

	if (!gdt || !pml4 || !pdpt || !pd)
		return rv_failx(err, ENOMEM, "guest RAM too small for boot tables");
	gdt_for(fmt, gdt);
	if (fmt == KERNEL_ELF_PVH)
		return 0;
	/* Identity-map the first 4 GiB with 2 MiB pages: the 64-bit entry needs the
	 * kernel, zero page, command line and initrd mapped, all below 4 GiB. */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = PDPT_GPA | PTE_PRESENT_RW;
	for (unsigned g = 0; g < IDENTITY_MAP_GIB; g++) {
		pdpt[g] = (PD_GPA + g * 4096ull) | PTE_PRESENT_RW;
		for (unsigned i = 0; i < PAGE_TABLE_ENTRIES; i++)
			pd[g * PAGE_TABLE_ENTRIES + i] =
				((uint64_t)(g * PAGE_TABLE_ENTRIES + i) << 21) | PDE_2M_PAGE;
	}
	return 0;
}

static int set_sregs(int fd, const struct kernel_image *img, struct rv_err *err)
{
	struct kvm_sregs sregs;
	uint64_t gdt[GDT_ENTRIES];

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_GET_SREGS");
	gdt_for(img->format, gdt);
	sregs.gdt.base = BOOT_GDT_GPA;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = BOOT_IDT_GPA;
	sregs.idt.limit = 7;
	sregs.cs = x86_segment_from_gdt(gdt[SEL_CODE], SEL_CODE);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
		x86_segment_from_gdt(gdt[SEL_DATA], SEL_DATA);
	sregs.tr = x86_segment_from_gdt(gdt[SEL_TSS], SEL_TSS);
	if (img->format == KERNEL_ELF_PVH) {
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr4 = 0;
		sregs.efer = 0;
	} else {
		sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs.cr3 = PML4_GPA;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
	}
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return rv_fail(err, errno, "KVM_SET_SREGS");
	return 0;
}

static int set_regs(int fd, const struct kernel_image *img, struct rv_err *err)
{
	struct kvm_regs regs = { .rflags = 0x2, .rip = img->entry };

	if (img->format == KERNEL_ELF_PVH) {
		regs.rbx = PVH_START_INFO_GPA;
	} else {
		regs.rsi = BOOT_PARAMS_GPA;
		regs.rsp = regs.rbp = BOOT_STACK_GPA;
	}
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return rv_fail(err, errno, "KVM_SET_REGS");
	return 0;
}

static int set_msrs(int fd, struct rv_err *err)
{
	static const struct kvm_msr_entry boot_msrs[] = {
		{ .index = MSR_IA32_SYSENTER_CS }, { .index = MSR_IA32_SYSENTER_ESP },
		{ .index = MSR_IA32_SYSENTER_EIP }, { .index = MSR_STAR },
		{ .index = MSR_CSTAR }, { .index = MSR_KERNEL_GS_BASE },
		{ .index = MSR_SYSCALL_MASK }, { .index = MSR_LSTAR },
		{ .index = MSR_IA32_TSC },
		{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
		{ .index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WRITEBACK },
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + sizeof(boot_msrs));

	if (!msrs)
		return rv_fail(err, ENOMEM, "allocate boot MSRs");
	msrs->nmsrs = N;
	memcpy(msrs->entries, boot_msrs, sizeof(boot_msrs));
	int set = ioctl(fd, KVM_SET_MSRS, msrs);
	int code = errno;
	free(msrs);
	if (set < 0)
		return rv_fail(err, code, "KVM_SET_MSRS");
	if (set != N)
		return rv_failx(err, EINVAL, "KVM refused boot MSR 0x%x", boot_msrs[set].index);
	return 0;
}

static int set_fpu_and_lapic(int fd, struct rv_err *err)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_lapic_state lapic;

	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return rv_fail(err, errno, "KVM_SET_FPU");
	if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
		return rv_fail(err, errno, "KVM_GET_LAPIC");
	/* Without ACPI the kernel expects the PIC on LINT0 and NMIs on LINT1. */
	uint32_t lvt;
	memcpy(&lvt, lapic.regs + APIC_LVT0, 4);
	lvt = (lvt & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(lapic.regs + APIC_LVT0, &lvt, 4);
	memcpy(&lvt, lapic.regs + APIC_LVT1, 4);
	lvt = (lvt & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(lapic.regs + APIC_LVT1, &lvt, 4);
	if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
		return rv_fail(err, errno, "KVM_SET_LAPIC");
	return 0;
}

int x86_vcpu_init(int vcpu_fd, unsigned index, const struct kernel_image *img, struct rv_err *err)
{
	if (set_msrs(vcpu_fd, err) < 0 || set_fpu_and_lapic(vcpu_fd, err) < 0)
		return rv_wrap(err, "vCPU %u", index);
	if (index != 0)
		return 0;
	if (set_sregs(vcpu_fd, img, err) < 0 || set_regs(vcpu_fd, img, err) < 0)
		return rv_wrap(err, "vCPU %u", index);
	return 0;
}
