/* Where things live in guest physical memory on x86. One place, so that the
 * loader, e820, page tables and devices agree. */
#ifndef RV_X86_LAYOUT_H
#define RV_X86_LAYOUT_H

#define PAGE_BYTES 4096ull

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* Low memory, below the 640 KiB legacy boundary. */
#define BOOT_GDT_GPA          0x500ull
#define BOOT_IDT_GPA          0x520ull
#define PVH_START_INFO_GPA    0x6000ull   /* hvm_start_info, modlist, memmap */
#define BOOT_PARAMS_GPA       0x7000ull   /* the bzImage "zero page" */
#define BOOT_STACK_GPA        0x8ff0ull
#define PML4_GPA              0x9000ull
#define PDPT_GPA              0xa000ull
#define PD_GPA                0xb000ull   /* four pages: 4 GiB in 2 MiB pages */
#define CMDLINE_GPA           0x20000ull
#define CMDLINE_MAX_BYTES     4096u

/* Where Linux looks for the MP table: the last KiB of base memory (EBDA). */
#define EBDA_GPA              0x9fc00ull
#define HIGH_RAM_START_GPA    0x100000ull /* 1 MiB: kernels load at or above */

/* The 32-bit MMIO hole: device windows live here, RAM resumes at 4 GiB. */
#define MMIO_GAP_START_GPA    0xc0000000ull
#define MMIO_GAP_END_GPA      0x100000000ull
/* virtio-mmio windows, 4 KiB each, and their ISA IRQs (edge, via irqfd). */
#define VIRTIO_MMIO_BASE_GPA  0xd0000000ull
#define VIRTIO_MMIO_FIRST_IRQ 5u
#define KVM_TSS_GPA           0xfffbd000ull
#define KVM_IDENTITY_MAP_GPA  0xfffbc000ull

#define GUEST_MEM_MIN_BYTES   (64 * MiB)

#endif
