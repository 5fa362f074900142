/* MP table layout, read back the way a guest does: by byte offsets from the spec,
 * not through the builder's own structs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vmm/x86/mptable.h"

#define TABLE_GPA 0xF0000          /* the BIOS area Linux scans */
#define CANARY 0xA5
#define CFG 16                     /* the config table follows the floating pointer */
#define CFG_HEADER_BYTES 44
#define ISA_IRQS 16

enum { PROCESSOR, BUS, IOAPIC, INTSRC, LINTSRC };

static uint8_t buf[8192];

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* Index of the first byte from `from` on that is not the canary, or sizeof(buf). */
static size_t first_written(size_t from)
{
	while (from < sizeof(buf) && buf[from] == CANARY)
		from++;
	return from;
}

static size_t build(unsigned ncpus)
{
	struct rv_err err = { 0 };

	memset(buf, CANARY, sizeof(buf));
	ssize_t n = mptable_build(buf, sizeof(buf), TABLE_GPA, ncpus, &err);
	cr_assert_gt(n, 0, "%u CPUs: %s", ncpus, err.msg);
	cr_assert_eq((size_t)n, mptable_size(ncpus));
	return (size_t)n;
}

static size_t entry_bytes(uint8_t type)
{
	return type == PROCESSOR ? 20 : 8;
}

/* The n-th entry of the given type, or NULL. */
static const uint8_t *find_entry(uint8_t type, unsigned n)
{
	const uint8_t *end = buf + CFG + rd16(buf + CFG + 4);

	for (const uint8_t *e = buf + CFG + CFG_HEADER_BYTES; e < end; e += entry_bytes(*e))
		if (*e == type && n-- == 0)
			return e;
	return NULL;
}

static const unsigned cpu_counts[] = { 1, 2, 4, MPTABLE_MAX_CPUS };

Test(mptable, floating_pointer_names_the_config_table_after_it)
{
	build(2);
	cr_assert_eq(memcmp(buf, "_MP_", 4), 0);
	cr_assert_eq(rd32(buf + 4), TABLE_GPA + 16);
	cr_assert_eq(buf[8], 1, "length is in 16-byte units");
	cr_assert_eq(buf[9], 4, "spec 1.4");
	cr_assert_eq(buf[11], 0, "feature byte 1 = 0: a config table is present");
}

Test(mptable, floating_pointer_checksums_to_zero)
{
	for (size_t i = 0; i < sizeof(cpu_counts) / sizeof(cpu_counts[0]); i++) {
		build(cpu_counts[i]);
		cr_assert_eq(sum(buf, 16), 0, "%u CPUs", cpu_counts[i]);
	}
}

Test(mptable, config_header_carries_ids_and_lapic_address)
{
	build(1);
	cr_assert_eq(memcmp(buf + CFG, "PCMP", 4), 0);
	cr_assert_eq(buf[CFG + 6], 4, "spec 1.4");
	cr_assert_eq(memcmp(buf + CFG + 8, "RUNVM   ", 8), 0);
	cr_assert_eq(memcmp(buf + CFG + 16, "MICROVM     ", 12), 0);
	cr_assert_eq(rd32(buf + CFG + 28), 0, "no OEM table");
	cr_assert_eq(rd32(buf + CFG + 36), 0xFEE00000);
}

Test(mptable, config_table_checksums_to_zero_and_counts_every_entry)
{
	for (size_t i = 0; i < sizeof(cpu_counts) / sizeof(cpu_counts[0]); i++) {
		unsigned ncpus = cpu_counts[i];
		size_t n = build(ncpus);
		uint16_t length = rd16(buf + CFG + 4);

		cr_assert_eq(length, n - 16, "%u CPUs", ncpus);
		cr_assert_eq(sum(buf + CFG, length), 0, "%u CPUs", ncpus);
		/* CPUs, the ISA bus, the I/O APIC, 16 ISA IRQs, LINT0 and LINT1 */
		cr_assert_eq(rd16(buf + CFG + 34), ncpus + 1 + 1 + ISA_IRQS + 2);

		unsigned walked = 0;
		const uint8_t *e = buf + CFG + CFG_HEADER_BYTES;
		for (; e < buf + CFG + length; e += entry_bytes(*e), walked++)
			cr_assert_leq(*e, LINTSRC, "entry %u has type %u", walked, *e);
		cr_assert_eq(e, buf + CFG + length, "entries end where the length says");
		cr_assert_eq(walked, rd16(buf + CFG + 34));
	}
}

Test(mptable, one_enabled_processor_per_cpu_and_only_cpu0_is_bsp)
{
	for (size_t i = 0; i < sizeof(cpu_counts) / sizeof(cpu_counts[0]); i++) {
		unsigned ncpus = cpu_counts[i];

		build(ncpus);
		for (unsigned cpu = 0; cpu < ncpus; cpu++) {
			const uint8_t *e = find_entry(PROCESSOR, cpu);
			cr_assert_not_null(e, "CPU %u of %u", cpu, ncpus);
			cr_assert_eq(e[1], cpu, "apic id");
			cr_assert_eq(e[2], 0x14, "apic version");
			cr_assert_eq(e[3] & 1, 1, "CPU %u enabled", cpu);
			cr_assert_eq(!!(e[3] & 2), cpu == 0, "BSP flag on CPU %u", cpu);
			cr_assert_eq(rd32(e + 4), 0x600);
			cr_assert_eq(rd32(e + 8), 0x201);
		}
		cr_assert_null(find_entry(PROCESSOR, ncpus));
	}
}

Test(mptable, one_isa_bus)
{
	build(1);
	const uint8_t *e = find_entry(BUS, 0);
	cr_assert_not_null(e);
	cr_assert_eq(e[1], 0);
	cr_assert_eq(memcmp(e + 2, "ISA   ", 6), 0);
	cr_assert_null(find_entry(BUS, 1));
}

Test(mptable, ioapic_takes_the_id_after_the_cpus)
{
	for (size_t i = 0; i < sizeof(cpu_counts) / sizeof(cpu_counts[0]); i++) {
		unsigned ncpus = cpu_counts[i];

		build(ncpus);
		const uint8_t *e = find_entry(IOAPIC, 0);
		cr_assert_not_null(e);
		cr_assert_eq(e[1], ncpus, "I/O APIC id");
		cr_assert_eq(e[2], 0x11, "version");
		cr_assert_eq(e[3] & 1, 1, "enabled");
		cr_assert_eq(rd32(e + 4), 0xFEC00000);
		cr_assert_null(find_entry(IOAPIC, 1));
	}
}

Test(mptable, isa_irqs_reach_the_ioapic_pin_of_the_same_number)
{
	build(4);
	for (unsigned irq = 0; irq < ISA_IRQS; irq++) {
		const uint8_t *e = find_entry(INTSRC, irq);
		cr_assert_not_null(e, "IRQ %u", irq);
		cr_assert_eq(e[1], 0, "vectored interrupt");
		cr_assert_eq(rd16(e + 2), 0, "conforms to the bus");
		cr_assert_eq(e[4], 0, "from the ISA bus");
		cr_assert_eq(e[5], irq);
		cr_assert_eq(e[6], 4, "to the I/O APIC");
		cr_assert_eq(e[7], irq, "pin");
	}
	cr_assert_null(find_entry(INTSRC, ISA_IRQS));
}

Test(mptable, lint0_is_extint_and_lint1_is_nmi_on_every_lapic)
{
	build(2);
	const uint8_t *lint0 = find_entry(LINTSRC, 0), *lint1 = find_entry(LINTSRC, 1);
	cr_assert_not_null(lint0);
	cr_assert_not_null(lint1);
	cr_assert_eq(lint0[1], 3, "ExtINT");
	cr_assert_eq(lint0[6], 0xFF);
	cr_assert_eq(lint0[7], 0);
	cr_assert_eq(lint1[1], 1, "NMI");
	cr_assert_eq(lint1[6], 0xFF);
	cr_assert_eq(lint1[7], 1);
	cr_assert_null(find_entry(LINTSRC, 2));
}

static void assert_rejects(unsigned ncpus, size_t size, uint64_t gpa, const char *want)
{
	struct rv_err err = { 0 };

	memset(buf, CANARY, sizeof(buf));
	cr_assert_eq(mptable_build(buf, size, gpa, ncpus, &err), -1);
	cr_assert_eq(err.code, EINVAL);
	cr_assert_not_null(strstr(err.msg, want), "got: %s", err.msg);
	cr_assert_eq(first_written(0), sizeof(buf), "nothing written on failure");
}

Test(mptable, rejects_zero_cpus_naming_the_count)
{
	assert_rejects(0, sizeof(buf), TABLE_GPA, "0 CPUs");
}

Test(mptable, rejects_255_cpus_naming_the_count)
{
	assert_rejects(MPTABLE_MAX_CPUS + 1, sizeof(buf), TABLE_GPA, "255 CPUs");
}

Test(mptable, rejects_a_buffer_one_byte_too_small)
{
	char want[32];

	snprintf(want, sizeof(want), "needs %zu bytes", mptable_size(4));
	assert_rejects(4, mptable_size(4) - 1, TABLE_GPA, want);
}

Test(mptable, rejects_a_gpa_the_guest_cannot_find)
{
	assert_rejects(1, sizeof(buf), TABLE_GPA + 8, "16-byte aligned");
	assert_rejects(1, sizeof(buf), 1ull << 32, "below 4 GiB");
	assert_rejects(1, sizeof(buf), (1ull << 32) - 16, "below 4 GiB");
}

Test(mptable, fits_a_buffer_of_exactly_its_size_just_below_4_gib)
{
	struct rv_err err = { 0 };
	size_t n = mptable_size(3);
	uint64_t gpa = ((1ull << 32) - n) & ~15ull;

	cr_assert_eq(mptable_build(buf, n, gpa, 3, &err), (ssize_t)n, "%s", err.msg);
	cr_assert_eq(rd32(buf + 4), gpa + 16);
}

Test(mptable, size_grows_with_cpus)
{
	for (unsigned n = 1; n < MPTABLE_MAX_CPUS; n++)
		cr_assert_gt(mptable_size(n + 1), mptable_size(n), "%u CPUs", n);
	cr_assert_leq(mptable_size(MPTABLE_MAX_CPUS), sizeof(buf));
}

Test(mptable, never_writes_past_the_returned_size)
{
	for (unsigned ncpus = 1; ncpus <= MPTABLE_MAX_CPUS; ncpus++) {
		size_t n = build(ncpus);

		cr_assert_eq(first_written(n), sizeof(buf),
			     "%u CPUs: byte %zu written past the %zu returned",
			     ncpus, first_written(n), n);
	}
}
