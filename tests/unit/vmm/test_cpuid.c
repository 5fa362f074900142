/* CPUID rewriting against a small fake KVM_GET_SUPPORTED_CPUID table, shaped like
 * what an 8-core, 2-thread host reports. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/x86/cpuid.h"

#define SUB KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define MAX_ENTRIES 32

struct table {
	struct kvm_cpuid_entry2 e[MAX_ENTRIES];
	unsigned n;
};

static void add(struct table *t, uint32_t fn, uint32_t index, uint32_t flags,
		uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	cr_assert_lt(t->n, MAX_ENTRIES);
	t->e[t->n++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = index, .flags = flags,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

static void add_vendor(struct table *t, const char *id)
{
	uint32_t ebx, edx, ecx;

	memcpy(&ebx, id, 4);
	memcpy(&edx, id + 4, 4);
	memcpy(&ecx, id + 8, 4);
	add(t, 0x0, 0, 0, 0x1f, ebx, ecx, edx);
}

/* Host leaf 1: APIC id 2, 16 logical CPUs, CLFLUSH 8 qwords, brand index 5; ECX
 * has SSE3 plus every bit we hide; EDX has HTT. */
#define HOST_1_EBX 0x02100805u
#define HOST_1_ECX (1u | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 15)
#define HOST_1_EDX (1u | 1u << 28)
#define CACHE(level, type, sharing) ((7u << 26) | ((sharing) << 14) | ((level) << 5) | (type))

static void make_table(struct table *t, const char *vendor)
{
	memset(t, 0, sizeof(*t));
	add_vendor(t, vendor);
	add(t, 0x1, 0, 0, 0x000906ea, HOST_1_EBX, HOST_1_ECX, HOST_1_EDX);
	add(t, 0x4, 0, SUB, CACHE(1, 1, 1), 0x01c0003f, 0x3f, 0);
	add(t, 0x4, 1, SUB, CACHE(1, 2, 1), 0x01c0003f, 0x3f, 0);
	add(t, 0x4, 2, SUB, CACHE(2, 3, 1), 0x00c0003f, 0x3ff, 0);
	add(t, 0x4, 3, SUB, CACHE(3, 3, 15), 0x03c0003f, 0x3fff, 0);
	add(t, 0x4, 4, SUB, 0, 0, 0, 0);
	add(t, 0xa, 0, 0, 0x07300404, 0, 0, 0x603);
	add(t, 0xb, 0, SUB, 1, 2, 0x100, 7);
	add(t, 0xb, 1, SUB, 4, 16, 0x201, 7);
	add(t, 0xb, 2, SUB, 0, 0, 2, 7);
	add(t, 0x1f, 0, SUB, 1, 2, 0x100, 7);
	add(t, 0x1f, 1, SUB, 4, 16, 0x201, 7);
	add(t, 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
	add(t, 0x80000001, 0, 0, 0, 0, 0x7 | 1u << 6, 0x2c100800);
	add(t, 0x80000008, 0, 0, 0x3030, 0, 0x0001700f, 0);
	add(t, 0x8000001e, 0, 0, 7, 0x0103, 0x0101, 0);
}

static const struct kvm_cpuid_entry2 *get(const struct table *t, uint32_t fn, uint32_t index)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->e[i].function == fn && t->e[i].index == index)
			return &t->e[i];
	cr_assert_fail("no entry 0x%x.%u in the fake table", fn, index);
	return NULL;
}

/* The table as vCPU `cpu` of `ncpus` sees it. */
static void apply(struct table *t, const char *vendor, unsigned cpu, unsigned ncpus)
{
	struct cpuid_topology topo = { .cpu_index = cpu, .ncpus = ncpus };
	struct rv_err err = { 0 };

	make_table(t, vendor);
	cr_assert_eq(cpuid_apply(t->e, t->n, &topo, &err), 0, "%s", err.msg);
}

Test(cpuid, leaf1_carries_apic_id_and_count)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 4);
	cr_assert_eq(get(&t, 0x1, 0)->ebx >> 24, 0u);
	cr_assert_eq((get(&t, 0x1, 0)->ebx >> 16) & 0xff, 4u);
	apply(&t, "GenuineIntel", 3, 4);
	cr_assert_eq(get(&t, 0x1, 0)->ebx >> 24, 3u);
	cr_assert_eq((get(&t, 0x1, 0)->ebx >> 16) & 0xff, 4u);
}

Test(cpuid, leaf1_keeps_clflush_size_and_clears_brand_index)
{
	struct table t;

	apply(&t, "GenuineIntel", 1, 4);
	cr_assert_eq(get(&t, 0x1, 0)->ebx & 0xffff, 0x0800u);
}

Test(cpuid, leaf1_sets_htt_only_with_several_cpus)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 4);
	cr_assert(get(&t, 0x1, 0)->edx & (1u << 28));
	apply(&t, "GenuineIntel", 0, 1);
	cr_assert_not(get(&t, 0x1, 0)->edx & (1u << 28));
	cr_assert_eq(get(&t, 0x1, 0)->edx, 1u, "other EDX bits pass through");
}

Test(cpuid, leaf1_announces_hypervisor)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 2);
	cr_assert(get(&t, 0x1, 0)->ecx & (1u << 31));
}

Test(cpuid, leaf1_hides_vmx_mwait_and_debug_store)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 2);
	cr_assert_eq(get(&t, 0x1, 0)->ecx, 1u | 1u << 31, "only SSE3 and hypervisor remain");
}

Test(cpuid, amd_hides_svm_and_marks_cmp_legacy)
{
	struct table t;

	apply(&t, "AuthenticAMD", 0, 4);
	cr_assert_eq(get(&t, 0x80000001, 0)->ecx, 0x3u | 1u << 6);
	apply(&t, "AuthenticAMD", 0, 1);
	cr_assert_eq(get(&t, 0x80000001, 0)->ecx, 0x1u | 1u << 6);
}

Test(cpuid, leaf_b_describes_smt_then_core_level)
{
	struct table t;

	apply(&t, "GenuineIntel", 2, 4);
	const struct kvm_cpuid_entry2 *smt = get(&t, 0xb, 0), *core = get(&t, 0xb, 1);
	cr_assert_eq(smt->eax, 0u);
	cr_assert_eq(smt->ebx, 1u);
	cr_assert_eq(smt->ecx, 0x100u);
	cr_assert_eq(core->eax, 2u);
	cr_assert_eq(core->ebx, 4u);
	cr_assert_eq(core->ecx, 0x201u);
}

Test(cpuid, leaf_b_ends_after_core_level)
{
	struct table t;

	apply(&t, "GenuineIntel", 2, 4);
	const struct kvm_cpuid_entry2 *end = get(&t, 0xb, 2);
	cr_assert_eq(end->eax, 0u);
	cr_assert_eq(end->ebx, 0u);
	cr_assert_eq(end->ecx, 2u, "level 2, type 0 (invalid)");
}

Test(cpuid, leaf_b_gives_x2apic_id_at_every_level)
{
	struct table t;

	apply(&t, "GenuineIntel", 3, 4);
	for (uint32_t i = 0; i <= 2; i++)
		cr_assert_eq(get(&t, 0xb, i)->edx, 3u, "subleaf %u", i);
}

Test(cpuid, leaf_1f_matches_leaf_b)
{
	struct table t;

	apply(&t, "GenuineIntel", 1, 5);
	for (uint32_t i = 0; i <= 1; i++)
		cr_assert_eq(memcmp(&get(&t, 0x1f, i)->eax, &get(&t, 0xb, i)->eax,
				    4 * sizeof(uint32_t)), 0, "subleaf %u", i);
}

Test(cpuid, core_level_width_covers_every_cpu)
{
	static const unsigned ncpus[] = { 1, 2, 3, 4, 5, 8 };
	static const unsigned bits[] = { 0, 1, 2, 2, 3, 3 };
	struct table t;

	for (size_t i = 0; i < sizeof(ncpus) / sizeof(ncpus[0]); i++) {
		apply(&t, "GenuineIntel", 0, ncpus[i]);
		cr_assert_eq(get(&t, 0xb, 1)->eax, bits[i], "%u CPUs", ncpus[i]);
	}
}

Test(cpuid, leaf4_counts_cores_and_shares_only_l3)
{
	struct table t, host;

	make_table(&host, "GenuineIntel");
	apply(&t, "GenuineIntel", 0, 4);
	for (uint32_t i = 0; i <= 3; i++) {
		uint32_t eax = get(&t, 0x4, i)->eax;
		uint32_t sharing = i == 3 ? 3 : 0;
		cr_assert_eq(eax >> 26, 3u, "subleaf %u cores", i);
		cr_assert_eq((eax >> 14) & 0xfff, sharing, "subleaf %u sharing", i);
		cr_assert_eq(eax & 0x3fff, get(&host, 0x4, i)->eax & 0x3fff,
			     "subleaf %u type and level pass through", i);
	}
	cr_assert_eq(get(&t, 0x4, 3)->ebx, 0x03c0003fu, "geometry passes through");
}

Test(cpuid, leaf4_leaves_end_of_list_empty)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 4);
	cr_assert_eq(get(&t, 0x4, 4)->eax, 0u);
}

Test(cpuid, leaf_a_is_zeroed)
{
	struct table t;

	apply(&t, "GenuineIntel", 0, 4);
	const struct kvm_cpuid_entry2 *pmu = get(&t, 0xa, 0);
	cr_assert_eq(pmu->eax | pmu->ebx | pmu->ecx | pmu->edx, 0u);
}

Test(cpuid, amd_leaf_80000008_carries_core_count_and_width)
{
	struct table t;

	apply(&t, "AuthenticAMD", 0, 5);
	uint32_t ecx = get(&t, 0x80000008, 0)->ecx;
	cr_assert_eq(ecx & 0xff, 4u, "NC = ncpus - 1");
	cr_assert_eq((ecx >> 12) & 0xf, 3u, "ApicIdCoreIdSize");
	cr_assert_eq(ecx >> 16, 1u, "PerfTscSize passes through");
}

Test(cpuid, amd_leaf_8000001e_names_core_and_node)
{
	struct table t;

	apply(&t, "HygonGenuine", 2, 4);
	const struct kvm_cpuid_entry2 *e = get(&t, 0x8000001e, 0);
	cr_assert_eq(e->eax, 2u);
	cr_assert_eq(e->ebx, 2u, "core 2, one thread per core");
	cr_assert_eq(e->ecx, 0u);
}

Test(cpuid, intel_leaves_amd_registers_alone)
{
	struct table t;

	apply(&t, "GenuineIntel", 2, 4);
	cr_assert_eq(get(&t, 0x80000008, 0)->ecx, 0x0001700fu);
	cr_assert_eq(get(&t, 0x8000001e, 0)->ebx, 0x0103u);
}

Test(cpuid, unrelated_leaf_passes_through)
{
	struct table t, host;

	make_table(&host, "GenuineIntel");
	apply(&t, "GenuineIntel", 1, 4);
	cr_assert_eq(memcmp(get(&t, 0x40000000, 0), get(&host, 0x40000000, 0),
			    sizeof(struct kvm_cpuid_entry2)), 0);
}

Test(cpuid, vendor_is_read_from_leaf_0)
{
	struct table t;

	make_table(&t, "GenuineIntel");
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_INTEL);
	make_table(&t, "AuthenticAMD");
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_AMD);
	make_table(&t, "HygonGenuine");
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_AMD);
	make_table(&t, "CentaurHauls");
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_OTHER);
	cr_assert_eq(cpuid_vendor(t.e, 0), CPUID_VENDOR_OTHER, "no leaf 0");
}

Test(cpuid, vendor_lookup_ignores_index_only_without_subleaf_flag)
{
	struct table t;

	make_table(&t, "GenuineIntel");
	t.e[0].index = 5;
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_INTEL);
	t.e[0].flags = SUB;
	cr_assert_eq(cpuid_vendor(t.e, t.n), CPUID_VENDOR_OTHER);
}

Test(cpuid, rejects_zero_cpus)
{
	struct table t;
	struct cpuid_topology topo = { .cpu_index = 0, .ncpus = 0 };
	struct rv_err err = { 0 };

	make_table(&t, "GenuineIntel");
	cr_assert_eq(cpuid_apply(t.e, t.n, &topo, &err), -1);
	cr_assert_not_null(strstr(err.msg, "0 vCPUs"), "got: %s", err.msg);
	cr_assert_eq(get(&t, 0x1, 0)->ebx, HOST_1_EBX, "table untouched");
}

Test(cpuid, rejects_index_beyond_count)
{
	struct table t;
	struct cpuid_topology topo = { .cpu_index = 5, .ncpus = 4 };
	struct rv_err err = { 0 };

	make_table(&t, "GenuineIntel");
	cr_assert_eq(cpuid_apply(t.e, t.n, &topo, &err), -1);
	cr_assert_not_null(strstr(err.msg, "vCPU 5"), "got: %s", err.msg);
	cr_assert_not_null(strstr(err.msg, "4 vCPUs"), "got: %s", err.msg);
	topo.cpu_index = 4;
	cr_assert_eq(cpuid_apply(t.e, t.n, &topo, &err), -1, "index == count is out too");
}
