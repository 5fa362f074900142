#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define CPUID_LEAF_VENDOR        0x0u
#define CPUID_LEAF_FEATURES      0x1u
#define CPUID_LEAF_CACHE         0x4u
#define CPUID_LEAF_PMU           0xau
#define CPUID_LEAF_TOPOLOGY      0xbu
#define CPUID_LEAF_TOPOLOGY_V2   0x1fu
#define CPUID_LEAF_EXT_FEATURES  0x80000001u
#define CPUID_LEAF_EXT_SIZES     0x80000008u
#define CPUID_LEAF_EXT_APIC      0x8000001eu

/* Multi-bit fields are written "shift, width" so that one name carries both into
 * field_set()/field_get(). */
#define CPUID_1_EBX_BRAND_INDEX      0, 8
#define CPUID_1_EBX_LOGICAL_COUNT    16, 8
#define CPUID_1_EBX_APIC_ID          24, 8
#define CPUID_1_ECX_DTES64           (1u << 2)
#define CPUID_1_ECX_MONITOR          (1u << 3)
#define CPUID_1_ECX_DS_CPL           (1u << 4)
#define CPUID_1_ECX_VMX              (1u << 5)
#define CPUID_1_ECX_PDCM             (1u << 15)
#define CPUID_1_ECX_HYPERVISOR       (1u << 31)
#define CPUID_1_EDX_HTT              (1u << 28)

/* Debug store and perf capabilities need a PMU we do not give; MWAIT would let a
 * guest idle on a host core; VMX would mean nested virtualisation. */
#define CPUID_1_ECX_HIDDEN \
	(CPUID_1_ECX_DTES64 | CPUID_1_ECX_MONITOR | CPUID_1_ECX_DS_CPL | \
	 CPUID_1_ECX_VMX | CPUID_1_ECX_PDCM)

#define CPUID_4_EAX_CACHE_TYPE       0, 5
#define CPUID_4_EAX_CACHE_LEVEL      5, 3
#define CPUID_4_EAX_SHARING          14, 12
#define CPUID_4_EAX_CORES            26, 6

#define CPUID_TOPO_EAX_SHIFT         0, 5
#define CPUID_TOPO_EBX_COUNT         0, 16
#define CPUID_TOPO_ECX_LEVEL         0, 8
#define CPUID_TOPO_ECX_TYPE          8, 8
#define CPUID_TOPO_TYPE_SMT          1u
#define CPUID_TOPO_TYPE_CORE         2u

#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_80000001_ECX_SVM       (1u << 2)
#define CPUID_80000008_ECX_NC        0, 8
#define CPUID_80000008_ECX_CORE_BITS 12, 4
#define CPUID_8000001E_EBX_CORE_ID   0, 8

/* A value too wide for its field saturates instead of wrapping: a count of 256
 * read as 0 would be worse than one read as 255. Guests with that many vCPUs
 * take their topology from leaf 0xB, whose fields are wide enough. */
static uint32_t field_set(uint32_t reg, unsigned shift, unsigned width, uint32_t value)
{
	uint32_t max = (1u << width) - 1;

	if (value > max)
		value = max;
	return (reg & ~(max << shift)) | (value << shift);
}

static uint32_t field_get(uint32_t reg, unsigned shift, unsigned width)
{
	return (reg >> shift) & ((1u << width) - 1);
}

static uint32_t bit_set(uint32_t reg, uint32_t bit, bool on)
{
	return on ? reg | bit : reg & ~bit;
}

/* Bits of the APIC id that number cores in the package: ceil(log2(ncpus)). */
static unsigned core_id_bits(unsigned ncpus)
{
	unsigned bits = 0;

	while (bits < 32 && (1ull << bits) < ncpus)
		bits++;
	return bits;
}

/* Leaves whose subleaves differ carry SIGNIFCANT_INDEX (sic, linux/kvm.h); for
 * the others KVM ignores ECX, and so do we. */
static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *entries,
						 unsigned n, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &entries[i];
		bool by_index = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

		if (e->function == function && (!by_index || e->index == index))
			return e;
	}
	return NULL;
}

/* The vendor string is spread over EBX, EDX, ECX, in that order. */
static bool vendor_is(const struct kvm_cpuid_entry2 *e, const char name[12])
{
	char id[12];

	memcpy(id, &e->ebx, 4);
	memcpy(id + 4, &e->edx, 4);
	memcpy(id + 8, &e->ecx, 4);
	return memcmp(id, name, sizeof(id)) == 0;
}

enum cpuid_vendor cpuid_vendor(const struct kvm_cpuid_entry2 *entries, unsigned n)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(entries, n, CPUID_LEAF_VENDOR, 0);

	if (!e)
		return CPUID_VENDOR_OTHER;
	if (vendor_is(e, "GenuineIntel"))
		return CPUID_VENDOR_INTEL;
	/* Hygon Dhyana is a licensed Zen: same topology leaves as AMD. */
	if (vendor_is(e, "AuthenticAMD") || vendor_is(e, "HygonGenuine"))
		return CPUID_VENDOR_AMD;
	return CPUID_VENDOR_OTHER;
}

static void fix_features(struct kvm_cpuid_entry2 *e, const struct cpuid_topology *t)
{
	/* EBX[15:8], the CLFLUSH line size, is the host's and stays. */
	e->ebx = field_set(e->ebx, CPUID_1_EBX_BRAND_INDEX, 0);
	e->ebx = field_set(e->ebx, CPUID_1_EBX_LOGICAL_COUNT, t->ncpus);
	e->ebx = field_set(e->ebx, CPUID_1_EBX_APIC_ID, t->cpu_index);
	e->ecx &= ~CPUID_1_ECX_HIDDEN;
	e->ecx |= CPUID_1_ECX_HYPERVISOR;
	e->edx = bit_set(e->edx, CPUID_1_EDX_HTT, t->ncpus > 1);
}

/* One thread per core, so only the last level cache is shared, by every vCPU. */
static void fix_cache(struct kvm_cpuid_entry2 *e, const struct cpuid_topology *t)
{
	/* A null descriptor ends the list; giving it fields would extend it. */
	if (field_get(e->eax, CPUID_4_EAX_CACHE_TYPE) == 0)
		return;
	bool shared = field_get(e->eax, CPUID_4_EAX_CACHE_LEVEL) > 2;

	e->eax = field_set(e->eax, CPUID_4_EAX_SHARING, shared ? t->ncpus - 1 : 0);
	e->eax = field_set(e->eax, CPUID_4_EAX_CORES, t->ncpus - 1);
}

/* KVM returns one entry per host level; we keep the count but describe our own
 * levels, and mark every level past the core as the end of the list. */
static void fix_topology(struct kvm_cpuid_entry2 *e, const struct cpuid_topology *t)
{
	uint32_t type = 0;

	e->eax = 0;
	e->ebx = 0;
	if (e->index == 0) {
		/* SMT: one thread per core leaves no thread bits to shift off. */
		type = CPUID_TOPO_TYPE_SMT;
		e->ebx = field_set(0, CPUID_TOPO_EBX_COUNT, 1);
	} else if (e->index == 1) {
		type = CPUID_TOPO_TYPE_CORE;
		e->eax = field_set(0, CPUID_TOPO_EAX_SHIFT, core_id_bits(t->ncpus));
		e->ebx = field_set(0, CPUID_TOPO_EBX_COUNT, t->ncpus);
	}
	e->ecx = field_set(0, CPUID_TOPO_ECX_LEVEL, e->index);
	e->ecx = field_set(e->ecx, CPUID_TOPO_ECX_TYPE, type);
	e->edx = t->cpu_index;       /* the x2APIC id, the same at every level */
}

/* No vPMU for sandboxes: KVM builds one from this leaf, and counters would both
 * cost exits and tell the guest about its neighbours. */
static void hide_pmu(struct kvm_cpuid_entry2 *e)
{
	e->eax = 0;
	e->ebx = 0;
	e->ecx = 0;
	e->edx = 0;
}

static void fix_amd(struct kvm_cpuid_entry2 *e, const struct cpuid_topology *t)
{
	switch (e->function) {
	case CPUID_LEAF_EXT_FEATURES:
		e->ecx &= ~CPUID_80000001_ECX_SVM;       /* no nested virtualisation */
		e->ecx = bit_set(e->ecx, CPUID_80000001_ECX_CMP_LEGACY, t->ncpus > 1);
		break;
	case CPUID_LEAF_EXT_SIZES:
		e->ecx = field_set(e->ecx, CPUID_80000008_ECX_NC, t->ncpus - 1);
		e->ecx = field_set(e->ecx, CPUID_80000008_ECX_CORE_BITS,
				   core_id_bits(t->ncpus));
		break;
	case CPUID_LEAF_EXT_APIC:
		/* Core id = vCPU, threads per core - 1 = 0, node 0 of 1. */
		e->eax = t->cpu_index;
		e->ebx = field_set(0, CPUID_8000001E_EBX_CORE_ID, t->cpu_index);
		e->ecx = 0;
		break;
	}
}

/* Leaf 6 passes through: KVM already reports nothing there but ARAT. */
static void fix_entry(struct kvm_cpuid_entry2 *e, const struct cpuid_topology *t,
		      enum cpuid_vendor vendor)
{
	switch (e->function) {
	case CPUID_LEAF_FEATURES:
		fix_features(e, t);
		break;
	case CPUID_LEAF_CACHE:
		fix_cache(e, t);
		break;
	case CPUID_LEAF_PMU:
		hide_pmu(e);
		break;
	case CPUID_LEAF_TOPOLOGY:
	case CPUID_LEAF_TOPOLOGY_V2:
		fix_topology(e, t);
		break;
	}
	/* On Intel these extended registers are reserved: leave them as KVM gave. */
	if (vendor == CPUID_VENDOR_AMD)
		fix_amd(e, t);
}

int cpuid_apply(struct kvm_cpuid_entry2 *entries, unsigned n, const struct cpuid_topology *t,
		struct rv_err *err)
{
	if (t->ncpus == 0)
		return rv_failx(err, EINVAL, "CPUID for vCPU %u: the VM has 0 vCPUs, needs at least 1",
				t->cpu_index);
	if (t->cpu_index >= t->ncpus)
		return rv_failx(err, EINVAL, "CPUID for vCPU %u: out of range for %u vCPUs (0..%u)",
				t->cpu_index, t->ncpus, t->ncpus - 1);

	enum cpuid_vendor vendor = cpuid_vendor(entries, n);

	for (unsigned i = 0; i < n; i++)
		fix_entry(&entries[i], t, vendor);
	return 0;
}
