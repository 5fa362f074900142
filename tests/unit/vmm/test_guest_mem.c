#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

static struct guest_mem fake(uint64_t size)
{
	static uint8_t backing[1];
	struct guest_mem m;
	guest_mem_layout(&m, size);
	for (unsigned i = 0; i < m.nregions; i++)
		m.regions[i].host = backing;    /* only pointer arithmetic is tested */
	return m;
}

Test(guest_mem, small_ram_is_one_region_below_the_hole)
{
	struct guest_mem m = fake(256 * MiB);
	cr_assert_eq(m.nregions, 1);
	cr_assert_eq(m.regions[0].size, 256 * MiB);
	cr_assert_eq(guest_mem_low_end(&m), 256 * MiB);
}

Test(guest_mem, large_ram_resumes_at_4g)
{
	struct guest_mem m = fake(4 * GiB);
	cr_assert_eq(m.nregions, 2);
	cr_assert_eq(m.regions[0].size, MMIO_GAP_START_GPA);
	cr_assert_eq(m.regions[1].gpa, 4 * GiB);
	cr_assert_eq(m.regions[1].size, 4 * GiB - MMIO_GAP_START_GPA);
}

Test(guest_mem, slice_checks_bounds_without_overflow)
{
	struct guest_mem m = fake(64 * MiB);
	cr_assert_not_null(guest_mem_slice(&m, 0, 64 * MiB));
	cr_assert_not_null(guest_mem_slice(&m, 64 * MiB - 1, 1));
	cr_assert_not_null(guest_mem_slice(&m, 64 * MiB, 0));
	cr_assert_null(guest_mem_slice(&m, 64 * MiB - 1, 2));
	cr_assert_null(guest_mem_slice(&m, 64 * MiB, 1));
	cr_assert_null(guest_mem_slice(&m, 1, UINT64_MAX));
	cr_assert_null(guest_mem_slice(&m, UINT64_MAX, 2));
	cr_assert_null(guest_mem_slice(&m, UINT64_MAX - 4096, 8192));
}

Test(guest_mem, slice_never_spans_the_hole)
{
	struct guest_mem m = fake(4 * GiB);
	cr_assert_null(guest_mem_slice(&m, MMIO_GAP_START_GPA - 4, 8));
	cr_assert_null(guest_mem_slice(&m, MMIO_GAP_START_GPA, 4));
	cr_assert_not_null(guest_mem_slice(&m, 4 * GiB, 4));
}

Test(e820, small_ram_map)
{
	struct guest_mem m = fake(64 * MiB);
	struct e820_entry e[E820_MAX_ENTRIES];
	unsigned n = e820_build(&m, e);
	cr_assert_eq(n, 3);
	cr_assert(e[0].addr == 0 && e[0].size == EBDA_GPA && e[0].type == E820_RAM);
	cr_assert(e[1].addr == EBDA_GPA && e[1].addr + e[1].size == HIGH_RAM_START_GPA &&
		  e[1].type == E820_RESERVED);
	cr_assert(e[2].addr == HIGH_RAM_START_GPA && e[2].addr + e[2].size == 64 * MiB &&
		  e[2].type == E820_RAM);
}

Test(e820, ram_total_is_memory_minus_the_legacy_hole)
{
	struct guest_mem m = fake(6 * GiB);
	struct e820_entry e[E820_MAX_ENTRIES];
	unsigned n = e820_build(&m, e);
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == E820_RAM)
			ram += e[i].size;
	cr_assert_eq(n, 4);
	cr_assert_eq(ram, 6 * GiB - (HIGH_RAM_START_GPA - EBDA_GPA));
	cr_assert_eq(e[3].addr, 4 * GiB);
}

Test(e820, entries_are_packed_like_the_zero_page)
{
	cr_assert_eq(sizeof(struct e820_entry), 20);
}

/* The VmFlags line of the mapping that starts at addr, from /proc/self/smaps. */
static bool mapping_flags(const void *addr, char *out, size_t size)
{
	char line[512], start[32];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (f && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
			in = strncmp(line, start, strlen(start)) == 0;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, size, "%s", line + 8);
			fclose(f);
			return true;
		}
	}
	if (f)
		fclose(f);
	return false;
}

Test(guest_mem, ram_is_left_out_of_core_dumps)
{
	struct guest_mem m;
	struct rv_err err;
	char flags[512];

	cr_assert_eq(guest_mem_create(&m, 16 * MiB, &err), 0, "%s", err.msg);
	cr_assert(mapping_flags(m.base, flags, sizeof(flags)), "guest RAM's mapping in smaps");
	cr_assert(strstr(flags, " dd"), "VmFlags:%s", flags);
	guest_mem_destroy(&m);
}
