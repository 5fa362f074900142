/* Architectural state of a vCPU at the kernel's entry point, for each boot
 * protocol: PVH enters in 32-bit protected mode without paging, the bzImage
 * 64-bit entry in long mode on identity-mapped page tables. */
#ifndef RV_X86_CPU_H
#define RV_X86_CPU_H

#include <linux/kvm.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/guest_mem.h"
#include "vmm/x86/kernel.h"

/* GDT and (for long mode) page tables in guest memory; once per VM. */
int x86_write_boot_tables(const struct guest_mem *mem, enum kernel_format fmt, struct rv_err *err);

/* Registers, MSRs, FPU and LAPIC LINT pins of one vCPU. Only the boot CPU gets
 * the entry point; the others wait for INIT/SIPI in the in-kernel LAPIC. */
int x86_vcpu_init(int vcpu_fd, unsigned index, const struct kernel_image *img, struct rv_err *err);

/* Decode one GDT descriptor into KVM's segment form (pure; unit-tested). */
struct kvm_segment x86_segment_from_gdt(uint64_t desc, unsigned index);

#endif
