#include "vmm/x86/e820.h"

#include "vmm/x86/layout.h"

unsigned e820_build(const struct guest_mem *mem, struct e820_entry out[E820_MAX_ENTRIES])
{
	unsigned n = 0;

	out[n++] = (struct e820_entry){ 0, EBDA_GPA, E820_RAM };
	out[n++] = (struct e820_entry){ EBDA_GPA, HIGH_RAM_START_GPA - EBDA_GPA, E820_RESERVED };
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t start = r->gpa < HIGH_RAM_START_GPA ? HIGH_RAM_START_GPA : r->gpa;
		if (r->gpa + r->size > start)
			out[n++] = (struct e820_entry){ start, r->gpa + r->size - start, E820_RAM };
	}
	return n;
}
