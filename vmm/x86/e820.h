/* The guest's physical memory map, as both boot protocols hand it over: the
 * zero page's e820 table (bzImage) and hvm_start_info's memmap (PVH). */
#ifndef RV_X86_E820_H
#define RV_X86_E820_H

#include <stdint.h>

#include "vmm/guest_mem.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_MAX_ENTRIES 8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fills `out` and returns the entry count: RAM below the EBDA; the EBDA (where
 * the MP table lives) up to 1 MiB reserved; RAM from 1 MiB to the MMIO hole; RAM
 * above 4 GiB. */
unsigned e820_build(const struct guest_mem *mem, struct e820_entry out[E820_MAX_ENTRIES]);

#endif
