#include "vmm/x86/mptable.h"

#include <errno.h>
#include <string.h>

#define MP_LAPIC_GPA 0xFEE00000u
#define MP_IOAPIC_GPA 0xFEC00000u
#define MP_SPEC_REV 4                  /* 1.4 */
#define MP_LAPIC_VERSION 0x14          /* integrated APIC, as KVM's */
#define MP_IOAPIC_VERSION 0x11         /* what KVM's I/O APIC reports */
#define MP_CPU_SIGNATURE 0x600         /* family 6; Linux reads CPUID anyway */
#define MP_CPU_FEATURES 0x201          /* FPU | APIC */
#define MP_ISA_IRQS 16
#define MP_ALL_LAPICS 0xFF
#define MP_TABLE_GPA_LIMIT (1ull << 32) /* every pointer in the table is 32-bit */

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_IRQ_INT, MP_IRQ_NMI, MP_IRQ_SMI, MP_IRQ_EXTINT };
enum { MP_CPU_ENABLED = 1, MP_CPU_BSP = 2, MP_IOAPIC_ENABLED = 1 };

#define MP_PACKED __attribute__((packed))

struct mp_floating {
	char signature[4];             /* "_MP_" */
	uint32_t config_gpa;
	uint8_t length_16b;            /* this structure's length in 16-byte units */
	uint8_t spec_rev, checksum;
	uint8_t feature[5];            /* feature[0] = 0: a config table follows */
} MP_PACKED;

struct mp_config {
	char signature[4];             /* "PCMP" */
	uint16_t length;               /* header and entries */
	uint8_t spec_rev, checksum;
	char oem_id[8], product_id[12];
	uint32_t oem_table_gpa;
	uint16_t oem_table_size, entry_count;
	uint32_t lapic_gpa;
	uint8_t ext_table[4];          /* extended table length, checksum: none */
} MP_PACKED;

struct mp_cpu {
	uint8_t type, apic_id, apic_version, flags;
	uint32_t signature, features, reserved[2];
} MP_PACKED;

struct mp_bus { uint8_t type, bus_id; char bus_type[6]; } MP_PACKED;
struct mp_ioapic { uint8_t type, apic_id, version, flags; uint32_t gpa; } MP_PACKED;

/* An I/O interrupt (type 3: dst is an I/O APIC and its pin) and a local
 * interrupt (type 4: dst is a local APIC and its LINT#) share this layout. */
struct mp_irq {
	uint8_t type, irq_type;
	uint16_t irq_flags;            /* 0: polarity and trigger conform to the bus */
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
} MP_PACKED;

/* The sizes MP spec 1.4 chapter 4 gives: Linux steps through entries by them. */
_Static_assert(sizeof(struct mp_floating) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mp_config) == 44, "MP config table header is 44 bytes");
_Static_assert(sizeof(struct mp_cpu) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(struct mp_bus) == 8, "MP bus entry is 8 bytes");
_Static_assert(sizeof(struct mp_ioapic) == 8, "MP I/O APIC entry is 8 bytes");
_Static_assert(sizeof(struct mp_irq) == 8, "MP interrupt entries are 8 bytes");

/* Entries are appended at an arbitrary byte offset of the caller's buffer, so
 * they are built on the stack and copied rather than written through a cast. */
struct mp_cursor {
	uint8_t *pos;
	uint16_t count;
};

static void put(struct mp_cursor *c, const void *entry, size_t len)
{
	memcpy(c->pos, entry, len);
	c->pos += len;
	c->count++;
}

/* The value that makes len bytes sum to 0 modulo 256 once stored among them. */
static uint8_t checksum(const void *p, size_t len)
{
	uint8_t sum = 0;

	for (const uint8_t *b = p; len; len--)
		sum += *b++;
	return (uint8_t)-sum;
}

size_t mptable_size(unsigned ncpus)
{
	return sizeof(struct mp_floating) + sizeof(struct mp_config) +
	       (size_t)ncpus * sizeof(struct mp_cpu) + sizeof(struct mp_bus) +
	       sizeof(struct mp_ioapic) + (MP_ISA_IRQS + 2) * sizeof(struct mp_irq);
}

static void put_cpus(struct mp_cursor *c, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		struct mp_cpu cpu = {
			.type = MP_PROCESSOR, .apic_id = (uint8_t)i,
			.apic_version = MP_LAPIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE, .features = MP_CPU_FEATURES,
		};
		put(c, &cpu, sizeof(cpu));
	}
}

static void put_isa_and_ioapic(struct mp_cursor *c, uint8_t ioapic_id)
{
	struct mp_bus bus = { .type = MP_BUS, .bus_id = 0 };
	struct mp_ioapic ioapic = {
		.type = MP_IOAPIC, .apic_id = ioapic_id, .version = MP_IOAPIC_VERSION,
		.flags = MP_IOAPIC_ENABLED, .gpa = MP_IOAPIC_GPA,
	};

	memcpy(bus.bus_type, "ISA   ", sizeof(bus.bus_type));
	put(c, &bus, sizeof(bus));
	put(c, &ioapic, sizeof(ioapic));
}

static void put_irq(struct mp_cursor *c, uint8_t type, uint8_t irq_type,
		    uint8_t src_irq, uint8_t dst_apic, uint8_t dst_pin)
{
	struct mp_irq e = { .type = type, .irq_type = irq_type, .src_irq = src_irq,
			    .dst_apic = dst_apic, .dst_pin = dst_pin };

	put(c, &e, sizeof(e));
}

/* ISA IRQ n goes to I/O APIC pin n, IRQ 2 included: that is KVM's default GSI
 * routing, where the PIT raises GSI 0 on pin 0. Firmware that leaves IRQ 2 out
 * (SeaBIOS) does so because it routes IRQ 0 to pin 2 instead; here pin 2 carries
 * an IRQ nothing raises, and Linux keeps IRQ 2 for the PIC cascade either way.
 * LINT0 takes the PIC's output and LINT1 NMI, as in the spec's defaults. */
static void put_irqs(struct mp_cursor *c, uint8_t ioapic_id)
{
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++)
		put_irq(c, MP_INTSRC, MP_IRQ_INT, irq, ioapic_id, irq);
	put_irq(c, MP_LINTSRC, MP_IRQ_EXTINT, 0, MP_ALL_LAPICS, 0);
	put_irq(c, MP_LINTSRC, MP_IRQ_NMI, 0, MP_ALL_LAPICS, 1);
}

/* The header goes in last: its length, count and checksum cover the entries. */
static void put_config_header(uint8_t *cfg, const struct mp_cursor *c)
{
	struct mp_config h = { .length = (uint16_t)(c->pos - cfg),
			       .spec_rev = MP_SPEC_REV, .entry_count = c->count,
			       .lapic_gpa = MP_LAPIC_GPA };

	memcpy(h.signature, "PCMP", sizeof(h.signature));
	memcpy(h.oem_id, "RUNVM   ", sizeof(h.oem_id));
	memcpy(h.product_id, "MICROVM     ", sizeof(h.product_id));
	memcpy(cfg, &h, sizeof(h));
	cfg[offsetof(struct mp_config, checksum)] = checksum(cfg, h.length);
}

static void put_floating(uint8_t *buf, uint64_t gpa)
{
	struct mp_floating f = { .config_gpa = (uint32_t)(gpa + sizeof(f)),
				 .length_16b = sizeof(f) / 16, .spec_rev = MP_SPEC_REV };

	memcpy(f.signature, "_MP_", sizeof(f.signature));
	f.checksum = checksum(&f, sizeof(f));
	memcpy(buf, &f, sizeof(f));
}

ssize_t mptable_build(void *buf, size_t size, uint64_t gpa, unsigned ncpus,
		      struct rv_err *err)
{
	if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
		return rv_failx(err, EINVAL, "MP table: %u CPUs: need 1 to %d",
				ncpus, MPTABLE_MAX_CPUS);
	size_t need = mptable_size(ncpus);
	if (size < need)
		return rv_failx(err, EINVAL, "MP table for %u CPUs: needs %zu bytes, "
				"buffer has %zu", ncpus, need, size);
	/* Linux scans for "_MP_" in 16-byte steps and follows 32-bit pointers. */
	if (gpa % 16 || gpa >= MP_TABLE_GPA_LIMIT || need > MP_TABLE_GPA_LIMIT - gpa)
		return rv_failx(err, EINVAL, "MP table at 0x%llx: must be 16-byte "
				"aligned and below 4 GiB", (unsigned long long)gpa);

	uint8_t *cfg = (uint8_t *)buf + sizeof(struct mp_floating);
	struct mp_cursor c = { .pos = cfg + sizeof(struct mp_config) };
	uint8_t ioapic_id = (uint8_t)ncpus;     /* the first id after the CPUs' */

	put_cpus(&c, ncpus);
	put_isa_and_ioapic(&c, ioapic_id);
	put_irqs(&c, ioapic_id);
	put_config_header(cfg, &c);
	put_floating(buf, gpa);
	return (ssize_t)need;
}
